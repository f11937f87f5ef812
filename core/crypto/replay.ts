// Replay protection for one sender: the highest incarnation seen from it, and a sliding window of
// the sequence numbers accepted in that incarnation (RFC 6479's bitmap of 32-bit words, as IPsec
// and WireGuard do). check() says whether a datagram may be new without changing anything, so a
// datagram is checked before it is authenticated and recorded only after: a forged one can never
// move the window.
//
// The window holds WINDOW_WORDS words; the word of the newest sequence number is the last one, so
// a datagram is "in the window" when its word is at most WINDOW_WORDS - 1 words behind the
// newest's: the newest and at least the 992 numbers before it (up to 1023, depending on where the
// newest falls in its word) are judged exactly; older ones are dropped as behind the window.
//
// Nor can this node judge what a sender sent before this node heard from it: the first datagram
// accepted from an incarnation (in this run of this node) sets a floor, and anything below it is
// dropped as behind the window too. Without the floor, the datagrams a peer sent while this node
// was down (never received, so never marked) could be replayed to it once it is back. The marks
// saved at a clean stop (restore()) also cover the moment between this node's start and its first
// datagram from each peer.

export const WINDOW_BITS = 1024;
const WORD_BITS = 32;
const WINDOW_WORDS = WINDOW_BITS / WORD_BITS;

/** What check() found; the strings are the sealer's counter names. */
export type ReplayVerdict = 'new' | 'droppedStaleIncarnation' | 'droppedReplay' | 'droppedBehindWindow';

export class ReplayWindow {
  /** The incarnation the window belongs to; -1 before the first datagram. */
  incarnation = -1;
  /** The newest sequence number accepted in this incarnation. */
  top = 0;
  /** The lowest sequence number this node can judge in this incarnation. */
  floor = 0;
  /** Restored from saved marks: the next datagram accepted sets the floor afresh. */
  private restored = false;
  private readonly bits = new Uint32Array(WINDOW_WORDS);

  /** Whether (incarnation, seq) may be a datagram not seen before. Both are integers below 2^53. */
  check(incarnation: number, seq: number): ReplayVerdict {
    if (incarnation !== this.incarnation) return incarnation > this.incarnation ? 'new' : 'droppedStaleIncarnation';
    if (seq > this.top) return 'new';
    if (seq < this.floor || this.restored) return 'droppedBehindWindow';
    const word = Math.floor(seq / WORD_BITS);
    if (word + WINDOW_WORDS <= Math.floor(this.top / WORD_BITS)) return 'droppedBehindWindow';
    return (this.bits[word % WINDOW_WORDS] & (1 << (seq % WORD_BITS))) !== 0 ? 'droppedReplay' : 'new';
  }

  /** Records an authenticated datagram that check() called new. The first of an incarnation (or
   *  the first after restore()) starts the window afresh, with its floor there. */
  accept(incarnation: number, seq: number): void {
    const word = Math.floor(seq / WORD_BITS);
    if (incarnation > this.incarnation || this.restored) {
      this.incarnation = incarnation;
      this.top = seq;
      this.floor = seq;
      this.restored = false;
      this.bits.fill(0);
    } else if (seq > this.top) {
      // Clear the words the window slides over (at most all of them), then move the top.
      const topWord = Math.floor(this.top / WORD_BITS);
      const last = Math.min(word, topWord + WINDOW_WORDS);
      for (let w = topWord + 1; w <= last; w++) this.bits[w % WINDOW_WORDS] = 0;
      this.top = seq;
    }
    this.bits[word % WINDOW_WORDS] |= 1 << (seq % WORD_BITS);
  }

  /** Starts from marks saved by an earlier run of this node: everything up to `top` of
   *  `incarnation`, and every older incarnation, is old. Ignored if the window has moved on. */
  restore(incarnation: number, top: number): void {
    if (this.incarnation !== -1) return;
    this.incarnation = incarnation;
    this.top = top;
    this.floor = top + 1;
    this.restored = true;
  }
}
