// A local cluster for the bench: real daemons (`afcluster daemon`, one process per node on
// 127.0.0.N) and one bench client process per node connected over the bridge protocol.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeLocalCluster } from '../../core/config/index.ts';
import { ClusterSocket } from '../../sockapi/client.ts';
import type { StatValue } from '../../core/af/codec.ts';
import { atExit, cpuSeconds, peakRssBytes, request, spawnWorker, stop, track, waitExit } from './proc.ts';
import type { ClientRequest } from './client-protocol.ts';

const ENTRY = fileURLToPath(new URL('../afcluster.mjs', import.meta.url));
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
}

interface Daemon {
  readonly id: number;
  readonly child: ChildProcess;
  readonly socket: string;
  readonly log: string;
  exited?: string;
}

/** A UDP port free on 127.0.0.1..N (the daemons all listen on it, each on its own address). */
async function freePort(nodes: number): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    const socks = Array.from({ length: nodes }, () => createSocket('udp4'));
    const ok = await Promise.all(socks.map((s, i) => new Promise<boolean>((res) => {
      s.once('error', () => res(false));
      s.bind(port, `127.0.0.${i + 1}`, () => res(true));
    })));
    await Promise.all(socks.map((s) => new Promise<void>((res) => { try { s.close(() => res()); } catch { res(); } })));
    if (ok.every(Boolean)) return port;
  }
  throw new Error('no free UDP port found on the loopback addresses');
}

function tail(path: string, lines = 20): string {
  try { return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return '(no log)'; }
}

export class BenchCluster {
  private readonly clients: ChildProcess[] = [];
  private readonly statSocks: ClusterSocket[] = [];
  /** The largest message the daemons carry (from their hello). */
  messageSizeMax = Infinity;

  private readonly forgetDir: () => void;

  private constructor(readonly spec: ClusterSpec, readonly dir: string, private readonly daemons: Daemon[]) {
    this.forgetDir = spec.keep ? () => {} : atExit(() => rmSync(dir, { recursive: true, force: true }));
  }

  static async start(spec: ClusterSpec): Promise<BenchCluster> {
    const dir = mkdtempSync(join(tmpdir(), `afc-bench-${spec.driver}-`));
    const port = await freePort(spec.nodes);
    const { configs } = writeLocalCluster({
      dir, nodes: spec.nodes, driver: spec.driver, crypto: spec.crypto, basePort: port,
      clusterName: 'bench', driverSections: spec.driverSections,
    });
    const daemons = configs.map((config, i) => spawnDaemon(i + 1, config, dir, spec.profileDir));
    const c = new BenchCluster(spec, dir, daemons);
    try {
      await c.connect();
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  get daemonPids(): number[] {
    return this.daemons.map((d) => d.child.pid ?? 0);
  }

  /** Opens a stats socket on each daemon, then starts one client per node and binds the group. */
  private async connect(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (const d of this.daemons) this.statSocks.push(await waitReady(d, deadline));
    for (let i = 0; i < this.daemons.length; i++) {
      const dir = this.spec.profileDir ? join(this.spec.profileDir, `client${i + 1}`) : undefined;
      this.clients.push(spawnWorker(CLIENT, { nodeFlags: dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [] }));
    }
    const ready = await Promise.all(this.clients.map((c, i) => request<{ type: 'ready'; messageSizeMax: number }>(c, { type: 'open', socket: this.daemons[i].socket, group: BENCH_GROUP } satisfies ClientRequest, START_TIMEOUT_MS)));
    this.messageSizeMax = Math.min(...ready.map((r) => r.messageSizeMax));
    await Promise.all(this.clients.map((c) => request(c, { type: 'waitMembers', members: this.daemons.length, timeoutMs: START_TIMEOUT_MS } satisfies ClientRequest, START_TIMEOUT_MS + 5000)));
  }

  /** The client process of node i (1-based). */
  client(i: number): ChildProcess {
    return this.clients[i - 1];
  }

  get size(): number {
    return this.daemons.length;
  }

  /** Every daemon's STATS reply, node 1 first. */
  async stats(): Promise<Record<string, StatValue>[]> {
    return Promise.all(this.statSocks.map((s) => s.stats({ signal: AbortSignal.timeout(10_000) })));
  }

  /** CPU seconds used so far by the daemons and by the clients (summed over each kind). */
  cpu(): { daemons: number; clients: number } {
    const sum = (pids: (number | undefined)[]) => pids.reduce<number>((a, p) => a + (p ? cpuSeconds(p) ?? 0 : 0), 0);
    return { daemons: sum(this.daemons.map((d) => d.child.pid)), clients: sum(this.clients.map((c) => c.pid)) };
  }

  /** Peak RSS (VmHWM) of each daemon so far. */
  peakRss(): number[] {
    return this.daemons.map((d) => (d.child.pid ? peakRssBytes(d.child.pid) ?? 0 : 0));
  }

  /** Daemons that exited, with their log tails (a crash under load is a finding to report). */
  failures(): string[] {
    return this.daemons.filter((d) => d.exited).map((d) => `node ${d.id}'s daemon exited (${d.exited}); ${d.log}:\n${tail(d.log)}`);
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
    await Promise.all(this.daemons.map((d) => stop(d.child, 10_000)));
    this.forgetDir();
    if (!this.spec.keep) rmSync(this.dir, { recursive: true, force: true });
  }
}

function spawnDaemon(id: number, config: string, dir: string, profileDir: string | undefined): Daemon {
  const log = join(dir, `node${id}.log`);
  const fd = openSync(log, 'a');
  // One directory per node: node writes a profile per thread (main, and tsx's loader worker).
  const prof = profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(profileDir, `node${id}`)] : [];
  const child = spawn(process.execPath, [...prof, ENTRY, 'daemon', '--config', config, '--log-level', 'warn'], {
    stdio: ['ignore', fd, fd], env: process.env,
  });
  track(child);
  const d: Daemon = { id, child, socket: join(dir, `node${id}.sock`), log };
  child.once('exit', (code, sig) => { d.exited = sig ?? `exit ${code}`; });
  return d;
}

async function waitReady(d: Daemon, deadline: number): Promise<ClusterSocket> {
  for (;;) {
    if (d.exited) throw new Error(`node ${d.id}'s daemon exited (${d.exited}); its log ${d.log}:\n${tail(d.log)}`);
    if (existsSync(d.socket)) {
      try {
        return await ClusterSocket.open({ path: d.socket, timeoutMs: 2000 });
      } catch { /* not answering yet */ }
    }
    if (Date.now() > deadline) throw new Error(`node ${d.id}'s daemon did not open ${d.socket} in ${START_TIMEOUT_MS} ms; its log ${d.log}:\n${tail(d.log)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
