// Rate-limited logging: at most one line per key (a source address) per interval, and the line
// says how many were suppressed since the previous one. Memory is bounded: past `keysMax` keys,
// new keys share one overflow bucket.

/** One line per source per this many milliseconds. */
export const DROP_LOG_INTERVAL_MS = 10_000;

export interface RateLimitOptions {
  readonly intervalMs?: number;
  /** Monotonic milliseconds. */
  readonly now: () => number;
  readonly keysMax?: number;
}

interface Bucket {
  /** When the last line was let through. */
  at: number;
  suppressed: number;
}

const OVERFLOW = Symbol('overflow');

export class RateLimiter<K> {
  private readonly intervalMs: number;
  private readonly keysMax: number;
  private readonly buckets = new Map<K | typeof OVERFLOW, Bucket>();
  /** Every suppressed line, over all keys and all time. */
  suppressedTotal = 0;

  constructor(private readonly opts: RateLimitOptions) {
    this.intervalMs = opts.intervalMs ?? DROP_LOG_INTERVAL_MS;
    this.keysMax = opts.keysMax ?? 1024;
  }

  /**
   * Whether to log a line for `key` now. If so, the number of lines suppressed for it since its
   * previous line (to say in this one); if not, undefined, and this one is counted as suppressed.
   */
  take(key: K): number | undefined {
    const now = this.opts.now();
    const k = this.buckets.has(key) || this.buckets.size < this.keysMax ? key : OVERFLOW;
    const b = this.buckets.get(k);
    if (b === undefined) {
      this.buckets.set(k, { at: now, suppressed: 0 });
      return 0;
    }
    if (now - b.at >= this.intervalMs) {
      const n = b.suppressed;
      b.at = now;
      b.suppressed = 0;
      return n;
    }
    b.suppressed++;
    this.suppressedTotal++;
    return undefined;
  }
}
