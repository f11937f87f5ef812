// The availability property: nodes that no fault touched and that can reach each
// other stay in one configuration through another node's pause, crash or partition, and each
// forms a bounded number of configurations per fault. Extended virtual synchrony alone allows
// any membership; this is what users see: a healthy node must not watch its healthy peers leave
// and come back because some other node was stopped for a while.
//
// Reading (the choices matter, so they are written here):
// - The fault timeline (Simulation.faults()) is cut into episodes. An episode opens when the
//   cluster leaves the clear state (every node up and running, one partition group, no random
//   loss, no link fault, no filter, infinite NIC bandwidth) and is judged until the next episode
//   opens or the log ends: a storm that follows the fault's end belongs to it.
// - Judged only when the network dropped nothing by itself during the episode: no random loss,
//   no cut, clogged or lossy link, no filter, no finite NIC queue. Random loss can break a token
//   on any link and then excluding a healthy node is the protocol working, not a storm; so in
//   practice the property is judged in the `pause` fault mix and never under `loss` or `all`.
// - Untouched nodes: no pause, resume, crash, restart or leave during the episode. Two untouched
//   nodes are bound together when they stay in one partition group throughout the episode and
//   each one's last regular configuration before the onset contains the other.
// - Together: a regular configuration an untouched node installs during the episode contains
//   every node bound to it.
// - Bounded: an untouched node installs at most CONFIGURATIONS_PER_EPISODE_MAX regular
//   configurations during the episode (see the constant for why that number).
import type { ConfEvent, FaultEvent, LogEvent, NetFaultEvent, NodeLog } from './log.ts';

/**
 * Regular configurations an untouched node may install per episode. A fault changes the
 * membership twice: at its onset (the faulted or cut-off nodes leave) and at its end (they come
 * back). Each change is one membership round, and may take one more: a node that reaches GATHER
 * after the commit token was created (a returning node's first join arriving late) makes the
 * ring form again with it, and a partition into three groups may heal as two merges. Two
 * changes of at most two rings each: 4. Totem since the post-pause fix installs 2 in nearly every
 * episode (3 at most, on swarm seeds 1-1500); before, the post-pause storm made 3 to 12 per
 * pause of a node other than the lowest id (5 nodes, pause seeds 1-200), splitting them.
 */
export const CONFIGURATIONS_PER_EPISODE_MAX = 4;

export interface AvailabilityFinding {
  message: string;
  nodes: number[];
  events: LogEvent[];
}

interface Episode {
  onset: number;
  /** Judged up to (excluding) this time: the next onset, or Infinity. */
  until: number;
  /** Nodes with a host fault in the episode. */
  touched: Set<number>;
  /** Pairs `a,b` (a < b) in different partition groups at some time in the episode. */
  apart: Set<string>;
  /** The network dropped datagrams by itself at some time in the episode: not judged. */
  lossy: boolean;
  /** What happened, for the messages. */
  what: string[];
}

const pairKey = (a: number, b: number): string => (a < b ? `${a},${b}` : `${b},${a}`);

function netClear(n: NetFaultEvent): boolean {
  return n.groups.length <= 1 && n.loss === 0 && !n.linkFaults && !n.filter && !n.finiteNic;
}

function netLossy(n: NetFaultEvent): boolean {
  return n.loss > 0 || n.linkFaults || n.filter || n.finiteNic;
}

/** Cuts the fault timeline into episodes (see the header). */
export function episodesOf(faults: readonly FaultEvent[]): Episode[] {
  const out: Episode[] = [];
  const paused = new Set<number>();
  const down = new Set<number>();
  let left = false;
  let net: NetFaultEvent | null = null;
  let parts = 1;
  let cur: Episode | null = null;
  let clear = true;
  for (const f of faults) {
    if (f.type === 'host') {
      if (f.what === 'pause') paused.add(f.node);
      else if (f.what === 'resume') paused.delete(f.node);
      else if (f.what === 'crash') down.add(f.node);
      else if (f.what === 'restart') down.delete(f.node);
      else left = true;
    } else {
      net = f;
    }
    const nowClear = paused.size === 0 && down.size === 0 && !left && (net === null || netClear(net));
    if (clear && !nowClear) {
      if (cur) cur.until = f.t;
      cur = { onset: f.t, until: Infinity, touched: new Set(), apart: new Set(), lossy: false, what: [] };
      out.push(cur);
    }
    clear = nowClear;
    if (!cur) continue;
    if (f.type === 'host') {
      cur.touched.add(f.node);
      cur.what.push(`${f.what} ${f.node} at ${f.t.toFixed(3)}`);
      continue;
    }
    cur.lossy ||= netLossy(f);
    for (let i = 0; i < f.groups.length; i++) {
      for (let j = i + 1; j < f.groups.length; j++) for (const a of f.groups[i]) for (const b of f.groups[j]) cur.apart.add(pairKey(a, b));
    }
    if (f.groups.length > 1) cur.what.push(`partition ${f.groups.map((g) => `[${g.join(',')}]`).join(' ')} at ${f.t.toFixed(3)}`);
    else if (parts > 1) cur.what.push(`partition healed at ${f.t.toFixed(3)}`);
    parts = f.groups.length;
  }
  return out;
}

/** A node's regular configurations of its last process before `t`, and those in [t, until). */
function confsAround(log: NodeLog, t: number, until: number): { before: ConfEvent | null; during: ConfEvent[] } {
  let before: ConfEvent | null = null;
  const during: ConfEvent[] = [];
  for (const e of log.events) {
    if (e.t < t) {
      if (e.type === 'crash' || e.type === 'restart') before = null;
      else if (e.type === 'conf' && e.kind === 'regular') before = e;
    } else if (e.t < until && e.type === 'conf' && e.kind === 'regular') {
      during.push(e);
    }
  }
  return { before, during };
}

export function checkAvailability(logs: readonly NodeLog[], faults: readonly FaultEvent[]): AvailabilityFinding[] {
  const out: AvailabilityFinding[] = [];
  for (const ep of episodesOf(faults)) {
    if (ep.lossy) continue;
    const around = new Map<number, ReturnType<typeof confsAround>>();
    for (const log of logs) if (!ep.touched.has(log.node)) around.set(log.node, confsAround(log, ep.onset, ep.until));
    const what = ep.what.join(', ');
    for (const [a, ca] of around) {
      const bound = [...around.keys()].filter((b) => b !== a && !ep.apart.has(pairKey(a, b))
        && ca.before?.members.includes(b) && around.get(b)?.before?.members.includes(a));
      const split = ca.during.find((c) => bound.some((b) => !c.members.includes(b)));
      if (split) {
        const b = bound.find((x) => !split.members.includes(x))!;
        out.push({
          message: `node ${a} installed regular ${split.ringId.rep}.${split.ringId.seq} [${split.members.join(',')}] without node ${b}, `
            + `though neither was touched by the faults (${what}) and they could reach each other throughout`,
          nodes: [a, b], events: [ca.before!, split],
        });
      }
      if (ca.during.length > CONFIGURATIONS_PER_EPISODE_MAX) {
        out.push({
          message: `node ${a}, untouched by the faults (${what}), installed ${ca.during.length} regular configurations `
            + `(at most ${CONFIGURATIONS_PER_EPISODE_MAX} per episode)`,
          nodes: [a], events: ca.during.slice(0, 6),
        });
      }
    }
  }
  return out;
}
