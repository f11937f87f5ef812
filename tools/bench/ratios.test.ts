// Proves the ratio summary across runs: each figure over its reference's, per run in order, a
// run without the row or without a reference figure left out of the median, rows without a
// reference not listed.
import { describe, expect, it } from 'vitest';
import { formatRatios, ratioLines } from './ratios.ts';
import type { BenchReport, LatencyRow, ThroughputRow } from './results.ts';

const tp = (size: number, mb: number, refMb: number | undefined, senders: 'one' | 'all' = 'one'): ThroughputRow => ({
  driver: 'totem', crypto: 'off', accelerated: 'off', nodes: 3, size, writes: 1, seconds: 2, tpPerSec: 1, tpMinPerSec: 1, mbPerSec: mb, ratio: undefined,
  counters: {}, senders,
  ...(refMb === undefined ? {} : { reference: { driver: 'corosync', crypto: 'off', accelerated: '-', nodes: 3, size, writes: 1, seconds: 2, tpPerSec: 1, tpMinPerSec: 1, mbPerSec: refMb, ratio: undefined, counters: {}, senders } }),
} as ThroughputRow);

const lat = (p99: number, refP99: number): LatencyRow => ({
  driver: 'totem', crypto: 'on', accelerated: 'off', nodes: 3, size: 100, load: 'idle', samples: 10, medianUs: 50, p99Us: p99,
  reference: { driver: 'corosync', crypto: 'on', accelerated: '-', nodes: 3, size: 100, load: 'idle', samples: 10, medianUs: 100, p99Us: refP99 },
} as LatencyRow);

const report = (throughput: ThroughputRow[], latency: LatencyRow[] = []): BenchReport => ({
  startedAt: '2026-12-06T00:00:00Z', command: 'afcluster bench', host: { cpus: 2, cpuModel: 'x', node: 'v20', platform: 'linux x64' },
  loadAverage: { start: 0, end: 0 }, latencyWarmupS: 3, throughput, latency, scaling: { throughput: [], latency: [] }, simScaling: [],
  memory: [{ driver: 'totem', crypto: 'off', accelerated: 'off', nodes: 3, peakRssBytes: [100, 90, 80], reference: { driver: 'corosync', crypto: 'off', accelerated: '-', nodes: 3, peakRssBytes: [400, 1, 1] } }],
  profiles: [], notes: [], reference: { name: 'corosync' },
} as unknown as BenchReport);

describe('ratios across runs', () => {
  it('lines up each figure over its reference by run, with the median of the runs that have it', () => {
    const lines = ratioLines([
      report([tp(100, 10, 20), tp(1300, 30, 20), tp(1300, 40, 20, 'all')], [lat(300, 200)]),
      report([tp(100, 15, 10), tp(1300, 20, Number.NaN)], [lat(100, 200)]), // a reference row that failed (NaN)
      report([tp(100, 12, 10), tp(1300, 45, 30), tp(64, 1, undefined)], [lat(400, 200)]), // 64 B: no reference, not listed
    ]);
    // A paced idle row is a figure of its own, not the back-to-back one.
    const paced = ratioLines([report([], [lat(300, 200), { ...lat(100, 200), intervalMs: 2 }])]).map((l) => l.what);
    expect(paced).toContain('100 B idle, one every 2 ms, crypto on: p99');
    expect(paced).toContain('100 B idle, crypto on: p99');
    expect(lines.map((l) => l.what)).toEqual([
      'one sender, crypto off, 100 B: MB/s', 'one sender, crypto off, 1300 B: MB/s', 'every node, crypto off, 1300 B: MB/s',
      '100 B idle, crypto on: median', '100 B idle, crypto on: p99', 'peak RSS of node 1, crypto off',
    ]);
    expect(lines[0]).toEqual({ what: lines[0].what, ratios: [0.5, 1.5, 1.2], median: 1.2 });
    expect(lines[1].ratios).toEqual([1.5, undefined, 1.5]);
    expect(lines[1].median).toBe(1.5);
    expect(lines[2].ratios).toEqual([2, undefined, undefined]);
    expect(lines[4]).toMatchObject({ ratios: [1.5, 0.5, 2], median: 1.5 });
    expect(lines[5]).toMatchObject({ ratios: [0.25, 0.25, 0.25], median: 0.25 });
    // Node 1's peak after each size, where the report has it.
    const bySize = report([]);
    const mem = { ...bySize.memory[0], bySize: [{ size: 100, node1Bytes: 50, referenceNode1Bytes: 100 }, { size: 65536, node1Bytes: 150, referenceNode1Bytes: 100 }, { size: 1048576, node1Bytes: 160 }] };
    const peaks = ratioLines([{ ...bySize, memory: [mem] }]).filter((l) => l.what.startsWith('peak RSS of node 1 after'));
    expect(peaks.map((l) => [l.what, l.ratios[0]])).toEqual([
      ['peak RSS of node 1 after 100 B, crypto off', 0.5], ['peak RSS of node 1 after 65536 B, crypto off', 1.5], ['peak RSS of node 1 after 1048576 B, crypto off', undefined],
    ]);
    const text = formatRatios(lines, 3, 'corosync');
    expect(text.split('\n')[0]).toMatch(/^afcluster x corosync\s+run 1\s+run 2\s+run 3\s+median$/);
    expect(text).toMatch(/one sender, crypto off, 1300 B: MB\/s\s+1\.50\s+-\s+1\.50\s+1\.50/);
  });
});
