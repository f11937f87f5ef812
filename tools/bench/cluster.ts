// A local cluster for the bench: real daemons (`afcluster daemon`, one process per node on
// 127.0.0.N) and one bench client process per node connected over the bridge protocol: the
// TypeScript library's (client-worker.ts, over IPC), or with `client: 'c'` the C library's
// (workers/afc-bench-worker.c, compiled here against clients/c/build/libafcluster.a, over the
// line protocol cpg-bench speaks for corosync).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterSocket } from '../../sockapi/client.ts';
import type { StatValue } from '../../core/af/codec.ts';
import type { Order } from '../../core/api/types.ts';
import { LocalCluster } from '../local-cluster.ts';
import { cpuSeconds, exitOnSignals, peakRssBytes, request, spawnWorker, stop, track, waitExit, type WorkerReply } from './proc.ts';
import type { ClientRequest } from './client-protocol.ts';
import type { ClientKind } from './cluster-clients.ts';
import type { BenchTarget } from './driver-bench.ts';
import { LineClient } from './line-client.ts';

const CLIENT = fileURLToPath(new URL('./client-worker.ts', import.meta.url));
const C_WORKER_SOURCE = fileURLToPath(new URL('./workers/afc-bench-worker.c', import.meta.url));
const C_LIBRARY_DIR = fileURLToPath(new URL('../../clients/c', import.meta.url));

/** Compiles afc-bench-worker into dir against the C library `npm install` built; a failure says why. */
function compileCWorker(dir: string): string {
  if (!existsSync(C_WORKER_SOURCE)) throw new Error(`--client c needs a source checkout of afcluster: ${C_WORKER_SOURCE} is not in this install`);
  const lib = join(C_LIBRARY_DIR, 'build', 'libafcluster.a');
  if (!existsSync(lib)) throw new Error(`the C client library is not built (${lib} is missing): run npm run build:c`);
  const out = join(dir, 'afc-bench-worker');
  try {
    execFileSync(process.env.CC || 'cc', ['-O2', '-I', C_LIBRARY_DIR, '-o', out, C_WORKER_SOURCE, lib], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`cc could not build ${C_WORKER_SOURCE}: ${err || (e as Error).message}`, { cause: e });
  }
  return out;
}
const START_TIMEOUT_MS = 60_000;
export const BENCH_GROUP = 'bench';

export interface ClusterSpec {
  readonly driver: string;
  readonly nodes: number;
  readonly crypto: boolean;
  readonly driverSections?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Write each daemon's .cpuprofile here (node --cpu-prof; written when the daemon stops). */
  readonly profileDir?: string;
  readonly keep?: boolean;
  /** cluster.mtu of every daemon (default: the schema's). */
  readonly mtu?: number;
  /** More Node/V8 flags for every daemon (a probe: --trace-gc, another semi-space). */
  readonly daemonFlags?: readonly string[];
  /** The clients' library (default 'ts'). */
  readonly client?: ClientKind;
  /** The order the C clients send in (they take it at start; default agreed). */
  readonly order?: Order;
}

export class BenchCluster implements BenchTarget {
  private readonly clients: ChildProcess[] = [];
  /** With the C client: each node's, over the line protocol. */
  private readonly lineClients: LineClient[] = [];
  private readonly statSocks: ClusterSocket[] = [];
  /** The largest message the daemons carry (from their hello). */
  messageSizeMax = Infinity;

  private constructor(readonly spec: ClusterSpec, private readonly local: LocalCluster) {}

  get dir(): string {
    return this.local.dir;
  }

  /** The UDP port every daemon listens on (each at its own 127.0.0.N). */
  get port(): number {
    return this.local.opts.basePort;
  }

  static async start(spec: ClusterSpec): Promise<BenchCluster> {
    exitOnSignals();
    const local = await LocalCluster.create({
      nodes: spec.nodes, driver: spec.driver, crypto: spec.crypto, clusterName: 'bench', driverSections: spec.driverSections, mtu: spec.mtu,
      keep: spec.keep, logLevel: 'warn', prefix: `afc-bench-${spec.driver}-`,
      // One directory per node: node writes a profile per thread (main, and tsx's loader worker).
      nodeFlags: (id) => [...(spec.profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(spec.profileDir, `node${id}`)] : []), ...spec.daemonFlags ?? []],
    });
    local.startAll();
    const c = new BenchCluster(spec, local);
    try {
      await c.connect();
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  get daemonPids(): number[] {
    return this.local.nodes.map((n) => n.proc?.pid ?? 0);
  }

  /** Opens a stats socket on each daemon, then starts one client per node and binds the group. */
  private async connect(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (const n of this.local.nodes) this.statSocks.push(await this.local.waitAnswering(n.id, deadline));
    if (this.spec.client === 'c') return this.connectC();
    for (let i = 0; i < this.size; i++) {
      const dir = this.spec.profileDir ? join(this.spec.profileDir, `client${i + 1}`) : undefined;
      this.clients.push(spawnWorker(CLIENT, { nodeFlags: dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [] }));
    }
    const ready = await Promise.all(this.clients.map((c, i) => request<{ type: 'ready'; messageSizeMax: number }>(c, { type: 'open', socket: this.local.nodes[i].socket, group: BENCH_GROUP } satisfies ClientRequest, START_TIMEOUT_MS)));
    this.messageSizeMax = Math.min(...ready.map((r) => r.messageSizeMax));
    await this.waitAllMembers();
  }

  /** afc-bench-worker on every node: the daemons' message size from their HELLO (the stats sockets'). */
  private async connectC(): Promise<void> {
    const binary = compileCWorker(this.local.dir);
    for (let i = 0; i < this.size; i++) {
      const proc = track(spawn(binary, ['--socket', this.local.nodes[i].socket, '--order', this.spec.order ?? 'agreed'], { stdio: ['pipe', 'pipe', 'inherit'] }));
      this.clients.push(proc);
      this.lineClients.push(new LineClient('afc-bench-worker', i + 1, proc));
    }
    await Promise.all(this.lineClients.map((_, i) => this.ask(i + 1, { type: 'open', socket: this.local.nodes[i].socket, group: BENCH_GROUP }, START_TIMEOUT_MS)));
    this.messageSizeMax = Math.min(...this.statSocks.map((s) => s.daemon.messageSizeMax));
    await this.waitAllMembers();
  }

  private async waitAllMembers(): Promise<void> {
    await Promise.all(this.clients.map((_, i) => this.ask(i + 1, { type: 'waitMembers', members: this.size, timeoutMs: START_TIMEOUT_MS }, START_TIMEOUT_MS + 5000)));
  }

  /** The daemon socket of node i (1-based), for clients of other languages. */
  socket(i: number): string {
    return this.local.nodes[i - 1].socket;
  }

  /** The client process of node i (1-based). */
  client(i: number): ChildProcess {
    return this.clients[i - 1];
  }

  ask<R extends WorkerReply>(node: number, req: ClientRequest, timeoutMs: number): Promise<R> {
    const line = this.lineClients[node - 1];
    if (!line) return request<R>(this.client(node), req, timeoutMs);
    const order = this.spec.order ?? 'agreed';
    if ((req.type === 'throughput' || req.type === 'latency') && req.order !== order) {
      return Promise.reject(new Error(`node ${node}'s afc-bench-worker sends in ${order} order (given at its start), not ${req.order}`));
    }
    return line.expect(req, timeoutMs) as unknown as Promise<R>;
  }

  get size(): number {
    return this.local.nodes.length;
  }

  /** Every daemon's STATS reply, node 1 first. */
  async stats(): Promise<Record<string, StatValue>[]> {
    return Promise.all(this.statSocks.map((s) => s.stats({ signal: AbortSignal.timeout(10_000) })));
  }

  /** CPU seconds used so far by the daemons and by the clients (summed over each kind). */
  cpu(): { daemons: number; clients: number } {
    const each = this.cpuEach(), d = this.daemonPids.length;
    const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
    return { daemons: sum(each.slice(0, d)), clients: sum(each.slice(d)) };
  }

  /** CPU seconds used so far by each daemon (node 1 first), then each client. */
  cpuEach(): number[] {
    return [...this.daemonPids, ...this.clients.map((c) => c.pid)].map((p) => (p ? cpuSeconds(p) ?? 0 : 0));
  }

  /** Peak RSS (VmHWM) of each daemon so far. */
  peakRss(): number[] {
    return this.daemonPids.map((pid) => (pid ? peakRssBytes(pid) ?? 0 : 0));
  }

  /** Daemons that exited, with their log tails (a crash under load is a finding to report). */
  failures(): string[] {
    return this.local.failures();
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map(async (c, i) => {
      try { await this.ask(i + 1, { type: 'close' }, 3000); } catch { /* it may be gone */ }
      // It exits by itself after 'closed' (writing its --cpu-prof file on the way); a signal would cut that short.
      await waitExit(c, 5000);
      await stop(c, 1000);
    }));
    await Promise.all(this.statSocks.map((s) => s.close()));
    // SIGTERM: the daemon leaves the ring and exits, which also writes its --cpu-prof file.
    await this.local.stop(10_000);
  }
}
