// Proves a driver's throughput row averages deliveries per node, keeps the slowest node, and the
// message tag round-trips; and that an idle latency row gives the CPU of the measured window per round trip.
import { describe, expect, it } from 'vitest';
import { readTag, writeTag } from './client-protocol.ts';
import { measureLatency, mergeLatency, mergeThroughput, throughputRow, type BenchTarget } from './driver-bench.ts';

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

describe('measureLatency', () => {
  it('divides the CPU used after the warm-up by the round trips measured (idle rows only)', async () => {
    // CPU seconds: 5 + 1 per call to cpu() while warming (not counted), then +0.2 daemons and +0.05 clients at the end.
    let phase: 'warm' | 'done' = 'warm';
    const cpu = { daemons: 5, clients: 1 };
    const target: BenchTarget = {
      size: 3,
      cpu: () => {
        if (phase === 'warm') { cpu.daemons += 1; cpu.clients += 1; }
        return { ...cpu };
      },
      stats: async () => [],
      ask: async <R,>(node: number, req: { type: string; warmupMs?: number }) => {
        if (req.type === 'latency') {
          await new Promise((r) => setTimeout(r, (req.warmupMs ?? 0) + 30));
          cpu.daemons += 0.2; cpu.clients += 0.05;
          phase = 'done';
          return { type: 'latency', samplesUs: Array.from({ length: 1000 }, (_, i) => 100 + i), errors: [] } as R;
        }
        if (req.type === 'throughput') return { type: 'throughput', written: 0, delivered: 0, elapsedS: 0.01, errors: [] } as R; // the load
        return { type: 'drained', rebound: false } as R; // the drain after the row
      },
    } as BenchTarget;
    const labels = { driver: 'totem', crypto: 'off' as const, accelerated: 'off' as const, order: 'agreed' as const };
    const { row } = await measureLatency(target, labels, { size: 100, seconds: 0.01, loadPerSec: 0, warmupMs: 20 });
    expect(row.samples).toBe(1000);
    expect(row.cpuUsPerRoundTrip?.daemons).toBeCloseTo(200); // 0.2 s / 1000
    expect(row.cpuUsPerRoundTrip?.clients).toBeCloseTo(50);
    phase = 'warm';
    const loaded = await measureLatency(target, labels, { size: 100, seconds: 0.01, loadPerSec: 10, warmupMs: 20 });
    expect(loaded.row.cpuUsPerRoundTrip).toBeUndefined();
  });

  it('asks the client to pace an idle row and labels the row with the interval', async () => {
    const asked: { type: string; intervalUs?: number }[] = [];
    const target = {
      size: 3, cpu: () => ({ daemons: 0, clients: 0 }), stats: async () => [],
      ask: async <R,>(_node: number, req: { type: string; intervalUs?: number }) => {
        asked.push(req);
        return (req.type === 'latency' ? { type: 'latency', samplesUs: [100, 200], errors: [] } : { type: 'drained', rebound: false }) as R;
      },
    } as unknown as BenchTarget;
    const labels = { driver: 'totem', crypto: 'off' as const, accelerated: 'off' as const, order: 'agreed' as const };
    const paced = await measureLatency(target, labels, { size: 100, seconds: 0.01, loadPerSec: 0, warmupMs: 0, intervalMs: 2 });
    expect(asked[0]).toMatchObject({ type: 'latency', intervalUs: 2000 });
    expect(paced.row).toMatchObject({ load: 'idle', intervalMs: 2 });
    asked.length = 0;
    const back = await measureLatency(target, labels, { size: 100, seconds: 0.01, loadPerSec: 0, warmupMs: 0 });
    expect(asked[0].intervalUs).toBeUndefined();
    expect(back.row.intervalMs).toBeUndefined();
  });

  it('after the row, drains every client and then waits until each sees every member, though none said it bound again', async () => {
    const asked: { node: number; type: string }[] = [];
    const target = {
      size: 3, cpu: () => ({ daemons: 0, clients: 0 }), stats: async () => [],
      ask: async <R,>(node: number, req: { type: string }) => {
        asked.push({ node, type: req.type });
        return (req.type === 'latency' ? { type: 'latency', samplesUs: [100], errors: [] } : { type: 'drained', rebound: false }) as R;
      },
    } as unknown as BenchTarget;
    await measureLatency(target, { driver: 'totem', crypto: 'off', accelerated: 'off', order: 'agreed' }, { size: 100, seconds: 0.01, loadPerSec: 0, warmupMs: 0 });
    expect(asked.map((a) => `${a.type} ${a.node}`)).toEqual(['latency 1', 'drain 1', 'drain 2', 'drain 3', 'waitMembers 1', 'waitMembers 2', 'waitMembers 3']);
  });
});

describe('mergeLatency', () => {
  const row = (samplesUs: number[], cpu?: { daemons: number; clients: number }) => ({
    row: {
      driver: 'totem', crypto: 'off' as const, accelerated: 'off' as const, nodes: 3, size: 100, load: 'idle' as const,
      samples: samplesUs.length, medianUs: NaN, p99Us: NaN, ...(cpu ? { cpuUsPerRoundTrip: cpu } : {}),
    },
    samplesUs,
  });

  it('gives the percentiles of all windows together, not of each, and the CPU weighted by samples', () => {
    // One window fast, one slow: the merged median lies between them, its p99 in the slow one.
    const fast = row(Array.from({ length: 300 }, (_, i) => 100 + (i % 10)), { daemons: 10, clients: 4 });
    const slow = row(Array.from({ length: 100 }, (_, i) => 1000 + i), { daemons: 30, clients: 8 });
    const m = mergeLatency([{ ...fast, row: { ...fast.row, p99Us: 109 } }, { ...slow, row: { ...slow.row, p99Us: 1098 } }]);
    expect(m.samples).toBe(400);
    expect(m.rounds).toBe(2);
    expect(m.windowsP99Us).toEqual([109, 1098]); // each window's own, as it said
    expect(m.medianUs).toBe(106); // rank 200 of 400: the fast window's
    expect(m.p99Us).toBe(1095); // rank 396 of 400: the slow window's 96th sample
    expect(m.cpuUsPerRoundTrip?.daemons).toBeCloseTo((10 * 300 + 30 * 100) / 400);
    expect(m.cpuUsPerRoundTrip?.clients).toBeCloseTo((4 * 300 + 8 * 100) / 400);
  });

  it('leaves out skipped windows, and keeps a single window as it is', () => {
    const w = row([200, 300, 400], { daemons: 1, clients: 1 });
    const skipped = { row: { ...row([]).row, skipped: 'corosync stopped' }, samplesUs: [] };
    const m = mergeLatency([w, skipped]);
    expect(m.samples).toBe(3);
    expect(m.medianUs).toBe(300);
    expect(m.skipped).toBeUndefined();
    expect(mergeLatency([skipped, skipped]).skipped).toBe('corosync stopped');
    expect(mergeLatency([w])).toBe(w.row);
    expect(() => mergeLatency([])).toThrow(RangeError);
  });

  it('gives no CPU figure when no window had one (rows under load)', () => {
    expect(mergeLatency([row([1, 2]), row([3, 4])]).cpuUsPerRoundTrip).toBeUndefined();
  });
});

describe('mergeThroughput', () => {
  const w = (tpPerSec: number, seconds: number, extra: object = {}) => ({
    driver: 'totem', crypto: 'off' as const, accelerated: 'off' as const, nodes: 3, size: 100, writes: tpPerSec * seconds, seconds,
    tpPerSec, tpMinPerSec: tpPerSec * 0.9, mbPerSec: (tpPerSec * 100) / 1e6, counters: {}, ...extra,
  });

  it('gives the rates over all windows: messages and seconds summed, not the mean of each rate', () => {
    const m = mergeThroughput([
      w(1000, 1, { counters: { retransmissions: 2, tokenRotationsPerSec: 100, messagesPerDatagram: 10 }, cpuUsPerMessage: { daemons: 4, clients: 2 } }),
      w(4000, 3, { counters: { retransmissions: 5, tokenRotationsPerSec: 300, configurations: 1 }, cpuUsPerMessage: { daemons: 2, clients: 1 } }),
    ]);
    expect(m.seconds).toBe(4);
    expect(m.writes).toBe(13000);
    expect(m.tpPerSec).toBeCloseTo(13000 / 4);
    expect(m.tpMinPerSec).toBeCloseTo((900 + 3600 * 3) / 4);
    expect(m.mbPerSec).toBeCloseTo((13000 / 4) * 100 / 1e6);
    expect(m.rounds).toBe(2);
    expect(m.windowsTpPerSec).toEqual([1000, 4000]);
    expect(m.counters).toEqual({ retransmissions: 7, configurations: 1, tokenRotationsPerSec: (100 + 900) / 4, messagesPerDatagram: 10 });
    // Per message: 1000 messages at 4 us and 12000 at 2 us.
    expect(m.cpuUsPerMessage?.daemons).toBeCloseTo((1000 * 4 + 12000 * 2) / 13000);
    expect(m.cpuUsPerMessage?.clients).toBeCloseTo((1000 * 2 + 12000 * 1) / 13000);
  });

  it('keeps the row of a single window, and leaves skipped windows out', () => {
    const one = w(1000, 2);
    expect(mergeThroughput([one])).toBe(one);
    const skipped = { ...w(NaN, NaN), skipped: 'corosync stopped' };
    const m = mergeThroughput([one, skipped]);
    expect(m.tpPerSec).toBe(1000);
    expect(m.skipped).toBeUndefined();
    expect(mergeThroughput([skipped, skipped]).skipped).toBe('corosync stopped');
    expect(() => mergeThroughput([])).toThrow(RangeError);
  });
});
