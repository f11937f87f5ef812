// The group-level virtual synchrony checker, for the fault drills' real clients and the
// whole-node simulator's simulated ones: pure (no I/O, no clock). It reads the logs of the client processes
// of one group (every message and membership event each received, in order) and checks, over
// the SURVIVORS (clients alive at the end, on nodes that are members at the end):
// - membership agreement: every survivor's last event is a regular configuration listing
//   exactly the survivors (and, with ring ids shared by all nodes, the same ring id);
// - missing messages (failure atomicity, EVS property 4 in docs/TOTEM.md): two survivors that both
//   installed configuration C and both went on to the same next configuration delivered the
//   same messages in C. A message one of them delivered in C and the other did not is missing;
// - total order (when the driver claims it): two survivors deliver the messages both delivered
//   in the same relative order;
// - per sender, at every receiver: no duplicate, and sequence numbers only increase (FIFO).
// It also measures, without judging, messages some survivor delivered in a configuration that
// lists another survivor, which never delivered them at all (a node cut off for a while
// legitimately misses what the others said meanwhile).
//
// A configuration is named by its kind, its member list, its ring id (only where ring ids are
// shared by every node: totem; cman's ring ids are per node) and its occurrence number in the
// log, so that a member list seen twice (a node leaves and comes back) names two configurations.
import { memberKey } from '../core/wire/member.ts';

export interface DrillMember {
  readonly nodeId: number;
  readonly pid: number;
  readonly port: number;
}

/** One line of a client's log (the stream client writes these as JSON). */
export type DrillRecord =
  | { readonly type: 'open'; readonly self: DrillMember }
  | {
    readonly type: 'membership'; readonly kind: 'regular' | 'transitional'; readonly ringId: string; readonly members: readonly DrillMember[];
    /** The view id the event opened (protocol version 3: "rep.seq/n"), when the daemon gave one. */
    readonly viewId?: string;
  }
  | { readonly type: 'message'; readonly sender: DrillMember; readonly text: string }
  | { readonly type: 'other' };

export interface ClientLog {
  /** Unique in the drill; also the prefix of the texts it sends ("NAME:SEQ"). */
  readonly name: string;
  readonly self: DrillMember;
  /** Alive at the end, on a node that is a member at the end. */
  readonly survivor: boolean;
  readonly records: readonly DrillRecord[];
}

export interface CheckOptions {
  /** The driver gives one total order (totem): check it, and compare ring ids. */
  readonly totalOrder: boolean;
  /** The driver claims failure atomicity (totem): missing messages fail the drill. Without it
   *  (cman) they are counted and reported, not judged. */
  readonly virtualSynchrony: boolean;
}

export interface Missing {
  readonly text: string;
  readonly deliveredAt: string;
  readonly missingAt: string;
  readonly configuration: string;
}

export interface FaultReport {
  readonly survivors: readonly string[];
  /** Every survivor's last membership event agrees, and lists exactly the survivors. */
  readonly membershipAgreed: boolean;
  /** The final configuration as each survivor saw it: "ringId [members]". */
  readonly finalViews: Readonly<Record<string, string>>;
  /** Distinct configurations installed by survivors. */
  readonly configurations: number;
  /** Distinct messages delivered to at least one survivor. */
  readonly messages: number;
  readonly deliveries: number;
  /** Failure-atomicity violations (the asserted property). */
  readonly missing: readonly Missing[];
  /** Messages some survivor delivered in a configuration listing another survivor, which never
   *  delivered them in any configuration (measured, not judged: a node cut off for a while
   *  legitimately misses what the others said meanwhile). */
  readonly notEverywhere: number;
  readonly orderViolations: number;
  readonly duplicates: number;
  readonly fifoViolations: number;
  /** Views (by view id) whose members, or whose messages up to the same next view, differ between
   *  two clients that got them: over every client, survivors or not. */
  readonly viewViolations: number;
  readonly problems: readonly string[];
  readonly verdict: 'pass' | 'fail';
}

const END = 'END';

interface Segment {
  readonly config: string;
  /** Member keys of the configuration. */
  readonly members: ReadonlySet<string>;
  readonly texts: string[];
}

interface View {
  readonly log: ClientLog;
  readonly segments: Segment[];
  /** Delivered texts in delivery order. */
  readonly sequence: string[];
  /** Each delivered text's position in `sequence` (the first, when delivered twice). */
  readonly position: Map<string, number>;
  /** Configuration -> its messages and the configuration installed next. */
  readonly byConfig: Map<string, { texts: Set<string>; next: string }>;
}

/** Splits a log at membership events; messages before the first event go to a "before" segment. */
function segments(log: ClientLog, opts: CheckOptions): Segment[] {
  const seen = new Map<string, number>();
  const out: Segment[] = [{ config: 'before', members: new Set(), texts: [] }];
  for (const r of log.records) {
    if (r.type === 'membership') {
      // A view id names the view alike at every member; without one (older daemons, cman's
      // per-node rings), kind, ring and members, counted per log.
      const base = `${r.kind} ${opts.totalOrder ? r.ringId : '-'} [${r.members.map(memberKey).join(' ')}]`;
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      const config = r.viewId !== undefined && opts.totalOrder ? `${base} view ${r.viewId}` : `${base} #${n}`;
      out.push({ config, members: new Set(r.members.map(memberKey)), texts: [] });
    } else if (r.type === 'message') {
      out[out.length - 1].texts.push(r.text);
    }
  }
  return out;
}

function view(log: ClientLog, opts: CheckOptions): View {
  const segs = segments(log, opts);
  const sequence = segs.flatMap((s) => s.texts);
  const position = new Map<string, number>();
  sequence.forEach((t, i) => { if (!position.has(t)) position.set(t, i); });
  const v: View = { log, segments: segs, sequence, position, byConfig: new Map() };
  for (const [k, c] of byConfig(v)) v.byConfig.set(k, c);
  return v;
}

/** Configuration -> [its messages, the configuration installed next (END if none)]. */
function byConfig(v: View): Map<string, { texts: Set<string>; next: string }> {
  const out = new Map<string, { texts: Set<string>; next: string }>();
  v.segments.forEach((s, i) => {
    if (s.config === 'before' && s.texts.length === 0) return;
    out.set(s.config, { texts: new Set(s.texts), next: v.segments[i + 1]?.config ?? END });
  });
  return out;
}

function missingBetween(p: View, q: View): Missing[] {
  const pc = p.byConfig;
  const qc = q.byConfig;
  const out: Missing[] = [];
  for (const [config, a] of pc) {
    const b = qc.get(config);
    if (!b || b.next !== a.next) continue;
    for (const text of a.texts) {
      if (!b.texts.has(text)) out.push({ text, deliveredAt: p.log.name, missingAt: q.log.name, configuration: config });
    }
  }
  return out;
}

/** 1 when p and q deliver their common messages in different relative orders: walking p's
 *  sequence, the common messages' positions in q must only increase. */
function orderDiffers(p: View, q: View): number {
  let last = -1;
  for (const t of p.sequence) {
    const at = q.position.get(t);
    if (at === undefined) continue;
    if (at <= last) return 1;
    last = at;
  }
  return 0;
}

/** Duplicates and per-sender sequence inversions at one receiver. */
function fifoAt(v: View): { duplicates: number; inversions: number } {
  const seen = new Set<string>();
  const last = new Map<string, number>();
  let duplicates = 0;
  let inversions = 0;
  for (const text of v.sequence) {
    if (seen.has(text)) { duplicates++; continue; }
    seen.add(text);
    const cut = text.lastIndexOf(':');
    const sender = text.slice(0, cut);
    const tail = text.slice(cut + 1);
    const seq = tail === 'end' ? Number.POSITIVE_INFINITY : Number(tail);
    if ((last.get(sender) ?? -1) >= seq) inversions++;
    last.set(sender, seq);
  }
  return { duplicates, inversions };
}

/** Messages some survivor delivered in a configuration listing another survivor that never delivered them. */
function countNotEverywhere(views: readonly View[]): number {
  const delivered = new Map(views.map((v) => [memberKey(v.log.self), new Set(v.sequence)]));
  const lacking = new Set<string>();
  for (const v of views) {
    for (const seg of v.segments) {
      const others = [...seg.members].map((k) => delivered.get(k)).filter((d) => d !== undefined);
      for (const t of seg.texts) if (others.some((d) => !d.has(t))) lacking.add(t);
    }
  }
  return lacking.size;
}

function lastMembership(log: ClientLog): Extract<DrillRecord, { type: 'membership' }> | undefined {
  for (let i = log.records.length - 1; i >= 0; i--) {
    const r = log.records[i];
    if (r.type === 'membership') return r;
  }
  return undefined;
}

function membership(survivors: readonly ClientLog[], opts: CheckOptions): { agreed: boolean; views: Record<string, string>; problems: string[] } {
  const want = survivors.map((l) => memberKey(l.self)).sort().join(' ');
  const views: Record<string, string> = {};
  const problems: string[] = [];
  for (const log of survivors) {
    const last = lastMembership(log);
    if (!last) { problems.push(`${log.name} saw no membership event`); continue; }
    const members = last.members.map(memberKey).sort().join(' ');
    views[log.name] = `${last.ringId} [${members}]`;
    if (last.kind !== 'regular') problems.push(`${log.name} ends in a ${last.kind} configuration`);
    if (members !== want) problems.push(`${log.name} ends with members [${members}], the survivors are [${want}]`);
  }
  if (opts.totalOrder && new Set(Object.values(views)).size > 1) problems.push(`survivors end in different configurations: ${JSON.stringify(views)}`);
  return { agreed: problems.length === 0, views, problems };
}

export function checkFaultLogs(logs: readonly ClientLog[], opts: CheckOptions): FaultReport {
  const survivors = logs.filter((l) => l.survivor);
  const views = survivors.map((l) => view(l, opts));
  const member = membership(survivors, opts);
  const missing: Missing[] = [];
  let orderViolations = 0;
  for (const p of views) {
    for (const q of views) {
      if (p === q) continue;
      missing.push(...missingBetween(p, q));
      if (opts.totalOrder && p.log.name < q.log.name) orderViolations += orderDiffers(p, q);
    }
  }
  const fifo = views.map(fifoAt);
  const duplicates = fifo.reduce((s, f) => s + f.duplicates, 0);
  const fifoViolations = fifo.reduce((s, f) => s + f.inversions, 0);
  const all = new Set(views.flatMap((v) => v.sequence));
  const notEverywhere = countNotEverywhere(views);
  const configurations = new Set(views.flatMap((v) => v.segments.map((s) => s.config).filter((c) => c !== 'before'))).size;
  const viewProblems = opts.totalOrder ? checkViews(logs) : [];
  const problems = [...member.problems, ...viewProblems.slice(0, 5)];
  if (survivors.length === 0) problems.push('no survivors to compare');
  if (opts.virtualSynchrony && missing.length > 0) problems.push(`${missing.length} message(s) delivered at one survivor and missing at another of the same configurations`);
  if (orderViolations > 0) problems.push(`${orderViolations} pair(s) of survivors delivered common messages in different orders`);
  if (duplicates > 0) problems.push(`${duplicates} duplicate deliveries`);
  if (fifoViolations > 0) problems.push(`${fifoViolations} deliveries out of their sender's order`);
  return {
    survivors: survivors.map((l) => l.name), membershipAgreed: member.agreed, finalViews: member.views,
    configurations, messages: all.size, deliveries: views.reduce((s, v) => s + v.sequence.length, 0),
    missing, notEverywhere, orderViolations, duplicates, fifoViolations, viewViolations: viewProblems.length, problems,
    verdict: problems.length === 0 ? 'pass' : 'fail',
  };
}

/** A client's views by view id: the members of the event that opened it, the messages delivered
 *  in it, and the view id that came next (END when none did). */
function viewsOf(log: ClientLog): Map<string, { members: string; kind: string; texts: string[]; next: string }> {
  const out = new Map<string, { members: string; kind: string; texts: string[]; next: string }>();
  let cur: { members: string; kind: string; texts: string[]; next: string } | undefined;
  for (const r of log.records) {
    if (r.type === 'membership') {
      if (r.viewId === undefined) { cur = undefined; continue; }
      if (cur) cur.next = r.viewId;
      cur = { members: r.members.map(memberKey).join(' '), kind: r.kind, texts: [], next: END };
      out.set(r.viewId, cur);
    } else if (r.type === 'message' && cur) {
      cur.texts.push(r.text);
    }
  }
  return out;
}

/**
 * Views are named alike at every member (view ids): two clients that got the event opening view V
 * must agree on V's kind and members; if both also got the same next view (or both are still in
 * V at the end and alive), they delivered the same messages in V in the same order (extended
 * virtual synchrony, failure atomicity and agreed order, judged per view over every client).
 */
function checkViews(logs: readonly ClientLog[]): string[] {
  const per = logs.map((l) => ({ log: l, views: viewsOf(l) }));
  const problems: string[] = [];
  for (let i = 0; i < per.length; i++) {
    for (let j = i + 1; j < per.length; j++) {
      const a = per[i], b = per[j];
      for (const [id, va] of a.views) {
        const vb = b.views.get(id);
        if (!vb) continue;
        if (va.members !== vb.members || va.kind !== vb.kind) {
          problems.push(`view ${id}: ${a.log.name} got ${va.kind} [${va.members}], ${b.log.name} got ${vb.kind} [${vb.members}]`);
          continue;
        }
        const sameEnd = va.next === vb.next && (va.next !== END || (a.log.survivor && b.log.survivor));
        if (sameEnd && va.texts.join('\n') !== vb.texts.join('\n')) {
          problems.push(`view ${id} (next ${va.next}): ${a.log.name} delivered ${va.texts.length} messages, ${b.log.name} ${vb.texts.length}, not the same sequence`);
        }
      }
    }
  }
  return problems;
}

/**
 * A view's name for the checker: its view id; a transitional view's id counts on the old ring, so
 * it is named together with the new ring it leads to (the survivors of one old ring going to one
 * new ring are the same set at every one of them; from another old ring, another set).
 */
export function viewName(kind: 'regular' | 'transitional', ringId: { rep: number; seq: number }, viewId: { ringId: { rep: number; seq: number }; seq: number }): string {
  const id = `${viewId.ringId.rep}.${viewId.ringId.seq}/${viewId.seq}`;
  return kind === 'transitional' ? `${id}>${ringId.rep}.${ringId.seq}` : id;
}

/** Reads one JSON line of a stream client's log (unknown record types become 'other'). */
export function parseRecord(line: Record<string, unknown>): DrillRecord {
  switch (line.type) {
    case 'open': return { type: 'open', self: line.self as DrillMember };
    case 'membership': return {
      type: 'membership', kind: line.kind as 'regular' | 'transitional', ringId: String(line.ringId), members: line.members as DrillMember[],
      ...(typeof line.viewId === 'string' ? { viewId: line.viewId } : {}),
    };
    case 'message': return { type: 'message', sender: line.sender as DrillMember, text: String(line.text) };
    default: return { type: 'other' };
  }
}
