// Throughput and latency of one driver on a running cluster: every node's client (or node 1's
// alone) sends as fast as its daemon accepts and counts what its node delivers (evsbench's
// measure), or one client times round trips to its own delivery, idle or under a fixed
// background load. The cluster is afcluster's (cluster.ts) or the corosync reference's (corosync.ts).
import type { StatValue } from '../../core/af/codec.ts';
import type { Order } from '../../core/driver/types.ts';
import type { ClientRequest, LatencyResult, ThroughputResult } from './client-protocol.ts';
import { driverCounters } from './counters.ts';
import type { WorkerReply } from './proc.ts';
import type { LatencyRow, Senders, ThroughputRow } from './results.ts';
import { summarizeLatency } from './stats.ts';

/** A running cluster with one bench client per node. */
export interface BenchTarget {
  readonly size: number;
  /** Sends one request to node i's client (1-based) and resolves with its reply; an error reply rejects. */
  ask<R extends WorkerReply>(node: number, req: ClientRequest, timeoutMs: number): Promise<R>;
  /** Every daemon's counters, node 1 first (empty when the daemons have no STATS). */
  stats(): Promise<Record<string, StatValue>[]>;
  /** CPU seconds used so far by the daemons and by the clients (summed over each kind). */
  cpu(): { daemons: number; clients: number };
}

export interface RunLabels {
  readonly driver: string;
  readonly crypto: 'on' | 'off';
  readonly accelerated: 'on' | 'off' | '-';
  readonly order: Order;
}

export const WARMUP_MS = 300;
const SLACK_MS = 60_000;
let phaseCounter = 0;

function nextPhase(): number {
  phaseCounter = (phaseCounter + 1) >>> 0;
  return phaseCounter;
}

/** After a phase: wait for the backlog to drain so the next phase starts from a quiet ring, with
 *  every client in the group (one removed for falling behind binds again, also when the removal
 *  comes after its drain: every client is asked, not only after one said it bound again). */
async function drain(c: BenchTarget): Promise<void> {
  const nodes = Array.from({ length: c.size }, (_, i) => i + 1);
  // A client's reply says whether it bound again (`rebound`); every client is asked for members anyway.
  await Promise.all(nodes.map((i) => c.ask(i, { type: 'drain', quietMs: 150, maxMs: 5000 }, 30_000)));
  await Promise.all(nodes.map((i) => c.ask(i, { type: 'waitMembers', members: c.size, timeoutMs: 30_000 }, 35_000)));
}

/** senders 'one': node 1's client sends and every node's counts (the others send nothing). */
export async function measureThroughput(c: BenchTarget, l: RunLabels, size: number, seconds: number, senders: Senders = 'all'): Promise<{ row: ThroughputRow; errors: string[] }> {
  const phase = nextPhase();
  const before = await c.stats();
  const req = (node: number): ClientRequest => ({ type: 'throughput', phase, size, order: l.order, warmupMs: WARMUP_MS, seconds, send: senders === 'all' || node === 1 });
  // Stats are sampled at the window's edges (approximately: the clients time their own window).
  let cpuStart = c.cpu();
  const statsAtStart = new Promise<Awaited<ReturnType<BenchTarget['stats']>>>((res) => setTimeout(() => {
    cpuStart = c.cpu();
    res(c.stats());
  }, WARMUP_MS));
  const results = await Promise.all(Array.from({ length: c.size }, (_, i) => c.ask<ThroughputResult>(i + 1, req(i + 1), WARMUP_MS + seconds * 1000 + SLACK_MS)));
  const cpuEnd = c.cpu();
  const after = await c.stats();
  const start = await statsAtStart.catch(() => before);
  await drain(c);
  const counted = throughputRow(l, size, results, driverCounters(start, after, seconds));
  const row = senders === 'one' ? { ...counted, senders } : counted;
  const messages = row.tpPerSec * row.seconds;
  const cpuUsPerMessage = messages > 0
    ? { daemons: ((cpuEnd.daemons - cpuStart.daemons) * 1e6) / messages, clients: ((cpuEnd.clients - cpuStart.clients) * 1e6) / messages }
    : undefined;
  return { row: { ...row, cpuUsPerMessage }, errors: results.flatMap((r) => r.errors) };
}

/** The row from every client's result (pure). TP/s = messages delivered per second at each node, averaged. */
export function throughputRow(l: RunLabels, size: number, results: readonly ThroughputResult[], counters: ThroughputRow['counters']): ThroughputRow {
  const n = results.length;
  const perNode = results.map((r) => r.delivered / r.elapsedS);
  const tp = perNode.reduce((a, b) => a + b, 0) / n;
  return {
    driver: l.driver, crypto: l.crypto, accelerated: l.accelerated, nodes: n, size,
    writes: results.reduce((a, r) => a + r.written, 0),
    seconds: results.reduce((a, r) => a + r.elapsedS, 0) / n,
    tpPerSec: tp, tpMinPerSec: Math.min(...perNode), mbPerSec: (tp * size) / 1e6, counters,
  };
}

export interface LatencyPlan {
  readonly size: number;
  readonly seconds: number;
  /** Background messages per second from all other nodes together; 0 = idle. */
  readonly loadPerSec: number;
  /** Round trips (and load) before samples count; absent: WARMUP_MS. */
  readonly warmupMs?: number;
  /** Idle only: start a round trip every this many ms (absent: back to back). */
  readonly intervalMs?: number;
}

/** A window's place in its row, for the progress line: nothing for a row of one window (--rounds). */
export function windowLabel(round: number, rounds: number): string {
  return rounds > 1 ? ` (window ${round} of ${rounds})` : '';
}

/** An idle latency row's name: back to back, or paced (LatencyPlan.intervalMs). */
export function idleRowName(intervalMs?: number): string {
  return intervalMs ? `idle, one every ${intervalMs} ms` : 'idle';
}

/** One latency window: its row, and the samples it was summarised from (for mergeLatency). */
export interface LatencyWindow {
  readonly row: LatencyRow;
  readonly errors: string[];
  readonly samplesUs: readonly number[];
}

/** Node 1's client times round trips; with load, nodes 2..N send at loadPerSec in total. */
export async function measureLatency(c: BenchTarget, l: RunLabels, p: LatencyPlan): Promise<LatencyWindow> {
  const phase = nextPhase();
  const warmupMs = p.warmupMs ?? WARMUP_MS;
  const timeout = warmupMs + p.seconds * 1000 + SLACK_MS;
  // CPU of every daemon and client over the window the samples come from (approximately, as for
  // throughput: the client times its own), idle rows only: under load it is the load's.
  let cpuStart = c.cpu();
  const warm = setTimeout(() => { cpuStart = c.cpu(); }, warmupMs);
  const probe = c.ask<LatencyResult>(1, {
    type: 'latency', phase, size: p.size, order: l.order, warmupMs, seconds: p.seconds, samplesMax: 100_000,
    ...(p.intervalMs ? { intervalUs: p.intervalMs * 1000 } : {}),
  }, timeout);
  const others = p.loadPerSec > 0 && c.size > 1
    ? Array.from({ length: c.size - 1 }, (_, i) => c.ask<ThroughputResult>(i + 2, {
      type: 'throughput', phase, size: p.size, order: l.order, warmupMs, seconds: p.seconds, send: true,
      ratePerSec: p.loadPerSec / (c.size - 1),
    }, timeout))
    : [];
  const [lat, ...load] = await Promise.all([probe, ...others]).finally(() => clearTimeout(warm));
  const cpuEnd = c.cpu();
  await drain(c);
  const s = summarizeLatency((lat as LatencyResult).samplesUs);
  const row: LatencyRow = {
    driver: l.driver, crypto: l.crypto, accelerated: l.accelerated, nodes: c.size, size: p.size,
    load: p.loadPerSec > 0 ? p.loadPerSec : 'idle', ...(p.intervalMs ? { intervalMs: p.intervalMs } : {}), samples: s.samples, medianUs: s.medianUs, p99Us: s.p99Us,
    ...(p.loadPerSec === 0 && s.samples > 0
      ? { cpuUsPerRoundTrip: { daemons: ((cpuEnd.daemons - cpuStart.daemons) * 1e6) / s.samples, clients: ((cpuEnd.clients - cpuStart.clients) * 1e6) / s.samples } }
      : {}),
  };
  return { row, errors: [...(lat as LatencyResult).errors, ...(load as ThroughputResult[]).flatMap((r) => r.errors)], samplesUs: (lat as LatencyResult).samplesUs };
}

/**
 * One row from several windows of the same work (--rounds, taken in turns with the reference's):
 * messages and seconds summed, so the rates are over all the windows; the counters that are
 * counts summed, those that are rates weighted by each window's seconds; the CPU per message
 * weighted by each window's messages; and `rounds`: how many windows. A skipped window is left
 * out; the row is the first one's, skipped, when every window was (pure).
 */
export function mergeThroughput(windows: readonly ThroughputRow[]): ThroughputRow {
  if (windows.length === 0) throw new RangeError('mergeThroughput: no windows');
  const measured = windows.filter((w) => w.skipped === undefined);
  if (measured.length === 0) return windows[0];
  if (windows.length === 1) return measured[0];
  const seconds = (w: ThroughputRow): number => w.seconds;
  const messages = (w: ThroughputRow): number => w.tpPerSec * w.seconds;
  const tp = weightedMean(measured, (w) => w.tpPerSec, seconds);
  const counters: Record<string, number> = {};
  for (const key of ['retransmissions', 'tokenRetransmissions', 'configurations'] as const) {
    const has = measured.filter((w) => w.counters[key] !== undefined);
    if (has.length > 0) counters[key] = has.reduce((a, w) => a + w.counters[key]!, 0);
  }
  for (const key of ['tokenRotationsPerSec', 'messagesPerDatagram'] as const) {
    const rate = weightedMean(measured.filter((w) => w.counters[key] !== undefined), (w) => w.counters[key]!, seconds);
    if (Number.isFinite(rate)) counters[key] = rate;
  }
  const cpu = measured.filter((w) => w.cpuUsPerMessage !== undefined && messages(w) > 0);
  const { cpuUsPerMessage: _, ...first } = measured[0];
  return {
    ...first, writes: measured.reduce((a, w) => a + w.writes, 0), seconds: measured.reduce((a, w) => a + w.seconds, 0), tpPerSec: tp,
    tpMinPerSec: weightedMean(measured, (w) => w.tpMinPerSec, seconds),
    mbPerSec: (tp * first.size) / 1e6, counters, rounds: windows.length, windowsTpPerSec: windows.map((w) => w.tpPerSec),
    ...(cpu.length > 0 ? { cpuUsPerMessage: {
      daemons: weightedMean(cpu, (w) => w.cpuUsPerMessage!.daemons, messages),
      clients: weightedMean(cpu, (w) => w.cpuUsPerMessage!.clients, messages),
    } } : {}),
  };
}

/**
 * One row from several windows of the same work (--rounds, taken in turns with the
 * reference's): percentiles of all their samples together, the CPU per round trip weighted by
 * each window's samples, and `rounds`: how many windows. A skipped window is left out; the row
 * is the first one's, skipped, when every window was (pure).
 */
export function mergeLatency(windows: readonly Pick<LatencyWindow, 'row' | 'samplesUs'>[]): LatencyRow {
  if (windows.length === 0) throw new RangeError('mergeLatency: no windows');
  const measured = windows.filter((w) => w.row.skipped === undefined);
  if (measured.length === 0) return windows[0].row;
  if (windows.length === 1) return measured[0].row;
  const s = summarizeLatency(measured.flatMap((w) => w.samplesUs));
  const cpu = measured.filter((w) => w.row.cpuUsPerRoundTrip !== undefined && w.row.samples > 0);
  const samples = (w: Pick<LatencyWindow, 'row'>): number => w.row.samples;
  const { cpuUsPerRoundTrip: _, ...first } = measured[0].row;
  return {
    ...first, samples: s.samples, medianUs: s.medianUs, p99Us: s.p99Us, rounds: windows.length, windowsP99Us: windows.map((w) => w.row.p99Us),
    ...(cpu.length > 0 ? { cpuUsPerRoundTrip: {
      daemons: weightedMean(cpu, (w) => w.row.cpuUsPerRoundTrip!.daemons, samples),
      clients: weightedMean(cpu, (w) => w.row.cpuUsPerRoundTrip!.clients, samples),
    } } : {}),
  };
}

/** The mean of `value` over `items`, each weighted by `weight`; NaN when the weights sum to 0 (pure). */
function weightedMean<T>(items: readonly T[], value: (t: T) => number, weight: (t: T) => number): number {
  let sum = 0, total = 0;
  for (const t of items) {
    sum += value(t) * weight(t);
    total += weight(t);
  }
  return total > 0 ? sum / total : NaN;
}
