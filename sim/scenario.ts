// One seed end to end, as `afcluster sim` runs it (TigerBeetle's VOPR shape): a safety phase with
// the fault mix drawn from the seed, then a liveness phase on a healed network with every node
// back up, in which the cluster must converge and deliver within a bound; then the EVS checker.
// The `pause` mix runs its safety phase as a sequence of clean faults instead (runPauseEpisodes).
import type { DriverEntry } from '../core/driver/types.ts';
import { check, type Property, type Violation } from './checker.ts';
import type { SafeQuorumOptions } from './quorum-check.ts';
import { formatEvent } from './log.ts';
import { Rng } from './rng.ts';
import { SimBudgetError, Simulation, type NetworkOptions, type SimStats } from './sim.ts';

/** none: a perfect network; loss: random loss and duplication; all: also partitions, cuts,
 *  clogs, swizzles, crashes and pauses at random moments; pause: one clean fault at a time on a
 *  loss-free network (a pause just past failure detection, a crash, a partition), each undone
 *  and settled before the next, so that availability can be judged. */
export type FaultMix = 'none' | 'loss' | 'all' | 'pause';
export const FAULT_MIXES: readonly FaultMix[] = ['none', 'loss', 'all', 'pause'];
/** Share of swarm seeds that run the pause mix, drawn from a stream of its own so that every
 *  other seed draws exactly what it drew before the mix existed (and replays as documented). */
const SWARM_PAUSE_SHARE = 0.2;

export interface SeedOptions {
  driver: DriverEntry<unknown>;
  seed: number;
  /** Cluster size (default 3; swarm draws 2..12). */
  nodes?: number;
  /** Draw cluster size, fault mix (unless given) and rates from the seed. */
  swarm?: boolean;
  /** Fault mix (default 'all'; in swarm mode drawn from the seed when absent). */
  faults?: FaultMix;
  properties: readonly Property[];
  driverOptions?: Record<string, unknown>;
  /** The protocol's time scale: phases and bounds are multiples of it (default: the largest
   *  `*_ms` option of the driver, at least 20 ms). */
  timeScaleMs?: number;
  /** Safety phase length (default 6 x time scale). */
  safetyMs?: number;
  /** Liveness bound: how long the healed cluster may take to converge, and again to deliver
   *  (default 30 x time scale). */
  livenessMs?: number;
  /** Runaway guard: events (and datagrams) one seed may process (default 1M); beyond, a 'liveness' violation
   *  (the cluster made no progress in bounded work: a datagram or timer storm). */
  maxEvents?: number;
  /** Narration of the fault schedule and phases (for --verbose). */
  onNote?: (line: string) => void;
  /** Driver log lines (for --verbose). */
  onDriverLog?: (line: string) => void;
}

export interface SeedResult {
  seed: number;
  nodes: number;
  faults: FaultMix;
  violations: Violation[];
  traceHash: string;
  /** Virtual time the network healed (liveFrom), and when the cluster converged (or null). */
  liveFrom: number;
  convergedAt: number | null;
  virtualMs: number;
  stats: SimStats;
  sim: Simulation;
}

/** The largest timer among the driver's options: what "a while" means for this protocol. */
export function timeScaleOf(driver: DriverEntry<unknown>, driverOptions?: Record<string, unknown>): number {
  const parsed = driver.optionsSchema.parse(driverOptions ?? {}) as Record<string, unknown>;
  let scale = 0;
  for (const [k, v] of Object.entries(parsed ?? {})) {
    if (typeof v === 'number' && Number.isFinite(v) && /(_ms|Ms)$/.test(k)) scale = Math.max(scale, v);
  }
  return Math.max(scale, 20);
}

interface Plan {
  nodes: number;
  faults: FaultMix;
  network: NetworkOptions;
  ratePerSec: number;
  sizes: number[];
  episodes: number;
}

function plan(opts: SeedOptions, rng: Rng, safetyMs: number): Plan {
  const nodes = opts.swarm ? rng.int(2, 12) : (opts.nodes ?? 3);
  let faults: FaultMix = opts.faults ?? (opts.swarm ? rng.pick(['none', 'loss', 'all', 'all'] as const) : 'all');
  if (opts.swarm && !opts.faults && new Rng(opts.seed).fork('swarm-pause').chance(SWARM_PAUSE_SHARE)) faults = 'pause';
  const network: NetworkOptions = { latencyMs: 0.1, jitterMs: 0.05, loss: 0, duplicate: 0 };
  if (faults !== 'none' && faults !== 'pause') {
    // Half the seeds stay gentle: heavy loss everywhere hides the subtle bugs.
    const heavy = rng.chance(0.5);
    network.loss = heavy ? rng.range(0, 0.3) : rng.range(0, 0.05);
    network.duplicate = rng.range(0, heavy ? 0.1 : 0.02);
    network.jitterMs = rng.pick([0.05, 0.2, 1, 3]);
  }
  if (opts.swarm) {
    network.latencyMs = rng.pick([0.05, 0.1, 0.5]);
    network.transport = rng.pick(['udpu', 'multicast'] as const);
    // Sometimes a finite NIC (100 Mbit/s or 1 Gbit/s, in bytes per ms): flow control matters.
    // Not in the pause mix: a full NIC queue drops datagrams, and it is judged on a clean network.
    if (rng.chance(0.3)) {
      const bw = rng.pick([12_500, 125_000]);
      if (faults !== 'pause') network.bandwidthBytesPerMs = bw;
    }
  }
  const messages = rng.int(40, 300);
  const ratePerSec = messages / nodes / (safetyMs / 1000);
  const sizes = rng.chance(0.3) ? [16, 64, 256, 1200, 5000, 70_000] : [16, 64, 256, 1200];
  const episodes = faults === 'all' ? rng.int(1, 5) : faults === 'pause' ? rng.int(1, 3) : 0;
  return { nodes, faults, network, ratePerSec, sizes, episodes };
}

/** The quorum options the 'quorum' property judges a seed by: drawn from a stream of their own,
 *  so they shift no other draw. */
function quorumPlan(seed: number, nodes: number): { nodes: number[]; options: SafeQuorumOptions } {
  const rng = new Rng(seed).fork('quorum');
  return {
    nodes: Array.from({ length: nodes }, (_, i) => i + 1),
    options: { waitForAll: rng.chance(0.3), autoTieBreaker: rng.chance(0.5), autoTieBreakerNode: rng.pick(['lowest', 'highest'] as const) },
  };
}

export function runSeed(opts: SeedOptions): SeedResult {
  const scale = opts.timeScaleMs ?? timeScaleOf(opts.driver, opts.driverOptions);
  const safetyMs = opts.safetyMs ?? 6 * scale;
  const livenessMs = opts.livenessMs ?? 30 * scale;
  // The scenario's own draws come from a stream of their own, so they never shift the network's.
  const rng = new Rng(opts.seed).fork('scenario');
  const p = plan(opts, rng, safetyMs);
  const note = opts.onNote ?? (() => {});
  // Without virtual synchrony each node names its configurations itself: judge them as views.
  const views = !opts.driver.guarantees.virtualSynchrony;
  const sim = new Simulation({
    seed: opts.seed, nodes: p.nodes, driver: opts.driver, driverOptions: opts.driverOptions, network: p.network,
    maxEvents: opts.maxEvents ?? 1_000_000, maxQueued: 200_000,
    onDriverLog: opts.onDriverLog ? (node, level, msg, fields) =>
      opts.onDriverLog!(`${sim.now.toFixed(3)} n${node} ${level} ${msg}${fields ? ' ' + JSON.stringify(fields) : ''}`) : undefined,
  });
  note(`seed ${opts.seed}: ${p.nodes} nodes, faults ${p.faults}, network ${JSON.stringify(p.network)}, `
    + `${p.ratePerSec.toFixed(1)} msg/s/node, time scale ${scale} ms`);
  let liveFrom = 0;
  let convergedAt: number | null = null;
  const extra: Violation[] = [];
  try {
    sim.start();
    sim.workload({ ratePerSec: p.ratePerSec, sizes: p.sizes, orders: workloadOrders(sim, opts) });
    if (p.faults === 'pause') {
      runPauseEpisodes(sim, rng, { episodes: p.episodes, scale, livenessMs, views, detectMs: detectionOf(opts, scale) }, note);
    } else {
      for (let i = 0; i < p.episodes; i++) scheduleEpisode(sim, rng, scale, safetyMs, note);
      sim.runFor(safetyMs);
    }
    liveFrom = healAll(sim, note);
    convergedAt = livenessPhase(sim, livenessMs, note, views);
  } catch (e) {
    extra.push(driverThrew(sim, e, opts.seed));
  }
  const violations = [...extra, ...check(sim.logs(), {
    properties: opts.properties, seed: opts.seed, liveFrom, views, endT: sim.now, faults: sim.faults(),
    quorum: quorumPlan(opts.seed, p.nodes),
  })];
  return {
    seed: opts.seed, nodes: p.nodes, faults: p.faults, violations, traceHash: sim.traceHash(), liveFrom, convergedAt,
    virtualMs: sim.now, stats: sim.stats(), sim,
  };
}

/** The driver's orders; plus 'agreed' when it is checked but not guaranteed (a FIFO-only driver
 *  that accepts it is then judged on it; one that refuses it makes the sends fail, unlogged). */
function workloadOrders(sim: Simulation, opts: SeedOptions) {
  const orders = sim.defaultOrders();
  if (opts.properties.includes('agreed') && !orders.includes('agreed')) orders.push('agreed');
  return orders;
}

function driverThrew(sim: Simulation, e: unknown, seed: number): Violation {
  const f = sim.failure;
  const err = e instanceof Error ? e : new Error(String(e));
  if (e instanceof SimBudgetError) {
    return { property: 'liveness', seed, nodes: [], message: e.message, events: sim.events().slice(-5).map(formatEvent) };
  }
  return {
    property: 'invariants', seed, nodes: f ? [f.node] : [],
    message: `${f ? `node ${f.node} at ${f.t.toFixed(3)} ms: ` : ''}${err.message}`,
    events: sim.events().slice(-5).map(formatEvent),
  };
}

/** One fault episode at a random moment of the safety phase, undone after a while. */
function scheduleEpisode(sim: Simulation, rng: Rng, scale: number, safetyMs: number, note: (l: string) => void): void {
  const at = rng.range(0, safetyMs * 0.8);
  const lasts = rng.range(0.2, 3) * scale;
  const ids = sim.nodes;
  const kind = rng.pick(['partition', 'cut', 'clog', 'swizzle', 'crash', 'pause', 'linkloss'] as const);
  const say = (what: string) => note(`${sim.now.toFixed(3)} fault: ${what}`);
  sim.after(at, () => {
    if (sim.now >= safetyMs) return; // the liveness phase is fault-free
    switch (kind) {
      case 'partition': {
        const groups = splitGroups(rng, ids);
        say(`partition ${groups.map((g) => `[${g.join(',')}]`).join(' ')} for ${lasts.toFixed(0)} ms`);
        sim.partition(groups);
        sim.after(lasts, () => { say('partition healed'); sim.partition([[...ids]]); });
        break;
      }
      case 'cut': {
        const links = randomLinks(rng, ids);
        say(`cut ${links.map(([a, b]) => `${a}->${b}`).join(' ')} for ${lasts.toFixed(0)} ms`);
        for (const [a, b] of links) sim.cutLink(a, b);
        sim.after(lasts, () => { say('cuts restored'); for (const [a, b] of links) sim.restoreLink(a, b); });
        break;
      }
      case 'clog': {
        const links = randomLinks(rng, ids);
        say(`clog ${links.map(([a, b]) => `${a}->${b}`).join(' ')} for ${lasts.toFixed(0)} ms`);
        for (const [a, b] of links) sim.clog(a, b);
        sim.after(lasts, () => { say('unclogged'); for (const [a, b] of links) sim.unclog(a, b); });
        break;
      }
      case 'swizzle': {
        const stepMs = rng.range(0.02, 0.3) * scale;
        say(`swizzle-clog, step ${stepMs.toFixed(1)} ms, hold ${lasts.toFixed(0)} ms`);
        sim.swizzleClog({ stepMs, holdMs: lasts });
        break;
      }
      case 'crash': {
        const id = rng.pick(ids);
        const back = rng.chance(0.7);
        say(`crash ${id}${back ? `, restart after ${lasts.toFixed(0)} ms` : ''}`);
        sim.crash(id);
        if (back) sim.after(lasts, () => { if (!sim.host(id).alive) { say(`restart ${id}`); sim.restart(id); } });
        break;
      }
      case 'pause': {
        const id = rng.pick(ids);
        say(`pause ${id} for ${lasts.toFixed(0)} ms`);
        sim.pause(id);
        sim.after(lasts, () => { say(`resume ${id}`); sim.resume(id); });
        break;
      }
      case 'linkloss': {
        const links = randomLinks(rng, ids);
        const rate = rng.range(0.2, 1);
        say(`loss ${(rate * 100).toFixed(0)}% on ${links.map(([a, b]) => `${a}->${b}`).join(' ')} for ${lasts.toFixed(0)} ms`);
        for (const [a, b] of links) sim.setLinkLoss(a, b, rate);
        sim.after(lasts, () => { for (const [a, b] of links) sim.setLinkLoss(a, b, NaN); });
        break;
      }
    }
  });
}

/** How long the driver takes to exclude a silent node (DriverEntry.failureDetectionMs). */
function detectionOf(opts: SeedOptions, scale: number): number {
  const parsed = opts.driver.optionsSchema.parse(opts.driverOptions ?? {});
  return opts.driver.failureDetectionMs?.(parsed) ?? 2 * scale;
}

interface PauseMix { episodes: number; scale: number; livenessMs: number; views: boolean; detectMs: number }

/**
 * The pause mix: once the cluster has formed, one clean fault at a time: a pause of
 * 1.0 to 1.6 times the failure detection time on any node, the lowest id included (just past
 * it, the returning node finds the others moved on without it and holds their stale joins), a
 * crash with a restart after as long, or a symmetric partition healed after as long. Each is
 * undone, the cluster must converge again, and it runs on for two time units, so whatever storm
 * the return causes lands inside the episode the checker judges.
 */
function runPauseEpisodes(sim: Simulation, rng: Rng, m: PauseMix, note: (l: string) => void): void {
  const isConverged = cachedByLogLength(sim, () => converged(sim, m.views));
  const say = (what: string) => note(`${sim.now.toFixed(3)} fault: ${what}`);
  sim.runUntil(isConverged, m.livenessMs);
  for (let i = 0; i < m.episodes; i++) {
    sim.runFor(rng.range(0.5, 2) * m.scale);
    const lasts = rng.range(1, 1.6) * m.detectMs;
    const kind = rng.pick(['pause', 'pause', 'crash', 'partition'] as const);
    const ids = sim.nodes;
    let undo: () => void;
    if (kind === 'partition') {
      const groups = splitGroups(rng, ids);
      say(`partition ${groups.map((g) => `[${g.join(',')}]`).join(' ')} for ${lasts.toFixed(0)} ms`);
      sim.partition(groups);
      undo = () => { say('partition healed'); sim.partition([[...ids]]); };
    } else {
      const id = rng.pick(ids);
      say(`${kind} ${id} for ${lasts.toFixed(0)} ms`);
      if (kind === 'pause') sim.pause(id);
      else sim.crash(id);
      undo = () => { say(`${kind === 'pause' ? 'resume' : 'restart'} ${id}`); if (kind === 'pause') sim.resume(id); else sim.restart(id); };
    }
    sim.runFor(lasts);
    undo();
    if (!sim.runUntil(isConverged, m.livenessMs)) note(`${sim.now.toFixed(3)} not converged after ${m.livenessMs} ms`);
    sim.runFor(2 * m.scale);
  }
}

function splitGroups(rng: Rng, ids: readonly number[]): number[][] {
  const k = Math.min(ids.length, rng.int(2, 3));
  const groups: number[][] = Array.from({ length: k }, () => []);
  rng.shuffle(ids).forEach((id, i) => groups[i < k ? i : rng.int(0, k - 1)].push(id));
  return groups.map((g) => g.sort((a, b) => a - b));
}

function randomLinks(rng: Rng, ids: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  const n = rng.int(1, Math.max(1, ids.length - 1));
  for (let i = 0; i < n; i++) {
    const a = rng.pick(ids);
    const b = rng.pick(ids.filter((x) => x !== a));
    if (b !== undefined) out.push([a, b]);
  }
  return out;
}

/** Heal the network, resume paused nodes, restart crashed ones; returns the heal time. */
export function healAll(sim: Simulation, note: (l: string) => void = () => undefined): number {
  sim.workload(null);
  sim.heal();
  sim.setFilter(null);
  sim.setNetwork({ loss: 0, duplicate: 0 });
  for (const h of sim.hosts()) {
    if (h.paused) sim.resume(h.nodeId);
    if (!h.alive) sim.restart(h.nodeId);
  }
  note(`${sim.now.toFixed(3)} liveness phase: network healed, every node up`);
  return sim.now;
}

/** The last configuration each live node installed, read from its log (null: none since its start). */
function currentConfs(sim: Simulation, views = false): (string | null)[] {
  return sim.logs().map((log) => {
    for (let i = log.events.length - 1; i >= 0; i--) {
      const e = log.events[i];
      if (e.type === 'crash' || e.type === 'restart') return null;
      if (e.type === 'conf') return `${e.kind} ${views ? 'view' : `${e.ringId.rep}.${e.ringId.seq}`} ${e.members.join(',')}`;
    }
    return null;
  });
}

function converged(sim: Simulation, views: boolean): boolean {
  const confs = currentConfs(sim, views);
  const first = confs[0];
  const all = sim.nodes.join(',');
  return first !== null && first.startsWith('regular ') && first.endsWith(` ${all}`) && confs.every((c) => c === first);
}

/** Wait for one regular configuration of every node, then send from each and wait for delivery everywhere. */
function livenessPhase(sim: Simulation, boundMs: number, note: (l: string) => void, views: boolean): number | null {
  const start = sim.now;
  const ok = sim.runUntil(cachedByLogLength(sim, () => converged(sim, views)), boundMs);
  if (!ok) {
    note(`${sim.now.toFixed(3)} not converged after ${boundMs} ms: ${currentConfs(sim).map((c, i) => `n${sim.nodes[i]}=${c}`).join(' ')}`);
    return null;
  }
  const at = sim.now;
  note(`${at.toFixed(3)} converged after ${(at - start).toFixed(1)} ms`);
  const orders = sim.defaultOrders();
  const pending: { node: number; k: number }[] = [];
  for (const node of sim.nodes) for (let k = 0; k < 3; k++) pending.push({ node, k });
  // Send (retrying EAGAIN), then let everything be delivered.
  const sendSome = () => {
    for (let i = pending.length - 1; i >= 0; i--) {
      const { node, k } = pending[i];
      const r = sim.send(node, orders[k % orders.length], 64 + k * 500);
      if (r !== 'EAGAIN') pending.splice(i, 1);
    }
  };
  sendSome();
  const delivered = cachedByLogLength(sim, () => allSentDelivered(sim, at));
  const deliveredAll = () => {
    if (pending.length) sendSome();
    return pending.length === 0 && delivered();
  };
  if (!sim.runUntil(deliveredAll, boundMs)) note(`${sim.now.toFixed(3)} liveness deliveries incomplete after ${boundMs} ms`);
  sim.runFor(Math.min(boundMs, 50));
  return at;
}

/** A predicate over the logs, recomputed only when an event was logged (most steps log nothing). */
function cachedByLogLength(sim: Simulation, pred: () => boolean): () => boolean {
  let seen = -1;
  let value = false;
  return () => {
    const n = sim.events().length;
    if (n !== seen) { seen = n; value = pred(); }
    return value;
  };
}

/** Every message sent at or after `since` is delivered at every node (checked from the logs). */
function allSentDelivered(sim: Simulation, since: number): boolean {
  const logs = sim.logs();
  const sent: string[] = [];
  for (const l of logs) for (let i = l.events.length - 1; i >= 0 && l.events[i].t >= since; i--) {
    const e = l.events[i];
    if (e.type === 'send') sent.push(e.id);
  }
  return logs.every((l) => {
    const got = new Set<string>();
    for (let i = l.events.length - 1; i >= 0 && l.events[i].t >= since; i--) {
      const e = l.events[i];
      if (e.type === 'deliver') got.add(e.id);
    }
    return sent.every((id) => got.has(id));
  });
}
