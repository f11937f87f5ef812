// The consistency drill: K worker processes on N real daemons race for the same few locks for
// S seconds; each records every decision its table took and what it held; the checker counts
// double grants and disagreements. The order requested is the best the driver gives: agreed
// under totem, fifo under cman (which then shows what happens without agreed order).
import { fileURLToPath } from 'node:url';
import type { Order } from '../../core/driver/types.ts';
import { builtinRegistry } from '../../drivers/builtin.ts';
import { exitOnSignals, request, spawnWorker, stop } from '../bench/proc.ts';
import { LocalCluster } from '../local-cluster.ts';
import { checkDrill, type DrillReport, type ObserverRecord } from './checker.ts';
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
  /** Extra workers that join halfway through the race (they get the table by snapshot, under load). */
  readonly late?: number;
  /** Workers killed with SIGKILL halfway through (their locks go at the procdown event). */
  readonly crash?: number;
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
  /** Workers killed halfway (their records are lost with them). */
  readonly crashed: readonly string[];
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

interface Worker {
  readonly proc: ReturnType<typeof spawnWorker>;
  readonly observer: string;
  readonly socket: string;
}

function startWorkers(cluster: LocalCluster, from: number, count: number, late: boolean): Worker[] {
  const n = cluster.nodes.length;
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    // Its client socket in the cluster's dir: a worker killed with -9 cannot remove it itself.
    return { proc: spawnWorker(WORKER, { env: { ...process.env, XDG_RUNTIME_DIR: cluster.dir } }), observer: `n${(i % n) + 1}${late ? 'late' : 'w'}${Math.floor(i / n) + 1}`, socket: cluster.nodes[i % n].socket };
  });
}

async function openAll(ws: readonly Worker[], order: Order): Promise<void> {
  await Promise.all(ws.map((w) => ask(w.proc, { type: 'open', socket: w.socket, group: DRILL_GROUP, order, observer: w.observer, timeoutMs: OPEN_TIMEOUT_MS }, 'ready', OPEN_TIMEOUT_MS + 5000)));
}

function race(ws: readonly Worker[], o: DrillOptions, seconds: number, names: string[], salt: number) {
  return ws.map((w, i) => ask(w.proc, { type: 'run', names, seconds, seed: (o.seed + (salt + i) * 7919) >>> 0 }, 'done', seconds * 1000 + 60_000));
}

/** Halfway: kill some workers with -9, start the late ones and let them race the rest of the time. */
async function churn(cluster: LocalCluster, all: Worker[], o: DrillOptions, order: Order, names: string[]): Promise<{ late: Worker[]; done: Extract<DrillReply, { type: 'done' }>[] }> {
  const halfMs = (o.seconds * 1000) / 2;
  await new Promise((r) => setTimeout(r, halfMs));
  const crashed = all.slice(all.length - (o.crash ?? 0));
  for (const w of crashed) w.proc.kill('SIGKILL');
  const late = startWorkers(cluster, all.length, o.late ?? 0, true);
  await openAll(late, order);
  const done = await Promise.all(race(late, o, Math.max(1, Math.round(o.seconds / 2)), names, 1000));
  return { late, done };
}

/** N daemons on 127.0.0.1..N, ready once every node sees all N members (stopped again if they never do). */
async function startCluster(o: DrillOptions): Promise<LocalCluster> {
  exitOnSignals();
  const cluster = await LocalCluster.create({
    driver: o.driver, nodes: o.nodes, basePort: o.port, keep: o.keep, clusterName: 'drill', logLevel: 'warn', prefix: `afc-drill-${o.driver}-`,
  });
  try {
    await cluster.start();
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

export async function runDrill(o: DrillOptions): Promise<DrillOutcome> {
  const log = o.log ?? (() => undefined);
  const order = drillOrder(o.driver);
  log(`drill: driver ${o.driver} (order ${order}), ${o.nodes} nodes, ${o.workers} workers (+${o.late ?? 0} late, ${o.crash ?? 0} killed halfway), ${o.seconds} s, seed ${o.seed}`);
  const cluster = await startCluster(o);
  const workers = startWorkers(cluster, 0, o.workers, false);
  const everyone = [...workers];
  try {
    log(`drill: cluster up in ${cluster.dir}; starting workers`);
    await openAll(workers, order);
    await Promise.all(workers.map((w) => ask(w.proc, { type: 'waitMembers', count: o.workers, timeoutMs: OPEN_TIMEOUT_MS }, 'members', OPEN_TIMEOUT_MS + 5000)));
    log('drill: every worker holds the table; racing');
    const names = Array.from({ length: o.locks ?? 3 }, (_, i) => `drill-${i}`);
    const churning = (o.late ?? 0) + (o.crash ?? 0) > 0 ? churn(cluster, workers, o, order, names) : undefined;
    const crashedSoon = new Set(workers.slice(workers.length - (o.crash ?? 0)));
    const racing = race(workers, o, o.seconds, names, 0);
    racing.forEach((p, i) => { if (crashedSoon.has(workers[i])) p.catch(() => undefined); });
    const [done, ch] = await Promise.all([Promise.all(racing.filter((_, i) => !crashedSoon.has(workers[i]))), churning]);
    if (ch) everyone.push(...ch.late);
    const survivors = [...workers.filter((w) => !crashedSoon.has(w)), ...(ch?.late ?? [])];
    const results = [...done, ...(ch?.done ?? [])];
    const records = await Promise.all(survivors.map((w) => ask(w.proc, { type: 'record' }, 'record', 60_000)));
    const report = checkDrill(records.map((r) => r.record as ObserverRecord));
    const outcomes = records.map((r, i) => ({ observer: r.record.observer, nodeId: r.record.nodeId, result: results[i].result, error: results[i].error, truncated: r.truncated, table: r.table }));
    return { driver: o.driver, order, seed: o.seed, report, workers: outcomes, daemonFailures: cluster.failures(), crashed: [...crashedSoon].map((w) => w.observer) };
  } finally {
    await Promise.all(everyone.map((w) => stop(w.proc, 5000)));
    await cluster.stop();
  }
}
