// Proves the bench tables: evsbench's columns, alignment, '-' for absent values, ratios as percentages.
import { describe, expect, it } from 'vitest';
import type { LatencyRow, MemoryRow, ThroughputRow } from './results.ts';
import { skippedLatency, skippedThroughput } from './reference.ts';
import { fixed, formatLatencyTable, formatMemoryTable, formatPeakBySizeTable, formatTable, formatThroughputTable, percent, times } from './table.ts';

const row: ThroughputRow = {
  driver: 'totem', crypto: 'off', accelerated: 'on', nodes: 3, size: 1300, writes: 123456, seconds: 3.0004,
  tpPerSec: 41152.3456, tpMinPerSec: 41000, mbPerSec: 53.498, ratio: 0.4071, counters: { retransmissions: 0, tokenRotationsPerSec: 2100.4, messagesPerDatagram: 1 },
};

describe('formatTable', () => {
  it('pads columns to the widest cell and aligns left or right', () => {
    const t = formatTable([
      { header: 'name', align: 'left', cell: (r: { n: string; v: number }) => r.n },
      { header: 'v', align: 'right', cell: (r: { n: string; v: number }) => String(r.v) },
    ], [{ n: 'a', v: 1000 }, { n: 'long-name', v: 2 }]);
    expect(t.split('\n')).toEqual([
      'name          v',
      '---------  ----',
      'a          1000',
      'long-name     2',
    ]);
  });
});

describe('formatThroughputTable', () => {
  it("prints evsbench's columns, the ratio to the ceiling and the counters", () => {
    const lines = formatThroughputTable([row, { ...row, driver: 'udp', accelerated: '-', ratio: undefined, counters: {} }]).split('\n');
    expect(lines[0]).toMatch(/^driver\s+crypto\s+accel\s+nodes\s+writes\s+bytes\/write\s+seconds\s+TP\/s\s+MB\/s\s+of ceiling\s+retrans\s+rot\/s\s+cpu us\/msg d\+c\s+msg\/dgram$/);
    const cells = lines[2].split(/\s+/);
    expect(cells).toEqual(['totem', 'off', 'on', '3', '123456', '1300', '3.000', '41152.3', '53.498', '40.7%', '0', '2100', '-', '1.0']);
    expect(lines[3].split(/\s+/).slice(-5)).toEqual(['-', '-', '-', '-', '-']);
    expect(new Set(lines.map((l) => l.length)).size).toBeLessThanOrEqual(2);
  });
});

describe('formatLatencyTable', () => {
  it('shows idle or the load, microseconds without decimals, and CPU per round trip where measured', () => {
    const l: LatencyRow = { driver: 'cman', crypto: 'on', accelerated: '-', nodes: 3, size: 100, load: 'idle', samples: 500, medianUs: 412.7, p99Us: 990.2, cpuUsPerRoundTrip: { daemons: 329.4, clients: 117.6 } };
    const lines = formatLatencyTable([l, { ...l, load: 20000.4, cpuUsPerRoundTrip: undefined }]).split('\n');
    expect(lines[0]).toMatch(/p99 us\s+cpu us\/rt d\+c$/);
    expect(lines[2].split(/\s+/)).toEqual(['cman', 'on', '-', '3', '100', 'idle', '500', '413', '990', '329+118']);
    expect(lines[3].split(/\s+/).slice(5)).toEqual(['20000', '500', '413', '990', '-']);
    const paced = formatLatencyTable([{ ...l, intervalMs: 2 }]).split('\n');
    expect(paced[2]).toMatch(/\b100\s+idle, 1\/2ms\s+500\s+413\s+990\b/);
  });
});

describe('with a reference', () => {
  const cs: ThroughputRow = { ...row, driver: 'corosync', accelerated: '-', writes: 1000, tpPerSec: 20576.2, mbPerSec: 26.749, ratio: undefined, counters: {} };
  const cells = (line: string) => line.trim().split(/\s+/);

  it('prints each row then the reference row below it, and the ratio of MB/s after "of ceiling"', () => {
    const lines = formatThroughputTable([{ ...row, reference: cs }, { ...row, size: 100, mbPerSec: 1, reference: { ...cs, size: 100, mbPerSec: 4 } }]).split('\n');
    expect(cells(lines[0]).slice(8, 12)).toEqual(['MB/s', 'of', 'ceiling', 'x']);
    expect(lines[0]).toContain('of ceiling  x corosync  retrans');
    expect(lines.slice(2).map((l) => cells(l)[0])).toEqual(['totem', 'corosync', 'totem', 'corosync']);
    expect(cells(lines[2])[10]).toBe('2.00x');
    expect(cells(lines[4])[10]).toBe('0.25x');
    // The reference's own row has no ratio of its own: its next cell is the counters'.
    expect(cells(lines[3]).slice(9, 11)).toEqual(['-', '-']);
  });

  it('has no ratio column without a reference, as before', () => {
    expect(formatThroughputTable([row])).not.toContain('x corosync');
  });

  it('prints a skipped reference row as skipped, and its ratio as -', () => {
    const skipped = skippedThroughput({ driver: 'corosync', crypto: 'off', accelerated: '-', order: 'agreed' }, 3, 1300, 'one', 'corosync is not installed');
    const lines = formatThroughputTable([{ ...row, senders: 'one', reference: skipped }]).split('\n');
    expect(cells(lines[2])[10]).toBe('-');
    expect(cells(lines[3]).slice(0, 7)).toEqual(['corosync', 'off', '-', '3', 'skipped', '1300', '-']);
  });

  it('gives latency the ratios of median and p99, afcluster over the reference', () => {
    const l: LatencyRow = { driver: 'totem', crypto: 'off', accelerated: 'off', nodes: 3, size: 100, load: 'idle', samples: 500, medianUs: 300, p99Us: 3000 };
    const ref: LatencyRow = { ...l, driver: 'corosync', accelerated: '-', medianUs: 400, p99Us: 1000 };
    const lines = formatLatencyTable([{ ...l, reference: ref }, { ...l, size: 1300, reference: skippedLatency({ ...ref, order: 'agreed' }, 3, { size: 1300, seconds: 1, loadPerSec: 0 }, 'not root') }]).split('\n');
    expect(lines[0]).toMatch(/p99 us\s+median x corosync\s+p99 x corosync\s+cpu us\/rt d\+c$/);
    expect(cells(lines[2]).slice(-3)).toEqual(['0.75x', '3.00x', '-']);
    expect(cells(lines[3])).toEqual(['corosync', 'off', '-', '3', '100', 'idle', '500', '400', '1000', '-']);
    expect(cells(lines[4]).slice(-3)).toEqual(['-', '-', '-']);
    expect(cells(lines[5])).toEqual(['corosync', 'off', '-', '3', '1300', 'idle', 'skipped', '-', '-', '-']);
  });

  it("gives memory the ratio of node 1's daemon (the sender's) to the reference's", () => {
    const m: MemoryRow = { driver: 'totem', crypto: 'on', accelerated: 'off', nodes: 3, peakRssBytes: [186e6, 200e6, 150e6] };
    const ref: MemoryRow = { driver: 'corosync', crypto: 'on', accelerated: '-', nodes: 3, peakRssBytes: [93e6, 90e6, 91e6] };
    const lines = formatMemoryTable([{ ...m, reference: ref }, { ...m, reference: { ...ref, peakRssBytes: [], skipped: 'no corosync' } }]).split('\n');
    expect(lines[0]).toMatch(/peak RSS MB \(max\)\s+node 1 x corosync\s+per daemon MB/);
    expect(cells(lines[2])).toEqual(['totem', 'on', 'off', '3', '200.0', '2.00x', '186.0', '200.0', '150.0']);
    expect(cells(lines[3])).toEqual(['corosync', 'on', '-', '3', '93.0', '93.0', '90.0', '91.0']);
    expect(cells(lines[4])[5]).toBe('-');
    expect(cells(lines[5])).toEqual(['corosync', 'on', '-', '3', '-', 'skipped']);
  });

  it("gives node 1's peak after each size, with the reference's at the same moment and their ratio", () => {
    const m: MemoryRow = {
      driver: 'totem', crypto: 'off', accelerated: 'off', nodes: 3, peakRssBytes: [150e6, 1, 1],
      bySize: [{ size: 100, node1Bytes: 80e6, referenceNode1Bytes: 90e6 }, { size: 65536, node1Bytes: 150e6, referenceNode1Bytes: 100e6 }, { size: 1048576, node1Bytes: 160e6 }],
      reference: { driver: 'corosync', crypto: 'off', accelerated: '-', nodes: 3, peakRssBytes: [400e6, 1, 1] },
    };
    const lines = formatPeakBySizeTable([m]).split('\n');
    expect(lines[0]).toMatch(/after size B\s+node 1 peak RSS MB\s+x corosync$/);
    expect(cells(lines[2])).toEqual(['totem', 'off', 'off', '100', '80.0', '0.89x']);
    expect(cells(lines[3])).toEqual(['corosync', 'off', '-', '100', '90.0']);
    expect(cells(lines[4])).toEqual(['totem', 'off', 'off', '65536', '150.0', '1.50x']);
    expect(cells(lines[6])).toEqual(['totem', 'off', 'off', '1048576', '160.0', '-']); // the reference's not read
    expect(cells(lines[7])).toEqual(['corosync', 'off', '-', '1048576', '-']);
    // Without a reference: our rows alone, no ratio column; an old report without bySize: no table.
    const alone = formatPeakBySizeTable([{ ...m, reference: undefined }]).split('\n');
    expect(alone[0]).toMatch(/node 1 peak RSS MB$/);
    expect(alone).toHaveLength(5);
    expect(formatPeakBySizeTable([{ ...m, bySize: undefined }])).toBe('');
  });

  it('times() divides, and says - for what is missing', () => {
    expect(times(8.2, 1)).toBe('8.20x');
    expect(times(1, NaN)).toBe('-');
    expect(times(1, 0)).toBe('-');
    expect(times(undefined, 1)).toBe('-');
  });
});

describe('fixed and percent', () => {
  it('print - for missing or non-finite numbers', () => {
    expect(fixed(undefined, 1)).toBe('-');
    expect(fixed(NaN, 1)).toBe('-');
    expect(fixed(1.25, 1)).toBe('1.3');
    expect(percent(undefined)).toBe('-');
    expect(percent(0.5)).toBe('50.0%');
  });
});
