// The consistency drill's checker: pure. It reads what every observer (a worker process, one
// lock-service member) recorded and counts
// - double grants: two holders of one lock at once where one is exclusive, either inside one
//   observer's sequence of decisions (its table broke the rules) or in time (two workers each
//   believed, from their own node's table, that they held the lock over overlapping intervals);
// - disagreements: pairs of observers whose decision sequences differ where both were
//   watching: for some lock name, on the decisions both saw, the order differs, or one saw a
//   decision between two shared ones that the other never saw.
// Time stamps come from one machine's monotonic clock; a worker marks a hold ended before it
// sends the unlock, and a grant is marked after its delivery, so under agreed order two holds
// of one exclusive lock cannot overlap whatever the scheduling.

export type DecisionType = 'grant' | 'release' | 'cancel' | 'tryfail' | 'refused';
export type Mode = 'shared' | 'exclusive';

export interface DecisionRecord {
  readonly type: DecisionType;
  readonly name: string;
  /** Owner's member key "nodeId/pid/port". */
  readonly owner: string;
  readonly requestId: number;
  readonly mode: Mode;
}

export interface HoldRecord {
  readonly name: string;
  readonly mode: Mode;
  readonly requestId: number;
  /** Microseconds on the machine's monotonic clock (or any clock shared by all observers). */
  readonly fromUs: number;
  readonly toUs: number;
}

export interface ObserverRecord {
  /** Worker name, unique in the drill. */
  readonly observer: string;
  readonly nodeId: number;
  /** This observer's own member key. */
  readonly self: string;
  /** Every decision its table took, in delivery order, from the moment it held the table. */
  readonly decisions: readonly DecisionRecord[];
  /** What it was granted itself and when it let go. */
  readonly holds: readonly HoldRecord[];
}

export interface DrillReport {
  readonly observers: number;
  readonly decisions: number;
  readonly grants: number;
  readonly ownHolds: number;
  readonly doubleGrantsInView: number;
  readonly doubleGrantsInTime: number;
  readonly doubleGrants: number;
  /** Observer pairs whose sequences disagree. */
  readonly disagreements: number;
  /** Observer pairs with at least one decision in common (compared meaningfully). */
  readonly pairsCompared: number;
  readonly examples: readonly string[];
}

const EXAMPLES_MAX = 8;

export function checkDrill(records: readonly ObserverRecord[]): DrillReport {
  const examples: string[] = [];
  const note = (s: string): void => { if (examples.length < EXAMPLES_MAX) examples.push(s); };
  let doubleGrantsInView = 0;
  for (const r of records) doubleGrantsInView += doubleGrantsInOneView(r, note);
  const doubleGrantsInTime = overlappingHolds(records, note);
  let disagreements = 0;
  let pairsCompared = 0;
  for (let i = 0; i < records.length; i++) {
    for (let j = i + 1; j < records.length; j++) {
      const verdict = comparePair(records[i], records[j]);
      if (verdict === 'disjoint') continue;
      pairsCompared++;
      if (verdict === 'agree') continue;
      disagreements++;
      note(`disagreement: ${records[i].observer} (node ${records[i].nodeId}) vs ${records[j].observer} (node ${records[j].nodeId}): ${verdict}`);
    }
  }
  const decisions = records.reduce((n, r) => n + r.decisions.length, 0);
  const grants = records.reduce((n, r) => n + r.decisions.filter((d) => d.type === 'grant').length, 0);
  const ownHolds = records.reduce((n, r) => n + r.holds.length, 0);
  return {
    observers: records.length, decisions, grants, ownHolds, doubleGrantsInView, doubleGrantsInTime,
    doubleGrants: doubleGrantsInView + doubleGrantsInTime, disagreements, pairsCompared, examples,
  };
}

function conflicts(a: Mode, b: Mode): boolean {
  return a === 'exclusive' || b === 'exclusive';
}

/** Replays one observer's decisions: a grant while an incompatible holder holds is a double grant. */
function doubleGrantsInOneView(r: ObserverRecord, note: (s: string) => void): number {
  const holders = new Map<string, Map<string, Mode>>();
  let n = 0;
  for (const d of r.decisions) {
    const id = `${d.owner}#${d.requestId}`;
    const h = holders.get(d.name) ?? new Map<string, Mode>();
    holders.set(d.name, h);
    if (d.type === 'grant') {
      const clash = [...h].find(([, mode]) => conflicts(mode, d.mode));
      if (clash) {
        n++;
        note(`double grant in the view of ${r.observer}: "${d.name}" to ${id} (${d.mode}) while ${clash[0]} holds it (${clash[1]})`);
      }
      h.set(id, d.mode);
    } else if (d.type === 'release') {
      h.delete(id);
    }
  }
  return n;
}

interface TimedHold extends HoldRecord {
  readonly observer: string;
}

/** Sweeps every lock's holds by start time; counts pairs of different observers overlapping with an exclusive. */
function overlappingHolds(records: readonly ObserverRecord[], note: (s: string) => void): number {
  const byName = new Map<string, TimedHold[]>();
  for (const r of records) {
    for (const h of r.holds) {
      const list = byName.get(h.name) ?? [];
      byName.set(h.name, list);
      list.push({ ...h, observer: r.observer });
    }
  }
  let n = 0;
  for (const [name, holds] of byName) {
    holds.sort((a, b) => a.fromUs - b.fromUs);
    let active: TimedHold[] = [];
    for (const h of holds) {
      active = active.filter((a) => a.toUs > h.fromUs);
      for (const a of active) {
        if (a.observer === h.observer || !conflicts(a.mode, h.mode)) continue;
        n++;
        note(`double grant in time: "${name}" held by ${a.observer} (${a.mode}, ${a.fromUs}..${a.toUs} us) and ${h.observer} (${h.mode}, from ${h.fromUs} us)`);
      }
      active.push(h);
    }
  }
  return n;
}

function decisionId(d: DecisionRecord): string {
  return `${d.type}|${d.name}|${d.owner}|${d.requestId}`;
}

/** 'agree', 'disjoint' (nothing in common), or the first difference. Compared per lock
 *  name: how decisions on different names interleave does not matter to anyone. */
export function comparePair(a: ObserverRecord, b: ObserverRecord): string {
  const byNameA = groupByName(a.decisions);
  const byNameB = groupByName(b.decisions);
  let verdict = 'disjoint';
  for (const [name, idsA] of byNameA) {
    const v = compareSequences(idsA, byNameB.get(name) ?? [], a.observer, b.observer);
    if (v === 'disjoint') continue;
    if (v !== 'agree') return `lock "${name}": ${v}`;
    verdict = 'agree';
  }
  return verdict;
}

function groupByName(ds: readonly DecisionRecord[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const d of ds) {
    const list = out.get(d.name) ?? [];
    out.set(d.name, list);
    list.push(decisionId(d));
  }
  return out;
}

function compareSequences(idsA: readonly string[], idsB: readonly string[], nameA: string, nameB: string): string {
  const commonA = positions(idsA, new Set(idsB));
  const commonB = positions(idsB, new Set(idsA));
  if (commonA.length === 0 && commonB.length === 0) return 'disjoint';
  if (commonA.length !== commonB.length) return `they saw a decision a different number of times (${commonA.length} vs ${commonB.length})`;
  for (let i = 0; i < commonA.length; i++) {
    if (idsA[commonA[i]] !== idsB[commonB[i]]) return `decision ${i} of their common span: ${idsA[commonA[i]]} vs ${idsB[commonB[i]]}`;
  }
  const gapA = firstGap(commonA);
  if (gapA !== undefined) return `${nameA} saw ${idsA[gapA]} inside the span both watched; ${nameB} never did`;
  const gapB = firstGap(commonB);
  if (gapB !== undefined) return `${nameB} saw ${idsB[gapB]} inside the span both watched; ${nameA} never did`;
  return 'agree';
}

function positions(ids: readonly string[], other: ReadonlySet<string>): number[] {
  const out: number[] = [];
  ids.forEach((id, i) => { if (other.has(id)) out.push(i); });
  return out;
}

/** The first index inside [first common, last common] that is not common, if any. */
function firstGap(common: readonly number[]): number | undefined {
  for (let i = 1; i < common.length; i++) if (common[i] !== common[i - 1] + 1) return common[i - 1] + 1;
  return undefined;
}
