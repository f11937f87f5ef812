// The lock service's partition drill: real daemons, one per network namespace, and real
// `afcluster lock` processes. Each episode: a command holds a lock on a node of what will be the
// minority; the cluster is split (the minority's bridge ports moved to a bridge of their own);
// a node of the majority asks for the same lock; the split heals. Every command writes its own
// start and stop times (nanoseconds, one clock: one machine), so two holders at once are judged
// from what the commands themselves did, not from what the lock service believed.
// With quorum on the minority's holder must have stopped before the majority's command starts;
// with quorum off (`[quorum] enabled = false`) the same drill shows them overlap.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DAEMON_ENTRY, track } from '../local-cluster.ts';
import { NetnsCluster } from '../drills/netns-cluster.ts';
import { createTopology, destroyTopology, namespaceSupport, setPartition, type Topology } from '../drills/netns.ts';
import { driverSections } from '../drills/profiles.ts';
import { Rng } from '../../sim/rng.ts';
import { fenceDelayMs } from '../../services/lock/lock.ts';
import { totemDriver } from '../../drivers/totem/index.ts';

export interface PartitionDrillOptions {
  /** 3 to 9 nodes. */
  readonly nodes: number;
  readonly episodes: number;
  /** false: `[quorum] enabled = false` (the drill must then find the overlap). */
  readonly quorum: boolean;
  readonly seed: number;
  readonly port: number;
  /** Keeps concurrent runs' namespace names apart. */
  readonly tag: string;
  readonly log?: (line: string) => void;
}

/** One command's own record: when it started and stopped (ns); stop undefined if it never wrote it. */
interface Run { readonly startNs?: bigint; readonly stopNs?: bigint }

export interface Episode {
  readonly index: number;
  /** The cut-off side, the holder's node (in it) and the asking node (outside it). */
  readonly cut: readonly number[];
  readonly holderNode: number;
  readonly askerNode: number;
  /** Exit statuses of the two `afcluster lock` processes. */
  readonly holderExit: number | null;
  readonly askerExit: number | null;
  /** ms from the split until the asker's command started (null: it never ran). */
  readonly grantedAfterMs: number | null;
  /** ms the two commands ran at the same time (0: they did not). */
  readonly overlapMs: number;
}

export interface PartitionReport {
  readonly nodes: number;
  readonly quorum: boolean;
  readonly seed: number;
  readonly episodes: Episode[];
  /** Episodes in which the two commands ran at the same time. */
  readonly doubleHolders: number;
  /** The bound the asker's grant must come within, and the slowest grant seen. */
  readonly grantBoundMs: number;
  readonly slowestGrantMs: number;
}

/** totem's failure detection with the drill profile (token 500 ms + consensus 600 ms), computed
 *  as the daemons compute it for their lock service's fencing delay. */
const PROFILE = driverSections('totem');
const DETECT_MS = totemDriver.failureDetectionMs!(totemDriver.optionsSchema.parse(PROFILE.totem));

/** The holder's command: record the start, run until stopped, record the stop on SIGTERM. */
function holderScript(file: string): string {
  return `trap 'echo stop $(date +%s%N) >> ${file}; kill $! 2>/dev/null; exit 0' TERM INT; echo start $(date +%s%N) >> ${file}; sleep 600 & wait $!`;
}

/** The asker's command: record start and stop around a short stay. */
function askerScript(file: string): string {
  return `echo start $(date +%s%N) >> ${file}; sleep 0.3; echo stop $(date +%s%N) >> ${file}`;
}

function readRun(file: string): Run {
  if (!existsSync(file)) return {};
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const at = (what: string): bigint | undefined => {
    const l = lines.find((x) => x.startsWith(`${what} `));
    return l ? BigInt(l.slice(what.length + 1)) : undefined;
  };
  return { startNs: at('start'), stopNs: at('stop') };
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** A shape for episode `k`: a minority of 1..(n-1)/2 nodes, with node 1 in it every other time. */
export function shapeOf(n: number, k: number, rng: Rng): { cut: number[]; holder: number; asker: number } {
  const all = Array.from({ length: n }, (_, i) => i + 1);
  const size = rng.int(1, Math.floor((n - 1) / 2));
  const others = rng.shuffle(all.slice(1));
  const cut = (k % 2 === 0 ? [1, ...others.slice(0, size - 1)] : others.slice(0, size)).sort((a, b) => a - b);
  const rest = all.filter((x) => !cut.includes(x));
  return { cut, holder: rng.pick(cut), asker: rng.pick(rest) };
}

class LockProc {
  readonly proc: ChildProcess;
  exit: Promise<number | null>;
  exitedAtNs?: bigint;
  constructor(socket: string, name: string, script: string) {
    this.proc = track(spawn(process.execPath, [DAEMON_ENTRY, 'lock', name, '--socket', socket, '--', 'sh', '-c', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }));
    this.proc.stderr!.resume();
    this.exit = new Promise((resolve) => this.proc.once('exit', (code) => { this.exitedAtNs = nowNs(); resolve(code); }));
  }
  running(): boolean { return this.proc.exitCode === null && this.proc.signalCode === null; }
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`partition drill: ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** With a timeout: the process's exit status, or undefined if it still runs. */
async function exitWithin(p: LockProc, ms: number): Promise<number | null | undefined> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((r) => { t = setTimeout(() => r(undefined), ms); });
  try { return await Promise.race([p.exit, timeout]); } finally { clearTimeout(t); }
}

async function episode(c: NetnsCluster, t: Topology, k: number, rng: Rng, o: PartitionDrillOptions, boundMs: number): Promise<Episode> {
  const { cut, holder: h, asker: a } = shapeOf(o.nodes, k, rng);
  const name = `partition-${k}`;
  const hf = join(c.dir, `${name}-holder.log`), af = join(c.dir, `${name}-asker.log`);
  o.log?.(`[${k}] ${name} held on node ${h}; cutting off ${cut.join(',')} from the rest; node ${a} asks`);
  const holder = new LockProc(c.node(h).socket, name, holderScript(hf));
  await until(`the holder on node ${h} runs`, () => readRun(hf).startNs !== undefined, 30_000);
  setPartition(t, cut);
  const cutAt = nowNs();
  const asker = new LockProc(c.node(a).socket, name, askerScript(af));
  const askerExit = await exitWithin(asker, boundMs + 20_000);
  // With quorum the holder has stopped by itself; without, it holds on: stop it now.
  if (holder.running() && !o.quorum) holder.proc.kill('SIGTERM');
  const holderExit = await exitWithin(holder, 20_000);
  if (asker.running()) asker.proc.kill('SIGKILL');
  if (holder.running()) holder.proc.kill('SIGKILL');
  setPartition(t, []);
  await c.waitRing(c.nodes.map((n) => n.id), 60_000);
  const hr = readRun(hf), ar = readRun(af);
  const holderStop = hr.stopNs ?? holder.exitedAtNs ?? nowNs(); // no record: it ran until its process went
  const overlapNs = ar.startNs === undefined ? 0n : (ar.stopNs ?? nowNs()) < holderStop ? (ar.stopNs ?? nowNs()) - ar.startNs : holderStop - ar.startNs;
  const e: Episode = {
    index: k, cut, holderNode: h, askerNode: a, holderExit: holderExit ?? null, askerExit: askerExit ?? null,
    grantedAfterMs: ar.startNs === undefined ? null : Number(ar.startNs - cutAt) / 1e6,
    overlapMs: overlapNs > 0n ? Number(overlapNs) / 1e6 : 0,
  };
  o.log?.(`[${k}] holder exit ${e.holderExit}, asker exit ${e.askerExit}, granted ${e.grantedAfterMs?.toFixed(0) ?? 'never'} ms after the split, overlap ${e.overlapMs.toFixed(0)} ms`);
  return e;
}

export async function runPartitionDrill(o: PartitionDrillOptions): Promise<PartitionReport> {
  const support = namespaceSupport();
  if (!support.ok) throw new Error(`the partition drill needs network namespaces: ${support.reason}`);
  const t = createTopology(o.nodes, o.tag);
  const c = new NetnsCluster({
    nodes: o.nodes, driver: 'totem', basePort: o.port, crypto: true, driverSections: PROFILE,
    quorum: o.quorum ? {} : { enabled: false },
  }, t);
  const rng = new Rng(o.seed);
  // The asker's grant: failure detection on its side, then the fencing delay, then a ring or two.
  const boundMs = DETECT_MS + fenceDelayMs(DETECT_MS) + 2000;
  const episodes: Episode[] = [];
  try {
    o.log?.(`starting ${o.nodes} totem daemons in namespaces (quorum ${o.quorum ? 'on' : 'OFF'}), seed ${o.seed}`);
    await c.start();
    for (let k = 1; k <= o.episodes; k++) episodes.push(await episode(c, t, k, rng, o, boundMs));
  } catch (e) {
    for (const n of c.nodes) o.log?.(`node ${n.id} log:\n${c.logTail(n.id)}`);
    throw e;
  } finally {
    await c.stop();
    destroyTopology(t);
  }
  return {
    nodes: o.nodes, quorum: o.quorum, seed: o.seed, episodes,
    doubleHolders: episodes.filter((e) => e.overlapMs > 0).length,
    grantBoundMs: boundMs,
    slowestGrantMs: Math.max(0, ...episodes.map((e) => e.grantedAfterMs ?? 0)),
  };
}
