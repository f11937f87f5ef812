// The messages of one ring, by sequence number: the agreed-order buffer and, until every member
// holds a message, its retransmission buffer (docs/TOTEM.md, "Ordering on a stable ring").
import type { RingId } from '../../core/driver/types.ts';
import type { EncapInfo } from './codec.ts';
import { anchor, drop } from '../../core/wire/lease.ts';

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

/** Slots a ring's log starts with. */
const SLOTS_FIRST = 256;
/** The least span (seq - freedUpTo) a log takes, whatever its owner's bound. */
export const SPAN_MIN = 1 << 16;

export class RingLog {
  // By seq in a ring of slots (seq & mask), emptied as they are freed: every seq held is above
  // freedUpTo and at most freedUpTo + slots.length, so no two share a slot. Not a Map: a Map whose
  // entries come and go once per frame is rehashed in V8's old generation, and the tables it
  // drops go on pointing at the messages they held, which young collections then count as alive:
  // under load every received datagram lived until a full collection (docs/BENCH.md).
  private slots: (StoredMsg | undefined)[] = new Array<StoredMsg | undefined>(SLOTS_FIRST).fill(undefined);
  private mask = SLOTS_FIRST - 1;
  private count = 0;
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

  /** `spanMax`: the most seqs past freedUpTo the log holds (at least SPAN_MIN): a seq past it is
   *  refused rather than a table that large made. The driver gives its own bound on what one
   *  ring may store, which no legitimate seq exceeds (TotemDriver.storeSpanMax). */
  private readonly spanMax: number;

  constructor(readonly ring: RingId, readonly members: readonly number[], spanMax = SPAN_MIN) {
    this.spanMax = Math.max(spanMax, SPAN_MIN);
  }

  get size(): number {
    return this.count;
  }

  /** Held now or freed earlier. */
  has(seq: number): boolean {
    return seq <= this.freedUpTo || this.held(seq) !== undefined;
  }

  get(seq: number): StoredMsg | undefined {
    return this.held(seq);
  }

  /** `seq` is within the span the log may hold (see the constructor). */
  fits(seq: number): boolean {
    return seq - this.freedUpTo <= this.spanMax;
  }

  /** Adds a message; false if it was already held or freed, or does not fit (fits()). */
  add(m: StoredMsg): boolean {
    if (this.has(m.seq)) return false;
    const span = m.seq - this.freedUpTo;
    if (span > this.slots.length) {
      if (span > this.spanMax) return false;
      this.grow(span);
    }
    this.slots[m.seq & this.mask] = m;
    anchor(m.frame); // its memory goes back once freed here and let go by every other holder
    this.count++;
    if (m.seq > this.highSeq) this.highSeq = m.seq;
    while (this.held(this.aru + 1) !== undefined) this.aru++;
    return true;
  }

  /** Discards every message up to `upTo`. */
  free(upTo: number): void {
    if (upTo <= this.freedUpTo) return;
    const end = Math.min(upTo, this.freedUpTo + this.slots.length);
    for (let s = this.freedUpTo + 1; s <= end; s++) {
      const i = s & this.mask;
      const m = this.slots[i];
      if (m !== undefined) {
        this.slots[i] = undefined;
        this.count--;
        drop(m.frame);
      }
    }
    this.freedUpTo = upTo;
  }

  /** Seqs above aru and at most `upTo` that are missing. At most `max` of them. */
  gaps(upTo: number, max: number): number[] {
    const out: number[] = [];
    for (let s = this.aru + 1; s <= upTo && out.length < max; s++) if (this.held(s) === undefined) out.push(s);
    return out;
  }

  private held(seq: number): StoredMsg | undefined {
    if (seq <= this.freedUpTo || seq - this.freedUpTo > this.slots.length) return undefined;
    const m = this.slots[seq & this.mask];
    return m !== undefined && m.seq === seq ? m : undefined;
  }

  /** Room for a span of `span` seqs from freedUpTo: the slots doubled until it fits. */
  private grow(span: number): void {
    let n = this.slots.length;
    while (n < span) n *= 2;
    const slots = new Array<StoredMsg | undefined>(n).fill(undefined);
    for (const m of this.slots) if (m !== undefined) slots[m.seq & (n - 1)] = m;
    this.slots = slots;
    this.mask = n - 1;
  }
}
