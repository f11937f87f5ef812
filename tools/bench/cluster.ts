// A local cluster for the bench: real daemons (`afcluster daemon`, one process per node on
// 127.0.0.N) and one bench client process per node connected over the bridge protocol.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterSocket } from '../../sockapi/client.ts';
import type { StatValue } from '../../core/af/codec.ts';
import { LocalCluster } from '../local-cluster.ts';
import { cpuSeconds, exitOnSignals, peakRssBytes, request, spawnWorker, stop, waitExit, type WorkerReply } from './proc.ts';
import type { ClientRequest } from './client-protocol.ts';
import type { BenchTarget } from './driver-bench.ts';

const CLIENT = fileURLToPath(new URL('./client-worker.ts', import.meta.url));
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
}

export class BenchCluster implements BenchTarget {
  private readonly clients: ChildProcess[] = [];
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
    for (let i = 0; i < this.size; i++) {
      const dir = this.spec.profileDir ? join(this.spec.profileDir, `client${i + 1}`) : undefined;
      this.clients.push(spawnWorker(CLIENT, { nodeFlags: dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [] }));
    }
    const ready = await Promise.all(this.clients.map((c, i) => request<{ type: 'ready'; messageSizeMax: number }>(c, { type: 'open', socket: this.local.nodes[i].socket, group: BENCH_GROUP } satisfies ClientRequest, START_TIMEOUT_MS)));
    this.messageSizeMax = Math.min(...ready.map((r) => r.messageSizeMax));
    await Promise.all(this.clients.map((c) => request(c, { type: 'waitMembers', members: this.size, timeoutMs: START_TIMEOUT_MS } satisfies ClientRequest, START_TIMEOUT_MS + 5000)));
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
    return request<R>(this.client(node), req, timeoutMs);
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
    const sum = (pids: (number | undefined)[]) => pids.reduce<number>((a, p) => a + (p ? cpuSeconds(p) ?? 0 : 0), 0);
    return { daemons: sum(this.daemonPids), clients: sum(this.clients.map((c) => c.pid)) };
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
    await Promise.all(this.clients.map(async (c) => {
      try { await request(c, { type: 'close' } satisfies ClientRequest, 3000); } catch { /* it may be gone */ }
      // It exits by itself after 'closed' (writing its --cpu-prof file on the way); a signal would cut that short.
      await waitExit(c, 5000);
      await stop(c, 1000);
    }));
    await Promise.all(this.statSocks.map((s) => s.close()));
    // SIGTERM: the daemon leaves the ring and exits, which also writes its --cpu-prof file.
    await this.local.stop(10_000);
  }
}
