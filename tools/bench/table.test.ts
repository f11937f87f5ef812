// Proves the bench tables: evsbench's columns, alignment, '-' for absent values, ratios as percentages.
import { describe, expect, it } from 'vitest';
import type { LatencyRow, ThroughputRow } from './results.ts';
import { fixed, formatLatencyTable, formatTable, formatThroughputTable, percent } from './table.ts';

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
  it('shows idle or the load, and microseconds without decimals', () => {
    const l: LatencyRow = { driver: 'cman', crypto: 'on', accelerated: '-', nodes: 3, size: 100, load: 'idle', samples: 500, medianUs: 412.7, p99Us: 990.2 };
    const lines = formatLatencyTable([l, { ...l, load: 20000.4 }]).split('\n');
    expect(lines[2].split(/\s+/)).toEqual(['cman', 'on', '-', '3', '100', 'idle', '500', '413', '990']);
    expect(lines[3].split(/\s+/)[5]).toBe('20000');
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
