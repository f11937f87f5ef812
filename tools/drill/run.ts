// The consistency drill: K worker processes on N real daemons race for the same few locks for
// S seconds; each records every decision its table took and what it held; the checker counts
// double grants and disagreements. The order requested is the best the driver gives: agreed
// under totem, fifo under cman (which then shows what happens without agreed order).
import { fileURLToPath } from 'node:url';
import type { Order } from '../../core/driver/types.ts';
import { builtinRegistry } from '../../core/driver/builtin.ts';
import { request, spawnWorker, stop } from '../bench/proc.ts';
import { checkDrill, type DrillReport, type ObserverRecord } from './checker.ts';
import { DrillCluster } from './cluster.ts';
import type { DrillReply, DrillRequest } from './protocol.ts';
import type { WorkloadResult } from './workload.ts';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
const OPEN_TIMEOUT_MS = 60_000;
export const DRILL_GROUP = 'afcluster.drill';

export interface DrillOptions {
  readonly driver: string;
  readonly nodes: number;
  readonly workers: number;
  readonly seconds: number;
  readonly seed: number;
  /** How many lock names the workers race for (default 3). */
  readonly locks?: number;
  readonly port?: number;
  readonly keep?: boolean;
  readonly log?: (line: string) => void;
}

export interface WorkerOutcome {
  readonly observer: string;
  readonly nodeId: number;
  readonly result: WorkloadResult;
  readonly error?: string;
  readonly truncated: boolean;
  readonly table: Record<string, number | string>;
}

export interface DrillOutcome {
  readonly driver: string;
  readonly order: Order;
  readonly seed: number;
  readonly report: DrillReport;
  readonly workers: readonly WorkerOutcome[];
  readonly daemonFailures: readonly string[];
}

/** agreed if the driver gives it, else fifo: the drill measures what the driver gives. */
export function drillOrder(driver: string): Order {
  return builtinRegistry().get(driver).guarantees.agreed ? 'agreed' : 'fifo';
}

function ask<T extends DrillReply['type']>(w: ReturnType<typeof spawnWorker>, req: DrillRequest, type: T, timeoutMs: number): Promise<Extract<DrillReply, { type: T }>> {
  return request<Extract<DrillReply, { type: T }>>(w, req, timeoutMs).then((r) => {
    if (r.type !== type) throw new Error(`drill worker ${w.pid} answered ${r.type} to ${req.type}`);
    return r;
  });
}

export async function runDrill(o: DrillOptions): Promise<DrillOutcome> {
  const log = o.log ?? (() => undefined);
  const order = drillOrder(o.driver);
  log(`drill: driver ${o.driver} (order ${order}), ${o.nodes} nodes, ${o.workers} workers, ${o.seconds} s, seed ${o.seed}`);
  const cluster = await DrillCluster.start({ driver: o.driver, nodes: o.nodes, port: o.port, keep: o.keep });
  const procs = Array.from({ length: o.workers }, () => spawnWorker(WORKER));
  try {
    log(`drill: cluster up in ${cluster.dir}; starting workers`);
    const observers = procs.map((_, i) => ({ node: cluster.nodes[i % o.nodes], observer: `n${(i % o.nodes) + 1}w${Math.floor(i / o.nodes) + 1}` }));
    await Promise.all(procs.map((w, i) => ask(w, { type: 'open', socket: observers[i].node.socket, group: DRILL_GROUP, order, observer: observers[i].observer, timeoutMs: OPEN_TIMEOUT_MS }, 'ready', OPEN_TIMEOUT_MS + 5000)));
    await Promise.all(procs.map((w) => ask(w, { type: 'waitMembers', count: o.workers, timeoutMs: OPEN_TIMEOUT_MS }, 'members', OPEN_TIMEOUT_MS + 5000)));
    log('drill: every worker holds the table; racing');
    const names = Array.from({ length: o.locks ?? 3 }, (_, i) => `drill-${i}`);
    const done = await Promise.all(procs.map((w, i) => ask(w, { type: 'run', names, seconds: o.seconds, seed: (o.seed + i * 7919) >>> 0 }, 'done', o.seconds * 1000 + 60_000)));
    const records = await Promise.all(procs.map((w) => ask(w, { type: 'record' }, 'record', 60_000)));
    const report = checkDrill(records.map((r) => r.record as ObserverRecord));
    const workers = records.map((r, i) => ({ observer: r.record.observer, nodeId: r.record.nodeId, result: done[i].result, error: done[i].error, truncated: r.truncated, table: r.table }));
    return { driver: o.driver, order, seed: o.seed, report, workers, daemonFailures: cluster.failures() };
  } finally {
    await Promise.all(procs.map((w) => stop(w, 5000)));
    await cluster.stop();
  }
}
