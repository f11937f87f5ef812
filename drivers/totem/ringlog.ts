// The messages of one ring, by sequence number: the agreed-order buffer and, until every member
// holds a message, its retransmission buffer (docs/TOTEM.md, "Ordering on a stable ring").
import type { RingId } from '../../core/driver/types.ts';
import type { EncapInfo } from './codec.ts';

export interface StoredMsg {
  readonly seq: number;
  /** The node that originated the message (not whoever retransmitted it). */
  readonly origin: number;
  readonly safe: boolean;
  /** Set on new-ring messages that carry an old-ring message during recovery. */
  readonly encap?: EncapInfo;
  readonly frame: Uint8Array;
  /** A frame this node packed and has not sent yet: the room in front of it (its packer's
   *  headroom) is still unwritten, and its first MCAST is written around it, with no copy. */
  unsent?: boolean;
}

export class RingLog {
  private readonly msgs = new Map<number, StoredMsg>();
  /** All received up to: every seq <= aru is held (or was freed). */
  aru = 0;
  /** Highest seq held. */
  highSeq = 0;
  /** Highest seq delivered (or skipped) in order. */
  highDelivered = 0;
  /** Every seq <= freedUpTo has been discarded: every member held it. */
  freedUpTo = 0;
  /** Safe-delivery line: every member is known to hold every seq <= it. */
  safeLine = 0;
  /** Like safeLine, but counted from the first token of the ring: frees memory. */
  gcLine = 0;

  constructor(readonly ring: RingId, readonly members: readonly number[]) {}

  get size(): number {
    return this.msgs.size;
  }

  /** Held now or freed earlier. */
  has(seq: number): boolean {
    return seq <= this.freedUpTo || this.msgs.has(seq);
  }

  get(seq: number): StoredMsg | undefined {
    return this.msgs.get(seq);
  }

  /** Adds a message; false if it was already held or freed. */
  add(m: StoredMsg): boolean {
    if (this.has(m.seq)) return false;
    this.msgs.set(m.seq, m);
    if (m.seq > this.highSeq) this.highSeq = m.seq;
    while (this.msgs.has(this.aru + 1)) this.aru++;
    return true;
  }

  /** Discards every message up to `upTo`. */
  free(upTo: number): void {
    for (let s = this.freedUpTo + 1; s <= upTo; s++) this.msgs.delete(s);
    if (upTo > this.freedUpTo) this.freedUpTo = upTo;
  }

  /** Seqs above aru and at most `upTo` that are missing. At most `max` of them. */
  gaps(upTo: number, max: number): number[] {
    const out: number[] = [];
    for (let s = this.aru + 1; s <= upTo && out.length < max; s++) if (!this.msgs.has(s)) out.push(s);
    return out;
  }
}
