// The sender's window: every data frame it sent and still keeps, because some member of its
// membership has not acknowledged it yet. Frames are numbered from 1 per incarnation; the
// window holds the contiguous range [low, nextSeq), at most `windowMax` frames.
import { assert } from '../../core/api/errors.ts';
import { SEQ_MAX } from './codec.ts';

export interface InFlight {
  readonly seq: number;
  readonly frame: Uint8Array;
  /** Members that have not acknowledged the frame yet. */
  readonly awaiting: Set<number>;
  nextResendAt: number;
  /** Times the frame was resent (to whoever was still awaited then). */
  resends: number;
}

export class SendWindow {
  private entries: InFlight[] = [];
  private head = 0;
  private next = 1;

  constructor(private readonly windowMax: number) {}

  /** Seq of the oldest frame kept; equals nextSeq when nothing is kept. */
  get low(): number {
    return this.head < this.entries.length ? this.entries[this.head].seq : this.next;
  }

  get nextSeq(): number {
    return this.next;
  }

  get inFlight(): number {
    return this.entries.length - this.head;
  }

  get hasRoom(): boolean {
    return this.inFlight < this.windowMax;
  }

  /** Keeps a new frame; returns its seq. */
  add(frame: Uint8Array, awaiting: Set<number>, resendAt: number): InFlight {
    assert(this.hasRoom, 'window full');
    assert(this.next <= SEQ_MAX, 'sequence numbers exhausted for this incarnation (2^48 frames)');
    const entry: InFlight = { seq: this.next++, frame, awaiting, nextResendAt: resendAt, resends: 0 };
    this.entries.push(entry);
    return entry;
  }

  /** Records an ack from `node`: every seq <= cumulative, and each seq in `selective`. */
  ack(node: number, cumulative: number, selective: readonly number[]): number {
    let cleared = 0;
    const low = this.low;
    const top = Math.min(cumulative, this.next - 1);
    for (let seq = low; seq <= top; seq++) {
      if (this.entries[this.head + seq - low].awaiting.delete(node)) cleared++;
    }
    for (const seq of selective) {
      if (seq < low || seq >= this.next) continue;
      if (this.entries[this.head + seq - low].awaiting.delete(node)) cleared++;
    }
    return cleared;
  }

  /** Stops waiting for a node (it left the membership). */
  forget(node: number): void {
    for (let i = this.head; i < this.entries.length; i++) this.entries[i].awaiting.delete(node);
  }

  /** Drops acknowledged frames from the head; returns how many. */
  collect(): number {
    const before = this.head;
    while (this.head < this.entries.length && this.entries[this.head].awaiting.size === 0) this.head++;
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return this.head - before;
  }

  /** Frames still awaited by someone, oldest first. */
  *pending(): Generator<InFlight> {
    for (let i = this.head; i < this.entries.length; i++) {
      if (this.entries[i].awaiting.size > 0) yield this.entries[i];
    }
  }

  earliestResend(): number {
    let at = Infinity;
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e.awaiting.size > 0 && e.nextResendAt < at) at = e.nextResendAt;
    }
    return at;
  }

  clear(): void {
    this.entries = [];
    this.head = 0;
  }

  checkInvariants(members: ReadonlySet<number>): void {
    assert(this.inFlight <= this.windowMax, `window holds ${this.inFlight} > ${this.windowMax}`);
    assert(this.inFlight === 0 || this.entries[this.head].awaiting.size > 0, 'acked head not collected');
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i];
      assert(e.seq === this.low + i - this.head, 'window seqs are contiguous');
      for (const n of e.awaiting) assert(members.has(n), `frame ${e.seq} awaits non-member ${n}`);
    }
    assert(this.next - this.low === this.inFlight, 'window range matches its entries');
  }
}
