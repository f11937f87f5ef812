// A local cluster of real daemons (`afcluster daemon`, one process per node on 127.0.0.1..N over
// loopback UDP) from writeLocalCluster: the one way `afcluster up`, the bench, the drills and the
// integration tests start, wait on, signal, restart and stop daemons. Every child it starts is
// killed, and every temporary directory removed, when this process exits, however it exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeLocalCluster } from '../core/config/index.ts';
import { ClusterError } from '../core/api/errors.ts';
import type { StatValue } from '../core/af/codec.ts';
import { ClusterSocket } from '../sockapi/client.ts';

export const DAEMON_ENTRY = fileURLToPath(new URL('./afcluster.mjs', import.meta.url));
/** The V8 flags of the bin's #! line (tools/afcluster.mjs says why), which node ignores when it
 *  runs the file directly: small young-generation steps, no full collections while the old
 *  generation is under 64 MiB, and object shapes kept for 16 full collections. */
export const DAEMON_V8_FLAGS = ['--max-semi-space-size=2', '--initial-old-space-size=64', '--retain-maps-for-n-gc=16'] as const;
/** The environment the bin's #! line sets before node starts (tools/afcluster.mjs says why): two
 *  glibc malloc arenas, the main thread's and one its helper threads share. */
export const DAEMON_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
const STOP_GRACE_MS = 10_000;

const children = new Set<ChildProcess>();
const cleanups = new Set<() => void>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  // Our own children only, by pid: a crashed or interrupted run leaves nothing running.
  process.on('exit', () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const fn of cleanups) {
      try { fn(); } catch { /* best effort at exit */ }
    }
    cleanups.clear();
  });
}

/** Kills `child` (SIGKILL) if this process exits while it still runs. */
export function track(child: ChildProcess): ChildProcess {
  hookExit();
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Runs fn if this process exits before its owner removes it (the returned function). */
export function atExit(fn: () => void): () => void {
  hookExit();
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** Kills every child tracked here now (SIGKILL): for a second Ctrl-C or a fatal error. */
export function killAllNow(): void {
  for (const c of children) c.kill('SIGKILL');
}

const running = (p: ChildProcess | undefined): p is ChildProcess => p !== undefined && p.exitCode === null && p.signalCode === null;

/** Sends `signal` and resolves once the child has exited (at once if it is not running). */
export function signalAndWait(p: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!running(p)) return Promise.resolve();
  return new Promise((res) => { p.once('exit', () => res()); p.kill(signal); });
}

/** SIGTERM, then SIGKILL after graceMs; resolves once the child has exited. */
export async function stopChild(p: ChildProcess | undefined, graceMs = STOP_GRACE_MS): Promise<void> {
  const t = setTimeout(() => p?.kill('SIGKILL'), graceMs);
  await signalAndWait(p, 'SIGTERM');
  clearTimeout(t);
}

/** A UDP port free on 127.0.0.1..N right now (the daemons all listen on it, each on its own address). */
export async function freePort(nodes: number): Promise<number> {
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
  throw new ClusterError('EADDRINUSE', 'no free UDP port on the loopback addresses after 20 tries; give --port');
}

/** The first of 127.0.0.1..N on which UDP `port` is taken now, or undefined when it is free on all. */
export async function portTaken(port: number, nodes: number): Promise<string | undefined> {
  const socks = Array.from({ length: nodes }, () => createSocket('udp4'));
  const ok = await Promise.all(socks.map((s, i) => new Promise<boolean>((res) => {
    s.once('error', () => res(false));
    s.bind(port, `127.0.0.${i + 1}`, () => res(true));
  })));
  await Promise.all(socks.map((s) => new Promise<void>((res) => { try { s.close(() => res()); } catch { res(); } })));
  const i = ok.indexOf(false);
  return i < 0 ? undefined : `127.0.0.${i + 1}`;
}

/** The last `lines` lines of a log file, or '(no log)'. */
export function logTail(path: string, lines = 20): string {
  try { return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return '(no log)'; }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ClusterOptions {
  readonly nodes: number;
  readonly driver: string;
  /** UDP port of every node; LocalCluster.create picks a free one when absent. */
  readonly basePort: number;
  /** Default true. */
  readonly crypto?: boolean;
  readonly clusterName?: string;
  readonly limits?: Readonly<Record<string, number>>;
  /** [quorum] keys for every node. */
  readonly quorum?: Readonly<Record<string, unknown>>;
  readonly driverSections?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** cluster.mtu of every node (default: the schema's). */
  readonly mtu?: number;
  /** Write configs, key, sockets and logs here (kept afterwards); default a new temp dir. */
  readonly dir?: string;
  /** Prefix of the temp dir's name (default 'afc-'). */
  readonly prefix?: string;
  /** Keep the temp dir after stop. */
  readonly keep?: boolean;
  /** The daemons' --log-level (default info). */
  readonly logLevel?: string;
  /** Extra node flags for node `id`'s daemon (e.g. --cpu-prof). */
  readonly nodeFlags?: (id: number) => readonly string[];
}

export interface LocalNode {
  readonly id: number;
  readonly config: string;
  readonly socket: string;
  readonly log: string;
  /** The current daemon process (replaced by startNode). */
  proc?: ChildProcess;
  /** How the current daemon ended: 'signal SIGKILL', 'exit 1'. */
  exited?: string;
}

export class LocalCluster {
  readonly nodes: LocalNode[];
  readonly dir: string;
  readonly keepDir: boolean;
  private readonly forgetDir: () => void;

  constructor(readonly opts: ClusterOptions) {
    this.dir = resolve(opts.dir ?? mkdtempSync(join(tmpdir(), opts.prefix ?? 'afc-')));
    this.keepDir = opts.keep === true || opts.dir !== undefined;
    this.forgetDir = this.keepDir ? () => false : atExit(() => rmSync(this.dir, { recursive: true, force: true }));
    const { configs } = writeLocalCluster({
      dir: this.dir, nodes: opts.nodes, driver: opts.driver, crypto: opts.crypto ?? true, basePort: opts.basePort,
      clusterName: opts.clusterName, limits: opts.limits, quorum: opts.quorum, driverSections: opts.driverSections, mtu: opts.mtu,
    });
    this.nodes = configs.map((config, i) => ({
      id: i + 1, config, socket: join(this.dir, `node${i + 1}.sock`), log: join(this.dir, `node${i + 1}.log`),
    }));
  }

  /** A cluster on `basePort`, or on a free port when it is undefined. */
  static async create(opts: Omit<ClusterOptions, 'basePort'> & { readonly basePort?: number }): Promise<LocalCluster> {
    return new LocalCluster({ ...opts, basePort: opts.basePort ?? await freePort(opts.nodes) });
  }

  node(id: number): LocalNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new ClusterError('EINVAL', `no node ${id} in this ${this.nodes.length}-node cluster`);
    return n;
  }

  /** The command that runs node `n`'s daemon (a subclass may wrap it, e.g. in `ip netns exec`). */
  protected daemonCommand(n: LocalNode): { readonly file: string; readonly args: string[] } {
    const flags = this.opts.nodeFlags?.(n.id) ?? [];
    return { file: process.execPath, args: [...DAEMON_V8_FLAGS, ...flags, DAEMON_ENTRY, 'daemon', '--config', n.config, '--log-level', this.opts.logLevel ?? 'info'] };
  }

  /** Starts (or restarts, after it exited) node `id`'s daemon, appending to its log. */
  startNode(id: number): void {
    const n = this.node(id);
    const fd = openSync(n.log, 'a');
    const { file, args } = this.daemonCommand(n);
    const proc = track(spawn(file, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...DAEMON_ENV } }));
    n.proc = proc;
    n.exited = undefined;
    proc.once('exit', (code, sig) => { if (n.proc === proc) n.exited = sig ? `signal ${sig}` : `exit ${code}`; });
  }

  startAll(): void {
    for (const n of this.nodes) this.startNode(n.id);
  }

  /** Starts every node and waits until each sees all nodes as members. */
  async start(ms = 60_000): Promise<void> {
    this.startAll();
    await this.waitRing(this.nodes.map((n) => n.id), ms);
  }

  private exitedError(n: LocalNode): ClusterError {
    return new ClusterError('ECONNREFUSED', `node ${n.id}'s daemon exited (${n.exited}); its log ${n.log}:\n${logTail(n.log)}`);
  }

  /** Waits until node `id`'s daemon answers on its socket, and returns that open socket (the caller closes it). */
  async waitAnswering(id: number, deadline: number): Promise<ClusterSocket> {
    const n = this.node(id);
    for (;;) {
      if (n.exited) throw this.exitedError(n);
      if (existsSync(n.socket)) {
        try {
          return await ClusterSocket.open({ path: n.socket, timeoutMs: 2000 });
        } catch { /* not answering yet */ }
      }
      if (Date.now() > deadline) throw new ClusterError('ETIMEDOUT', `node ${n.id}'s daemon did not open ${n.socket} in time; its log ${n.log}:\n${logTail(n.log)}`);
      await sleep(100);
    }
  }

  /** Waits until every node in `ids` answers, its configuration is exactly `ids`, and no group state exchange is under way. */
  async waitRing(ids: readonly number[], ms = 60_000): Promise<void> {
    const want = [...ids].sort((a, b) => a - b).join(',');
    const deadline = Date.now() + ms;
    for (;;) {
      const down = ids.map((id) => this.node(id)).find((n) => n.exited);
      if (down) throw this.exitedError(down);
      const ready = await Promise.all(ids.map((id) => this.stats(id).then(
        (st) => st['node.members'] === want && (st['groups.exchanging'] ?? 0) === 0, () => false)));
      if (ready.every(Boolean)) return;
      if (Date.now() > deadline) throw new ClusterError('ETIMEDOUT', `nodes ${want} did not all see members ${want} within ${ms} ms; logs in ${this.dir}`);
      await sleep(50);
    }
  }

  /** Node `id`'s STATS reply, over a connection of its own. */
  async stats(id: number): Promise<Record<string, StatValue>> {
    const s = await ClusterSocket.open({ path: this.node(id).socket, timeoutMs: 2000 });
    try { return await s.stats({ signal: AbortSignal.timeout(10_000) }); } finally { await s.close(); }
  }

  /** Sends `signal` to node `id`'s daemon and resolves once it has exited (at once if it is not running). */
  kill(id: number, signal: NodeJS.Signals): Promise<void> {
    return signalAndWait(this.node(id).proc, signal);
  }

  /** Daemons that exited, with their log tails. */
  failures(): string[] {
    return this.nodes.filter((n) => n.exited).map((n) => `node ${n.id}'s daemon exited (${n.exited}); ${n.log}:\n${logTail(n.log)}`);
  }

  logTail(id: number, lines = 20): string {
    return logTail(this.node(id).log, lines);
  }

  /** SIGTERM to every daemon (each leaves the ring), SIGKILL after graceMs; then removes the temp dir unless kept. */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    await Promise.all(this.nodes.map((n) => stopChild(n.proc, graceMs)));
    this.forgetDir();
    if (!this.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
