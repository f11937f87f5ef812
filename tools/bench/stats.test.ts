// Proves percentile and summarizeLatency follow the nearest-rank definition on known samples.
import { describe, expect, it } from 'vitest';
import { percentile, summarizeLatency } from './stats.ts';

describe('percentile', () => {
  it('uses nearest rank', () => {
    const xs = [15, 20, 35, 40, 50];
    expect(percentile(xs, 5)).toBe(15);
    expect(percentile(xs, 30)).toBe(20);
    expect(percentile(xs, 40)).toBe(20);
    expect(percentile(xs, 50)).toBe(35);
    expect(percentile(xs, 100)).toBe(50);
    expect(percentile(xs, 0)).toBe(15);
  });
  it('does not depend on input order and does not sort the input', () => {
    const xs = [9, 1, 5, 3, 7];
    expect(percentile(xs, 50)).toBe(5);
    expect(xs).toEqual([9, 1, 5, 3, 7]);
  });
  it('p99 of 1..1000 is 990', () => {
    const xs = Array.from({ length: 1000 }, (_, i) => 1000 - i);
    expect(percentile(xs, 99)).toBe(990);
  });
  it('is NaN without samples and rejects p outside 0..100', () => {
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], NaN)).toThrow(RangeError);
  });
});

describe('summarizeLatency', () => {
  it('reports count, median, p99, min and max', () => {
    const s = summarizeLatency([300, 100, 200, 400]);
    expect(s).toEqual({ samples: 4, medianUs: 200, p99Us: 400, minUs: 100, maxUs: 400 });
  });
  it('is NaN-filled for no samples', () => {
    const s = summarizeLatency([]);
    expect(s.samples).toBe(0);
    expect(s.medianUs).toBeNaN();
  });
});
