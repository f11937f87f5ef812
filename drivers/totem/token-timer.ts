// When to re-send the last token: a bound measured from the ring's own rotations, not a fixed
// interval sized for failure detection (docs/TOTEM.md, "Loss"). corosync re-sends every
// token / 4.2 ms (238 ms at token = 1000), so one lost token stops a busy ring for a quarter of
// a second; a ring that rotates in a millisecond can re-send after a few. Failure detection stays
// with token_ms: a re-send proves nothing about the successor being alive, and a copy that
// arrives after the original is dropped by its tokenSeq.
//
// The bound is twice the median of the last ROTATIONS_KEPT rotations (from my forward to the
// next token back), at least minMs and at most maxMs. A median ignores the rotations slowed by a
// loss elsewhere in the ring (the node before that hop waited, then re-sent), which would
// otherwise inflate the bound exactly when loss makes it matter (a mean with variance, as TCP's,
// does). A rotation in which I re-sent the token is not a sample (Karn's rule: which copy came
// back is unknown). Successive re-sends of one token back off by doubling up to maxMs, so a
// successor that is only slow (an idle ring's representative holding the token, a paused
// process) costs a few datagrams, not a stream.

/** Rotations the median is taken over. */
export const ROTATIONS_KEPT = 16;

export class TokenTimer {
  /** The last rotations, in ms: a ring buffer of at most ROTATIONS_KEPT; `count` of them valid. */
  private readonly samples = new Float64Array(ROTATIONS_KEPT);
  /** The same samples kept sorted (insertion on each sample: no allocation per rotation). */
  private readonly sorted = new Float64Array(ROTATIONS_KEPT);
  private count = 0;
  private next = 0;
  private boundMs: number;

  constructor(private readonly minMs: number, private readonly maxMs: number) {
    // No rotation seen yet: corosync's interval.
    this.boundMs = maxMs;
  }

  /** One rotation: my forward to the next token accepted, with no re-send of mine between. */
  sample(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    const sorted = this.sorted;
    let n = this.count;
    if (n === ROTATIONS_KEPT) {
      // The oldest sample leaves the sorted copy.
      const old = this.samples[this.next];
      let i = 0;
      while (sorted[i] !== old) i++;
      sorted.copyWithin(i, i + 1, n);
      n--;
    }
    let j = n;
    while (j > 0 && sorted[j - 1] > ms) { sorted[j] = sorted[j - 1]; j--; }
    sorted[j] = ms;
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % ROTATIONS_KEPT;
    this.count = n + 1;
    const median = sorted[this.count >> 1];
    this.boundMs = Math.min(this.maxMs, Math.max(this.minMs, 2 * median));
  }

  /** The current bound for a first re-send. */
  get bound(): number {
    return this.boundMs;
  }

  /** Delay before re-send number `attempt` (0 for the first) of one token. */
  delay(attempt: number): number {
    return Math.min(this.maxMs, this.boundMs * 2 ** Math.min(attempt, 30));
  }
}
