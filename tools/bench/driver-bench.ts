// Throughput and latency of one driver on a running BenchCluster: every node's client sends
// as fast as its daemon accepts and counts what its node delivers (evsbench's measure), or one
// client times round trips to its own delivery, idle or under a fixed background load.
import type { Order } from '../../core/driver/types.ts';
import type { BenchCluster } from './cluster.ts';
import type { ClientRequest, LatencyResult, ThroughputResult } from './client-protocol.ts';
import { driverCounters } from './counters.ts';
import { request } from './proc.ts';
import type { LatencyRow, ThroughputRow } from './results.ts';
import { summarizeLatency } from './stats.ts';

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

/** After a phase: wait for the backlog to drain so the next phase starts from a quiet ring. */
async function drain(c: BenchCluster): Promise<void> {
  const clients = Array.from({ length: c.size }, (_, i) => c.client(i + 1));
  const r = await Promise.all(clients.map((cl) => request<{ type: 'drained'; rebound: boolean }>(cl, { type: 'drain', quietMs: 150, maxMs: 5000 } satisfies ClientRequest, 30_000)));
  if (r.some((x) => x.rebound)) {
    await Promise.all(clients.map((cl) => request(cl, { type: 'waitMembers', members: c.size, timeoutMs: 30_000 } satisfies ClientRequest, 35_000)));
  }
}

/** Every node's client counts deliveries; the first `senders` of them (default all) also send. */
export async function measureThroughput(c: BenchCluster, l: RunLabels, size: number, seconds: number, senders = c.size): Promise<{ row: ThroughputRow; errors: string[] }> {
  const phase = nextPhase();
  const before = await c.stats();
  const req = (i: number): ClientRequest => ({ type: 'throughput', phase, size, order: l.order, warmupMs: WARMUP_MS, seconds, send: i < senders });
  // Stats are sampled at the window's edges (approximately: the clients time their own window).
  let cpuStart = c.cpu();
  const statsAtStart = new Promise<Awaited<ReturnType<BenchCluster['stats']>>>((res) => setTimeout(() => {
    cpuStart = c.cpu();
    res(c.stats());
  }, WARMUP_MS));
  const results = await Promise.all(Array.from({ length: c.size }, (_, i) => request<ThroughputResult>(c.client(i + 1), req(i), WARMUP_MS + seconds * 1000 + SLACK_MS)));
  const cpuEnd = c.cpu();
  const after = await c.stats();
  const start = await statsAtStart.catch(() => before);
  await drain(c);
  const row = throughputRow(l, size, results, driverCounters(start, after, seconds));
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
}

/** Node 1's client times round trips; with load, nodes 2..N send at loadPerSec in total. */
export async function measureLatency(c: BenchCluster, l: RunLabels, p: LatencyPlan): Promise<{ row: LatencyRow; errors: string[] }> {
  const phase = nextPhase();
  const timeout = WARMUP_MS + p.seconds * 1000 + SLACK_MS;
  const probe = request<LatencyResult>(c.client(1), {
    type: 'latency', phase, size: p.size, order: l.order, warmupMs: WARMUP_MS, seconds: p.seconds, samplesMax: 100_000,
  } satisfies ClientRequest, timeout);
  const others = p.loadPerSec > 0 && c.size > 1
    ? Array.from({ length: c.size - 1 }, (_, i) => request<ThroughputResult>(c.client(i + 2), {
      type: 'throughput', phase, size: p.size, order: l.order, warmupMs: WARMUP_MS, seconds: p.seconds, send: true,
      ratePerSec: p.loadPerSec / (c.size - 1),
    } satisfies ClientRequest, timeout))
    : [];
  const [lat, ...load] = await Promise.all([probe, ...others]);
  await drain(c);
  const s = summarizeLatency((lat as LatencyResult).samplesUs);
  const row: LatencyRow = {
    driver: l.driver, crypto: l.crypto, accelerated: l.accelerated, nodes: c.size, size: p.size,
    load: p.loadPerSec > 0 ? p.loadPerSec : 'idle', samples: s.samples, medianUs: s.medianUs, p99Us: s.p99Us,
  };
  return { row, errors: [...(lat as LatencyResult).errors, ...(load as ThroughputResult[]).flatMap((r) => r.errors)] };
}
