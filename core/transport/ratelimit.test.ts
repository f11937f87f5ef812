// Proves the rate limiter lets one line per key per interval through, reports how many it suppressed meanwhile, keys are independent, and memory stays bounded under many keys.
import { describe, expect, it } from 'vitest';
import { RateLimiter } from './ratelimit.ts';

describe('RateLimiter', () => {
  it('one line per key per interval, with the count suppressed since the last', () => {
    let now = 0;
    const r = new RateLimiter<string>({ now: () => now, intervalMs: 10_000 });
    expect(r.take('a')).toBe(0);
    expect(r.take('a')).toBeUndefined();
    expect(r.take('b')).toBe(0); // another source has its own budget
    now = 9_999;
    expect(r.take('a')).toBeUndefined();
    now = 10_000;
    expect(r.take('a')).toBe(2);
    expect(r.take('a')).toBeUndefined();
    now = 30_000;
    expect(r.take('a')).toBe(1);
    expect(r.take('b')).toBe(0);
    expect(r.suppressedTotal).toBe(3);
  });

  it('past keysMax, new keys share one bucket', () => {
    let now = 0;
    const r = new RateLimiter<number>({ now: () => now, keysMax: 3 });
    const let_through = Array.from({ length: 1000 }, (_, i) => r.take(i)).filter((x) => x !== undefined).length;
    expect(let_through).toBe(4); // three keys of their own, one line for the overflow bucket
    now = 10_000;
    expect(r.take(5000)).toBe(996);
  });
});
