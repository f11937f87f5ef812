// One sender's stream as a receiver sees it: FIFO delivery of frames by seq, a bounded buffer
// for frames that arrived early, duplicate detection, and skipping frames the sender no longer
// holds (its `low` passed them: nobody will ever resend them to us).
import { assert } from '../../core/api/errors.ts';

export type Offer = 'new' | 'duplicate' | 'beyond';

export class RecvStream {
  /** Next seq to deliver; every seq below it was delivered or skipped. */
  expected: number;
  private readonly early = new Map<number, Uint8Array>();

  constructor(readonly incarnation: number, start: number, private readonly bufferMax: number) {
    this.expected = start;
  }

  get buffered(): number {
    return this.early.size;
  }

  /** Seqs held above expected (for selective acks). */
  held(): IterableIterator<number> {
    return this.early.keys();
  }

  /**
   * Takes a frame: the next one in order goes straight to `feed` (no copy); an early one is
   * copied into the buffer (the datagram's bytes are the host's).
   */
  offer(seq: number, frame: Uint8Array, feed?: (frame: Uint8Array) => void): Offer {
    if (seq < this.expected || this.early.has(seq)) return 'duplicate';
    if (seq >= this.expected + this.bufferMax) return 'beyond';
    if (feed && seq === this.expected) {
      this.expected++;
      feed(frame);
      return 'new';
    }
    this.early.set(seq, frame); // a view of a received datagram, ours to keep (Driver.handleDatagram)
    return 'new';
  }

  /**
   * Hands frames to `feed` in seq order while they are contiguous; below `low` a missing frame
   * is skipped (`gap` is told, so a partial message is never spliced across it).
   */
  drain(low: number, feed: (frame: Uint8Array) => void, gap: (skipped: number) => void): void {
    while (true) {
      const frame = this.early.get(this.expected);
      if (frame) {
        this.early.delete(this.expected);
        this.expected++;
        feed(frame);
        continue;
      }
      if (this.expected >= low) return;
      let next = low;
      for (const s of this.early.keys()) if (s > this.expected && s < next) next = s;
      gap(next - this.expected);
      this.expected = next;
    }
  }

  checkInvariants(): void {
    for (const s of this.early.keys()) {
      assert(s > this.expected && s < this.expected + this.bufferMax, `early frame ${s} out of range`);
    }
  }
}
