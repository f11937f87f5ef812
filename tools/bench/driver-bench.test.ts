// Proves a driver's throughput row averages deliveries per node, keeps the slowest node, and the message tag round-trips.
import { describe, expect, it } from 'vitest';
import { readTag, writeTag } from './client-protocol.ts';
import { throughputRow } from './driver-bench.ts';

describe('throughputRow', () => {
  it('averages deliveries per second over the nodes and sums writes', () => {
    const r = (delivered: number, written: number) => ({ type: 'throughput' as const, delivered, written, elapsedS: 2, errors: [] });
    const row = throughputRow({ driver: 'totem', crypto: 'off', accelerated: 'off', order: 'agreed' }, 1000, [r(2000, 700), r(2000, 600), r(1000, 700)], {});
    expect(row.tpPerSec).toBeCloseTo(5000 / 6);
    expect(row.tpMinPerSec).toBe(500);
    expect(row.writes).toBe(2000);
    expect(row.mbPerSec).toBeCloseTo((5000 / 6) * 1000 / 1e6);
    expect(row.seconds).toBe(2);
  });
});

describe('message tag', () => {
  it('writes and reads phase and sequence', () => {
    const b = new Uint8Array(16);
    writeTag(b, 0xfffffffe, 7);
    expect(readTag(b)).toEqual({ phase: 0xfffffffe, seq: 7 });
    expect(readTag(b.subarray(0, 4))).toBeUndefined();
  });
});
