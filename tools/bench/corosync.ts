// The bench's reference (`afcluster bench --reference corosync`): corosync as an N-node cluster,
// each node in its own network namespace with its own address on a bridge (tools/drills/netns.ts),
// knet transport, and one cpg-bench client per node (tools/bench/workers/cpg-bench.c, compiled here
// with cc and -lcpg) driven with the same requests as afcluster's bench clients. Each corosync
// also gets a private mount namespace with its own /run (corosync takes a fixed lock file,
// /run/corosync.pid); its client joins the daemon's namespaces (nsenter) to reach its IPC.
// Everything is undone by close(), and by the exit hooks on Ctrl-C or an error.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StatValue } from '../../core/af/codec.ts';
import { createTopology, destroyTopology, namespaceSupport, nodeAddress, type Topology } from '../drills/netns.ts';
import type { ClientRequest } from './client-protocol.ts';
import { AUTHKEY_BYTES, corosyncConf } from './corosync-conf.ts';
import type { BenchTarget } from './driver-bench.ts';
import { DAEMON_ENV } from '../local-cluster.ts';
import { LineClient } from './line-client.ts';
import { atExit, cpuSeconds, exitOnSignals, peakRssBytes, stop, track, waitExit, type WorkerReply } from './proc.ts';

const SOURCE = fileURLToPath(new URL('./workers/cpg-bench.c', import.meta.url));
const CPG_HEADER = '/usr/include/corosync/cpg.h';
const START_TIMEOUT_MS = 60_000;
const JOIN_RETRY_MS = 250;
const GROUP = 'bench';
const LOG_TAIL_LINES = 8;

export type ReferenceSupport =
  | { readonly ok: true; readonly version: string }
  | { readonly ok: false; readonly reason: string };

function run(file: string, args: readonly string[]): string {
  return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function why(e: unknown): string {
  const err = e as { stderr?: Buffer | string; message?: string };
  return (err.stderr ? String(err.stderr).trim() : '') || err.message || String(e);
}

/** The environment corosync and its clients run in: this process's, without what the afcluster
 *  bin sets for its daemons (DAEMON_ENV: its malloc arenas), so the reference runs with the C
 *  library's defaults, as its own service does (pure). */
export function referenceEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const k of Object.keys(DAEMON_ENV)) delete out[k];
  return out;
}

/** The version `corosync -v` prints, e.g. "3.1.7" (pure). */
export function parseCorosyncVersion(text: string): string | undefined {
  return /version '([^']+)'/.exec(text)?.[1];
}

/** Can the reference run here: root and namespaces, corosync, libcpg's header, cc, unshare and nsenter. */
export function corosyncSupport(): ReferenceSupport {
  let version: string | undefined;
  try {
    version = parseCorosyncVersion(run('corosync', ['-v']));
  } catch {
    return { ok: false, reason: 'corosync is not installed (Debian: apt install corosync libcpg-dev)' };
  }
  if (!existsSync(CPG_HEADER)) return { ok: false, reason: `libcpg's header ${CPG_HEADER} is missing (Debian: apt install libcpg-dev)` };
  for (const [tool, pkg] of [[process.env.CC || 'cc', 'a C compiler'], ['unshare', 'util-linux'], ['nsenter', 'util-linux']] as const) {
    try {
      run(tool, ['--version']);
    } catch {
      return { ok: false, reason: `${tool} is not installed (${pkg})` };
    }
  }
  const ns = namespaceSupport();
  if (!ns.ok) return { ok: false, reason: ns.reason };
  return { ok: true, version: version ?? '?' };
}

/** Compiles cpg-bench into dir; a failure says what the compiler said. */
function compileClient(dir: string): string {
  const out = join(dir, 'cpg-bench');
  try {
    run(process.env.CC || 'cc', ['-O2', '-o', out, SOURCE, '-lcpg']);
  } catch (e) {
    throw new Error(`cc could not build ${SOURCE} with -lcpg: ${why(e)}`, { cause: e });
  }
  return out;
}

export interface CorosyncSpec {
  readonly nodes: number;
  readonly crypto: boolean;
  /** The namespaces' link MTU: knet finds it (PMTUd) and fragments totem's 64 KiB frames to fit. */
  readonly linkMtu: number;
  /** Keep the configs and logs (their directory is printed). */
  readonly keep?: boolean;
}

export class CorosyncCluster implements BenchTarget {
  private readonly daemons: ChildProcess[] = [];
  private readonly clients: LineClient[] = [];
  private topology: Topology | undefined;
  private closed = false;
  private readonly forgetCleanup: () => void;

  private constructor(readonly spec: CorosyncSpec, readonly dir: string) {
    this.forgetCleanup = atExit(() => this.cleanupNow());
  }

  static async start(spec: CorosyncSpec): Promise<CorosyncCluster> {
    exitOnSignals();
    const c = new CorosyncCluster(spec, mkdtempSync(join(tmpdir(), 'afc-bench-corosync-')));
    try {
      const binary = compileClient(c.dir);
      c.topology = createTopology(spec.nodes, `cs${process.pid}`, spec.linkMtu);
      const keyfile = spec.crypto ? c.writeAuthkey() : undefined;
      for (let k = 1; k <= spec.nodes; k++) c.daemons.push(c.startDaemon(k, keyfile));
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (let k = 1; k <= spec.nodes; k++) c.clients.push(await c.startClient(k, binary, deadline));
      await Promise.all(c.clients.map((cl) => cl.expect({ type: 'waitMembers', members: spec.nodes, timeoutMs: START_TIMEOUT_MS }, START_TIMEOUT_MS + 5000)));
    } catch (e) {
      const tails = c.failures();
      await c.close();
      throw new Error(`${(e as Error).message}${tails.length ? `; ${tails.join('; ')}` : ''}`, { cause: e });
    }
    return c;
  }

  get size(): number {
    return this.spec.nodes;
  }

  private nodeDir(k: number): string {
    return join(this.dir, `node${k}`);
  }

  private writeAuthkey(): string {
    const path = join(this.dir, 'authkey');
    writeFileSync(path, randomBytes(AUTHKEY_BYTES), { mode: 0o400 });
    return path;
  }

  /** corosync -f in node k's network namespace, with a private /run (its lock file) from a fresh mount namespace. */
  private startDaemon(k: number, keyfile: string | undefined): ChildProcess {
    const dir = this.nodeDir(k);
    for (const d of ['run', 'state']) mkdirSync(join(dir, d), { recursive: true });
    const conf = join(dir, 'corosync.conf');
    const addresses = Array.from({ length: this.spec.nodes }, (_, i) => nodeAddress(i + 1));
    writeFileSync(conf, corosyncConf({ addresses, keyfile, nodeDir: dir }));
    const out = openSync(join(dir, 'stderr.log'), 'a');
    try {
      // ip netns exec, unshare and sh each exec the next: the child's pid is corosync's.
      const child = spawn('ip', ['netns', 'exec', this.topology!.names[k - 1], 'unshare', '--mount', '--propagation', 'private',
        'sh', '-c', 'mount --bind "$1" /run && exec corosync -f -c "$2"', 'sh', join(dir, 'run'), conf], { stdio: ['ignore', out, out], env: referenceEnv(process.env) });
      return track(child);
    } finally {
      closeSync(out);
    }
  }

  /** cpg-bench in node k's corosync's namespaces, joined to the group once corosync serves IPC. */
  private async startClient(k: number, binary: string, deadline: number): Promise<LineClient> {
    const daemon = this.daemons[k - 1];
    const err = openSync(join(this.nodeDir(k), 'cpg-bench.log'), 'a');
    let client: LineClient;
    try {
      // nsenter without --pid execs the program: the child's pid is cpg-bench's.
      const proc = spawn('nsenter', ['--target', String(daemon.pid), '--net', '--mount', binary], { stdio: ['pipe', 'pipe', err], env: referenceEnv(process.env) });
      client = new LineClient('cpg-bench', k, track(proc));
    } finally {
      closeSync(err);
    }
    for (;;) {
      if (daemon.exitCode !== null || daemon.signalCode !== null) throw new Error(`node ${k}'s corosync exited (${daemon.signalCode ?? daemon.exitCode})`);
      const r = await client.ask({ type: 'open', socket: '', group: GROUP }, 10_000);
      if (r.type === 'ready') return client;
      if (r.type !== 'error' || Date.now() > deadline) throw new Error(`node ${k}'s cpg-bench could not join: ${r.type === 'error' ? r.message : r.type}`);
      await new Promise((res) => setTimeout(res, JOIN_RETRY_MS));
    }
  }

  ask<R extends WorkerReply>(node: number, req: ClientRequest, timeoutMs: number): Promise<R> {
    return this.clients[node - 1].expect(req, timeoutMs) as unknown as Promise<R>;
  }

  /** corosync has no STATS of ours: a node without counters, so they print as '-'. */
  stats(): Promise<Record<string, StatValue>[]> {
    return Promise.resolve(Array.from({ length: this.size }, () => ({})));
  }

  cpu(): { daemons: number; clients: number } {
    const sum = (pids: (number | undefined)[]) => pids.reduce<number>((a, p) => a + (p ? cpuSeconds(p) ?? 0 : 0), 0);
    return { daemons: sum(this.daemons.map((d) => d.pid)), clients: sum(this.clients.map((c) => c.proc.pid)) };
  }

  /** Peak RSS (VmHWM) of each corosync so far, node 1 first (read as our daemons' is). */
  peakRss(): number[] {
    return this.daemons.map((d) => (d.pid ? peakRssBytes(d.pid) ?? 0 : 0));
  }

  /** corosync daemons that exited, with the tail of their logs. */
  failures(): string[] {
    return this.daemons.flatMap((d, i) => (d.exitCode === null && d.signalCode === null ? [] : [
      `node ${i + 1}'s corosync exited (${d.signalCode ?? d.exitCode}): ${logTail(join(this.nodeDir(i + 1), 'corosync.log')) || logTail(join(this.nodeDir(i + 1), 'stderr.log'))}`,
    ]));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.clients.map(async (c) => {
      try { await c.ask({ type: 'close' }, 2000); } catch { /* it may be gone */ }
      if (!(await waitExit(c.proc, 2000))) await stop(c.proc, 1000);
    }));
    // SIGTERM: corosync leaves the ring and removes its IPC files.
    await Promise.all(this.daemons.map((d) => stop(d, 5000)));
    this.cleanupNow();
    this.forgetCleanup();
  }

  /** Synchronous: also runs from the exit hook (Ctrl-C, an error), after the children are killed. */
  private cleanupNow(): void {
    if (this.topology) destroyTopology(this.topology);
    this.topology = undefined;
    try {
      removeShm(this.daemons.map((d) => d.pid).filter((p): p is number => p !== undefined));
    } finally {
      if (this.spec.keep) process.stderr.write(`corosync reference: configs and logs kept in ${this.dir}\n`);
      else rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** libqb's shared memory of these corosync processes (directories qb-PID-CLIENT-..., files qb-corosync-PID-blackbox-...), left in /dev/shm when one is killed. */
function removeShm(pids: readonly number[]): void {
  if (pids.length === 0 || !existsSync('/dev/shm')) return;
  const mine = new RegExp(`^qb-(corosync-)?(${pids.join('|')})-`);
  for (const f of readdirSync('/dev/shm')) {
    if (mine.test(f)) rmSync(join('/dev/shm', f), { recursive: true, force: true });
  }
}

function logTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-LOG_TAIL_LINES).join(' | ');
  } catch {
    return '';
  }
}
