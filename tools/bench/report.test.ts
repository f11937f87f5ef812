// Proves the printed report has a table per configuration with ceiling ratios, and the charts a line per configuration.
import { describe, expect, it } from 'vitest';
import type { BenchReport, ThroughputRow } from './results.ts';
import { formatReport, groupBy, scalingChart, simScalingChart, throughputChart } from './report.ts';

const base: ThroughputRow = {
  driver: 'udp', crypto: 'off', accelerated: '-', nodes: 3, size: 100, writes: 1, seconds: 1, tpPerSec: 1000, tpMinPerSec: 1000, mbPerSec: 0.1, counters: {},
};

function report(): BenchReport {
  return {
    startedAt: 't', command: 'afcluster bench', host: { cpus: 2, cpuModel: 'x', node: 'v20', platform: 'linux x64' },
    throughput: [base, { ...base, size: 1300, mbPerSec: 1.3 },
      { ...base, driver: 'totem', accelerated: 'off', mbPerSec: 0.05, ratio: 0.5 },
      { ...base, driver: 'totem', accelerated: 'off', size: 1300, mbPerSec: 0.65, ratio: 0.5 },
      { ...base, driver: 'totem', crypto: 'on', accelerated: 'off', mbPerSec: 0.04, ratio: 0.4 }],
    latency: [{ driver: 'totem', crypto: 'off', accelerated: 'off', nodes: 3, size: 100, load: 'idle', samples: 10, medianUs: 300, p99Us: 900 }],
    scaling: { throughput: [{ ...base, nodes: 2 }, { ...base, nodes: 3 }, { ...base, driver: 'cman', nodes: 2 }], latency: [] },
    simScaling: [{ driver: 'totem', transport: 'udpu', nodes: 2, size: 1300, tpPerSec: 5, mbPerSec: 1, datagramsPerMessage: 1.1 }],
    memory: [{ driver: 'totem', crypto: 'off', accelerated: 'off', nodes: 3, peakRssBytes: [100e6, 120e6, 90e6] }],
    loadAverage: { start: 1, end: 2 }, profiles: [], notes: ['a note'],
  };
}

describe('formatReport', () => {
  it('prints one throughput table per configuration, then latency, memory and notes', () => {
    const text = formatReport(report());
    const titles = [...text.matchAll(/^== (.*)$/gm)].map((m) => m[1].split(' (')[0]);
    expect(titles).toEqual(['clients', 'throughput: raw UDP ceiling', 'throughput: totem', 'throughput: totem + crypto', 'latency: round trip to agreed self-delivery at node 1',
      'peak daemon RSS', 'scaling on real daemons: throughput by node count', 'scaling in the simulator: modelled 1 Gbit LAN, virtual time', 'notes']);
    expect(text).toContain('50.0%');
    expect(text).toContain('120.0');
    expect(text).toContain('- a note');
    // With node 1's peak after each size, its table follows the whole run's.
    const r = report();
    const withSizes = formatReport({ ...r, memory: [{ ...r.memory[0], bySize: [{ size: 100, node1Bytes: 80e6 }] }] });
    const after = [...withSizes.matchAll(/^== (.*)$/gm)].map((m) => m[1].split(' (')[0]);
    expect(after.slice(after.indexOf('peak daemon RSS'), after.indexOf('peak daemon RSS') + 2)).toEqual(['peak daemon RSS', "node 1's peak RSS after each size"]);
  });

  it("says how long the latency rows' warm-up was (0.3 s in reports from before the option)", () => {
    expect(formatReport({ ...report(), latencyWarmupS: 1.5 })).toContain('; after 1.5 s of round trips not counted)');
    expect(formatReport(report())).toContain('; after 0.3 s of round trips not counted)');
  });

  it("names the afcluster rows' client library: TypeScript in reports from before --client, C with --client c", () => {
    expect(formatReport(report())).toContain("== clients\nafcluster's clients: the TypeScript library (ClusterSocket)");
    expect(formatReport({ ...report(), client: 'c' })).toContain("== clients\nafcluster's clients: the C library (clients/c) in afc-bench-worker");
  });
});

describe('formatReport with --reference', () => {
  const cs: ThroughputRow = { ...base, driver: 'corosync', mbPerSec: 0.02 };
  const withRef = (reference: BenchReport['reference'], refRow: ThroughputRow): BenchReport => ({
    ...report(), reference,
    throughput: [{ ...base, driver: 'totem', accelerated: 'off', senders: 'one', mbPerSec: 0.04, reference: refRow }, { ...base, driver: 'totem', accelerated: 'off', mbPerSec: 0.05, reference: refRow }],
  });

  it('says what the reference is first, then a table per workload with its rows interleaved', () => {
    const text = formatReport(withRef({ name: 'corosync', version: '3.1.7' }, cs));
    const titles = [...text.matchAll(/^== (.*)$/gm)].map((m) => m[1]);
    expect(titles[0]).toBe('clients');
    expect(titles[1]).toBe('reference: corosync');
    expect(titles[2]).toMatch(/^throughput: totem, one sender \(3 nodes, node 1's client alone sends;/);
    expect(titles[3]).toMatch(/^throughput: totem \(3 nodes, every node's client sends;/);
    expect(text).toMatch(/corosync 3\.1\.7: 3 nodes, each in its own network namespace on a bridge, knet, crypto aes256\+sha256 when on/);
    expect(text).toMatch(/^totem .* 2\.00x /m);
    expect(text).toMatch(/^corosync /m);
  });

  it('says that the latency rows under load carry the same load for both, where the reference measured one, and names the paced idle rows', () => {
    const lat = { driver: 'totem', crypto: 'off', accelerated: 'off', nodes: 3, size: 100, load: 5000, samples: 10, medianUs: 300, p99Us: 900 } as const;
    const ran = { ...withRef({ name: 'corosync', version: '3.1.7' }, cs), latency: [{ ...lat, reference: { ...lat, driver: 'corosync' } }] };
    expect(formatReport(ran)).toContain('(idle, and under half the lower of the two measured maxima, the same load for corosync;');
    const failed = { ...ran, latency: [{ ...lat, reference: { ...lat, driver: 'corosync', skipped: 'corosync stopped' } }] };
    expect(formatReport(failed)).toContain('(idle, and under 50% of the measured maximum;');
    // Idle rows only (--reference without --latency): no load to speak of.
    expect(formatReport(report())).toMatch(/\(idle; after [\d.]+ s of round trips not counted\)/);
    const paced = { ...ran, latency: [...ran.latency, { ...lat, load: 'idle' as const, intervalMs: 2 }] };
    expect(formatReport(paced)).toContain('(idle: back to back, and one every 2 ms ("idle, 1/2ms"), and under half the lower');
  });

  it('says when each row is several windows, taken in turns with the reference', () => {
    const lat = { driver: 'totem', crypto: 'off', accelerated: 'off', nodes: 3, size: 100, load: 'idle', samples: 30, medianUs: 300, p99Us: 900, rounds: 3 } as const;
    const withCs = withRef({ name: 'corosync', version: '3.1.7' }, { ...cs, rounds: 3 });
    const ran = { ...withCs, throughput: withCs.throughput.map((t) => ({ ...t, rounds: 3 })), latency: [{ ...lat, reference: { ...lat, driver: 'corosync' } }] };
    const text = formatReport(ran);
    expect(text).toContain("not counted; each row 3 windows, in turns with corosync's, its percentiles of all their samples)");
    expect(text).toContain("every node; each row 3 windows, in turns with corosync's, its rates over all of them)");
    expect(formatReport({ ...report(), latency: [lat] })).toContain('not counted; each row 3 windows, its percentiles of all their samples)');
    expect(formatReport(report())).not.toContain('windows');
  });

  it('says clearly why the reference was skipped, and prints its rows as skipped', () => {
    const skipped: ThroughputRow = { ...cs, writes: NaN, tpPerSec: NaN, mbPerSec: NaN, skipped: 'not root' };
    const text = formatReport(withRef({ name: 'corosync', skipped: 'network namespaces need root (run as root, e.g. sudo); the corosync rows are skipped' }, skipped));
    expect(text).toContain('== reference: corosync\ncorosync skipped: network namespaces need root (run as root, e.g. sudo); the corosync rows are skipped\n');
    expect(text).toMatch(/^corosync\s+off\s+-\s+3\s+skipped\s+100 /m);
  });
});

describe('charts', () => {
  it('draw a line per configuration and the ceiling dashed', () => {
    const svg = throughputChart(report());
    expect([...svg.matchAll(/data-name="([^"]+)"/g)].map((m) => m[1])).toEqual(['raw UDP ceiling', 'totem', 'totem + crypto']);
    expect(scalingChart(report())).toContain('data-name="cman"');
    expect(simScalingChart(report())).toContain('data-name="totem udpu"');
  });
  it('groupBy keeps first-seen order', () => {
    expect([...groupBy([3, 1, 4, 1, 5], (x) => String(x % 2)).keys()]).toEqual(['1', '0']);
  });
});
