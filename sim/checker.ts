// The EVS checker: verifies extended virtual synchrony (docs/TOTEM.md, "Extended virtual synchrony", properties 1-7),
// per-sender FIFO, cman's stable-membership no-loss claim and post-heal liveness from the
// per-node logs the simulator writes. Pure: logs in, violations out.
//
// Reading of the definitions (the choices matter, so they are written here):
// - A node's log is cut into segments at CRASH and RESTART: each segment is one process.
// - Every SEND and DELIVER belongs to the configuration current at that node when it happened.
//   A configuration is identified by its kind and ring id; a transitional one additionally by
//   the regular configuration it follows (EVS: nodes coming from different old rings into one new
//   ring each get their own transitional configuration, whatever ring id the driver prints).
// - The base of a configuration is itself if regular, the regular one it follows if
//   transitional. A message is "sent in" regular configuration c when all its deliveries have
//   base c (delivered in c or in the transitional configuration that follows c). A driver may
//   queue a message sent during a membership change and send it in the next ring, so the base
//   must be one the sender was in at or after its SEND call (same process).
// - Without 'configurations' among the checked properties (a driver without virtual synchrony),
//   configuration events are advisory: 'basic' checks payloads, senders and duplicates only.
// - With `views` (a driver whose nodes each decide membership alone and name their configurations
//   with ring ids of their own, like cman), a configuration is identified by its member set and
//   how many times this node installed that set, so that nodes with the same view history share
//   names and the cross-node properties (failure atomicity, sending configuration, liveness) can
//   compare them. Ring seqs are still checked as the driver printed them.
// - Agreed, safe and causal order judge messages by the order their sender asked for (SEND), not
//   by the order label a delivery reports: a FIFO-only driver that accepts 'agreed' and delivers
//   it as 'fifo' is judged on what was asked.
// - stable-no-loss is judged by views, whatever the ring ids (see checkStableNoLoss).
// - availability needs the fault timeline (CheckOptions.faults) and is judged only where the
//   network dropped nothing by itself (sim/availability.ts says why).
import type { Guarantees, Order } from '../core/driver/types.ts';
import { checkAvailability } from './availability.ts';
import {
  formatEvent, type ConfEvent, type DeliverEvent, type FaultEvent, type LogEvent, type NodeLog, type SendEvent,
} from './log.ts';
import { checkQuorum, type SafeQuorumOptions } from './quorum-check.ts';

export type Property = 'basic' | 'fifo' | 'stable-no-loss' | 'configurations' | 'self-delivery'
  | 'failure-atomicity' | 'causal' | 'agreed' | 'safe' | 'liveness' | 'availability'
  /** At no time two components with disjoint memberships both quorate (sim/quorum-check.ts). */
  | 'quorum'
  /** Whole-node runs: the group-level checker's findings (sim/group-checker.ts). */
  | 'groups'
  /** Not a log property: a driver threw (a broken invariant or a bug); reported by runSeed. */
  | 'invariants';

export const ALL_PROPERTIES: readonly Property[] = ['basic', 'configurations', 'self-delivery',
  'failure-atomicity', 'causal', 'agreed', 'safe', 'fifo', 'stable-no-loss', 'liveness', 'availability', 'quorum'];

export interface Violation {
  property: Property;
  message: string;
  nodes: number[];
  /** The events involved, printed canonically (log.ts formatEvent). */
  events: string[];
  seed?: number;
}

export interface CheckOptions {
  properties: readonly Property[];
  seed?: number;
  /** Virtual time at which the network healed and crashed nodes came back (liveness). */
  liveFrom?: number;
  /** At most this many violations per property (default 5). */
  maxPerProperty?: number;
  /** Name configurations by member set (per-node occurrence), not ring id: for drivers whose
   *  ring ids are local names (no virtual synchrony). Default false. */
  views?: boolean;
  /** stable-no-loss: a message sent less than this long before the end of the log may still be
   *  in flight and is not required (default 0: the scenario ends after its liveness deliveries). */
  stableGraceMs?: number;
  /** Virtual time the run ended (default: the last logged event). */
  endT?: number;
  /** The configured node ids and the quorum options the 'quorum' property judges by (default:
   *  the nodes that logged, no options). */
  quorum?: { readonly nodes: readonly number[]; readonly options: SafeQuorumOptions };
  /** The simulator's fault timeline (Simulation.faults()): availability is judged only with it. */
  faults?: readonly FaultEvent[];
}

/** What `--check declared` checks for a driver's declared guarantees. */
export function propertiesFor(g: Guarantees): Property[] {
  const out: Property[] = ['basic'];
  if (g.fifo) out.push('fifo', 'stable-no-loss');
  if (g.agreed) out.push('agreed', 'causal');
  if (g.safe) out.push('safe');
  // Availability rides on virtual synchrony: one agreed membership is what a storm breaks, and a
  // driver whose nodes each decide alone (cman) does not promise how often views change.
  if (g.virtualSynchrony) out.push('configurations', 'self-delivery', 'failure-atomicity', 'liveness', 'availability', 'quorum');
  return ALL_PROPERTIES.filter((p) => out.includes(p));
}

// ---- the model built from the logs --------------------------------------------------------

interface Conf {
  key: string;
  /** Regular key of itself, or of the regular configuration a transitional one follows. */
  base: string;
  ev: ConfEvent;
  seg: Segment;
  /** Position in the segment's item list. */
  pos: number;
  prev: Conf | null;
  next: Conf | null;
}

interface Send { ev: SendEvent; seg: Segment; pos: number; conf: Conf | null }
interface Deliver { ev: DeliverEvent; seg: Segment; pos: number; conf: Conf | null }

interface Segment {
  node: number;
  /** 0, 1, ... per node: the process count. */
  index: number;
  items: (Send | Deliver | Conf)[];
  confs: Conf[];
  delivers: Deliver[];
  sends: Send[];
  /** How the process ended: crash, leave (announced departure) or still running at log end. */
  end: 'crash' | 'leave' | 'running';
  endT: number;
  leftAt: number;
}

interface Msg {
  id: string;
  send: Send | null;
  delivers: Deliver[];
  /** Common base configuration of its deliveries, when they agree. */
  base: string | null;
  vc: Int32Array | null;
  /** Index of this message among its sender's messages in its base configuration (1-based). */
  vcIndex: number;
}

interface Model {
  segments: Segment[];
  msgs: Map<string, Msg>;
  confsByKey: Map<string, Conf[]>;
}

function isConf(x: Send | Deliver | Conf): x is Conf {
  return x.ev.type === 'conf';
}

function ringKey(e: ConfEvent): string {
  return `${e.ringId.rep}.${e.ringId.seq}`;
}

function viewKey(e: ConfEvent, seen: Map<string, number>): string {
  const set = e.members.join(',');
  const n = (seen.get(set) ?? 0) + 1;
  seen.set(set, n);
  return `V{${set}}#${n}`;
}

function buildModel(logs: readonly NodeLog[], views: boolean): Model {
  const segments: Segment[] = [];
  const msgs = new Map<string, Msg>();
  const confsByKey = new Map<string, Conf[]>();
  const msg = (id: string): Msg => {
    let m = msgs.get(id);
    if (!m) msgs.set(id, (m = { id, send: null, delivers: [], base: null, vc: null, vcIndex: 0 }));
    return m;
  };
  for (const log of logs) {
    let seg = newSegment(log.node, 0);
    segments.push(seg);
    let cur: Conf | null = null;
    const seenSets = new Map<string, number>();
    for (const e of log.events) {
      if (e.type === 'crash' || e.type === 'restart') {
        if (e.type === 'crash') { seg.end = 'crash'; seg.endT = e.t; }
        if (seg.items.length > 0 || e.type === 'crash') {
          seg = newSegment(log.node, seg.index + 1);
          segments.push(seg);
        }
        cur = null;
        continue;
      }
      if (e.type === 'leave') {
        seg.end = 'leave'; seg.endT = e.t; seg.leftAt = seg.items.length;
        continue;
      }
      const pos = seg.items.length;
      if (e.type === 'conf') {
        const name = views ? viewKey(e, seenSets) : ringKey(e);
        const key = e.kind === 'regular' ? `R${name}` : `T${name}<${cur ? cur.base : 'none'}`;
        const c: Conf = { key, base: e.kind === 'regular' ? key : (cur ? cur.base : key), ev: e, seg, pos, prev: cur, next: null };
        if (cur) cur.next = c;
        cur = c;
        seg.items.push(c);
        seg.confs.push(c);
      } else if (e.type === 'send') {
        const s: Send = { ev: e, seg, pos, conf: cur };
        seg.items.push(s);
        seg.sends.push(s);
        const m = msg(e.id);
        if (!m.send) m.send = s;
      } else {
        const d: Deliver = { ev: e, seg, pos, conf: cur };
        seg.items.push(d);
        seg.delivers.push(d);
        msg(e.id).delivers.push(d);
      }
    }
    // A trailing empty segment after a crash is the process that never came back.
    if (seg.items.length === 0 && seg.index > 0 && seg.end === 'running') {
      const prev = segments[segments.length - 2];
      if (prev && prev.node === seg.node && prev.end === 'crash') segments.pop();
    }
  }
  for (const seg of segments) {
    for (const c of seg.confs) {
      // A transitional configuration is also told apart by the ring it leads to: a driver may
      // print the old ring id, shared by the parts of a ring that split.
      if (c.ev.kind === 'transitional') c.key += c.next ? `>${c.next.key}` : `>?@${seg.node}/${seg.index}`;
      let list = confsByKey.get(c.key);
      if (!list) confsByKey.set(c.key, (list = []));
      list.push(c);
    }
  }
  for (const m of msgs.values()) m.base = commonBase(m);
  return { segments, msgs, confsByKey };
}

function newSegment(node: number, index: number): Segment {
  return { node, index, items: [], confs: [], delivers: [], sends: [], end: 'running', endT: Infinity, leftAt: Infinity };
}

function commonBase(m: Msg): string | null {
  let base: string | null = null;
  for (const d of m.delivers) {
    if (!d.conf) continue;
    if (base === null) base = d.conf.base;
    else if (base !== d.conf.base) return null;
  }
  return base;
}

// ---- reporting ------------------------------------------------------------------------

class Report {
  readonly out: Violation[] = [];
  private readonly counts = new Map<Property, number>();
  constructor(private readonly seed: number | undefined, private readonly max: number) {}
  add(property: Property, message: string, nodes: number[], events: (LogEvent | Send | Deliver | Conf | null | undefined)[]): void {
    const n = this.counts.get(property) ?? 0;
    this.counts.set(property, n + 1);
    if (n >= this.max) return;
    const evs = events.filter((e): e is LogEvent | Send | Deliver | Conf => !!e)
      .map((e) => formatEvent('ev' in e ? e.ev : e));
    const v: Violation = { property, message, nodes: [...new Set(nodes)].sort((a, b) => a - b), events: evs };
    if (this.seed !== undefined) v.seed = this.seed;
    this.out.push(v);
  }
  full(property: Property): boolean {
    return (this.counts.get(property) ?? 0) >= this.max;
  }
}

// ---- the checks -----------------------------------------------------------------------

export function check(logs: readonly NodeLog[], opts: CheckOptions): Violation[] {
  const model = buildModel(logs, opts.views ?? false);
  const r = new Report(opts.seed, opts.maxPerProperty ?? 5);
  const want = new Set(opts.properties);
  const strictConf = want.has('configurations');
  if (want.has('basic')) checkBasic(model, r, strictConf);
  if (want.has('configurations')) checkConfigurations(model, r);
  if (want.has('self-delivery')) checkSelfDelivery(model, r);
  if (want.has('failure-atomicity')) checkFailureAtomicity(model, r);
  if (want.has('causal')) checkCausal(model, r);
  if (want.has('agreed')) checkAgreed(model, r);
  if (want.has('safe')) checkSafe(model, r);
  if (want.has('fifo')) checkFifo(model, r);
  if (want.has('stable-no-loss')) checkStableNoLoss(model, r, opts);
  if (want.has('liveness')) checkLiveness(model, r, opts.liveFrom ?? 0, opts.views ?? false);
  if (want.has('quorum')) {
    const q = opts.quorum ?? { nodes: logs.map((l) => l.node), options: { waitForAll: false, autoTieBreaker: false, autoTieBreakerNode: 'lowest' } };
    for (const v of checkQuorum(logs, q.nodes, q.options)) r.out.push({ property: 'quorum', message: v.message, nodes: v.nodes, events: [], seed: opts.seed });
  }
  if (want.has('availability') && opts.faults) {
    for (const f of checkAvailability(logs, opts.faults)) r.add('availability', f.message, f.nodes, f.events);
  }
  const rank = (p: Property) => ALL_PROPERTIES.indexOf(p);
  return r.out.sort((a, b) => rank(a.property) - rank(b.property));
}

/** 1. Basic delivery: a matching send, identical payload, the right sender, no duplicates,
 *  and (with configurations) delivery in the sending configuration or its transitional one. */
function checkBasic(model: Model, r: Report, strictConf: boolean): void {
  for (const seg of model.segments) {
    const seen = new Map<string, Deliver>();
    for (const d of seg.delivers) {
      const m = model.msgs.get(d.ev.id);
      const s = m?.send;
      if (!s) r.add('basic', `node ${seg.node} delivered ${d.ev.id}, which nobody sent`, [seg.node], [d]);
      else if (s.ev.payloadHash !== d.ev.payloadHash || s.ev.size !== d.ev.size) {
        r.add('basic', `node ${seg.node} delivered ${d.ev.id} with a payload that differs from the one sent`, [seg.node, s.seg.node], [s, d]);
      } else if (s.ev.node !== d.ev.sender) {
        r.add('basic', `node ${seg.node} delivered ${d.ev.id} as sent by ${d.ev.sender}, but node ${s.ev.node} sent it`, [seg.node, s.ev.node], [s, d]);
      } else if (s.seg === seg && s.pos > d.pos) {
        r.add('basic', `node ${seg.node} delivered its own ${d.ev.id} before sending it`, [seg.node], [d, s]);
      }
      const first = seen.get(d.ev.id);
      if (first) r.add('basic', `node ${seg.node} delivered ${d.ev.id} twice`, [seg.node], [first, d]);
      else seen.set(d.ev.id, d);
    }
  }
  if (strictConf) checkSendingConfiguration(model, r);
}

function checkSendingConfiguration(model: Model, r: Report): void {
  for (const m of model.msgs.values()) {
    const placed = m.delivers.filter((d) => d.conf);
    if (placed.length === 0) continue;
    if (m.base === null) {
      const a = placed[0];
      const b = placed.find((d) => d.conf?.base !== a.conf?.base);
      r.add('basic', `${m.id} delivered in different configurations (${a.conf?.key} at node ${a.seg.node}, `
        + `${b?.conf?.key} at node ${b?.seg.node}): a message belongs to one configuration and its transitional one`,
      [a.seg.node, b?.seg.node ?? a.seg.node], [m.send, a, b, a.conf, b?.conf]);
      continue;
    }
    const s = m.send;
    if (!s) continue;
    const allowed = new Set<string>();
    if (s.conf) allowed.add(s.conf.base);
    for (const c of s.seg.confs) if (c.pos > s.pos) allowed.add(c.base);
    if (!allowed.has(m.base)) {
      const d = placed[0];
      r.add('basic', `${m.id} delivered in ${m.base} at node ${d.seg.node}, a configuration its sender ${s.seg.node} `
        + `was not in when or after sending it (sender in ${s.conf?.key ?? 'no configuration'})`, [s.seg.node, d.seg.node], [s, s.conf, d, d.conf]);
    }
  }
}

/** 2. Configurations. */
function checkConfigurations(model: Model, r: Report): void {
  for (const seg of model.segments) {
    checkConfSequence(seg, r);
    const firstConf = seg.confs[0];
    const early = seg.delivers.find((d) => !d.conf);
    if (early) {
      r.add('configurations', `node ${seg.node} delivered ${early.ev.id} before its first configuration`, [seg.node], [early, firstConf]);
    }
  }
  checkRegularSeqIncreases(model, r);
  for (const [key, list] of model.confsByKey) {
    const a = list[0];
    const b = list.find((c) => !sameList(c.ev.members, a.ev.members));
    if (b) {
      r.add('configurations', `nodes ${a.seg.node} and ${b.seg.node} report different members for ${key}`, [a.seg.node, b.seg.node], [a, b]);
    }
  }
}

function checkConfSequence(seg: Segment, r: Report): void {
  for (const c of seg.confs) {
    const e = c.ev;
    if (!isSortedUnique(e.members) || !isSortedUnique(e.left) || !isSortedUnique(e.joined)) {
      r.add('configurations', `node ${seg.node}: member, left or joined list of ${c.key} is not sorted ascending without repeats`, [seg.node], [c]);
    }
    if (!e.members.includes(seg.node)) {
      r.add('configurations', `node ${seg.node} installed ${c.key} but is not one of its members`, [seg.node], [c]);
    }
    const p = c.prev;
    if (p && (!sameList(e.left, minus(p.ev.members, e.members)) || !sameList(e.joined, minus(e.members, p.ev.members)))) {
      r.add('configurations', `node ${seg.node}: left/joined of ${c.key} do not match the change from ${p.key}`, [seg.node], [p, c]);
    }
    if (e.kind !== 'transitional') continue;
    if (!p || p.ev.kind !== 'regular') {
      r.add('configurations', `node ${seg.node}: transitional ${c.key} does not follow a regular configuration`, [seg.node], [p, c]);
    } else if (!subset(e.members, p.ev.members)) {
      r.add('configurations', `node ${seg.node}: transitional ${c.key} has members outside the regular ${p.key} it follows`, [seg.node], [p, c]);
    }
    const n = c.next;
    if (n && (n.ev.kind !== 'regular' || !subset(e.members, n.ev.members))) {
      r.add('configurations', `node ${seg.node}: transitional ${c.key} is not followed by a regular configuration containing it`, [seg.node], [c, n]);
    }
  }
}

function checkRegularSeqIncreases(model: Model, r: Report): void {
  const last = new Map<number, Conf>();
  for (const seg of model.segments) {
    for (const c of seg.confs) {
      if (c.ev.kind !== 'regular') continue;
      const p = last.get(seg.node);
      if (p && c.ev.ringId.seq <= p.ev.ringId.seq) {
        r.add('configurations', `node ${seg.node}: ring seq does not increase (${p.key} then ${c.key})`, [seg.node], [p, c]);
      }
      last.set(seg.node, c);
    }
  }
}

/** 3. Self-delivery: a sender that neither crashes nor leaves delivers its own message. */
function checkSelfDelivery(model: Model, r: Report): void {
  for (const seg of model.segments) {
    if (seg.end === 'crash') continue;
    const own = new Set(seg.delivers.map((d) => d.ev.id));
    for (const s of seg.sends) {
      if (s.pos >= seg.leftAt) continue;
      if (seg.end === 'leave') continue;
      if (!own.has(s.ev.id)) {
        r.add('self-delivery', `node ${seg.node} sent ${s.ev.id}, did not crash, and never delivered it`, [seg.node], [s, s.conf]);
      }
    }
  }
}

/** 4. Failure atomicity: nodes going from c to the same next configuration delivered the same set in c. */
function checkFailureAtomicity(model: Model, r: Report): void {
  const groups = new Map<string, { conf: Conf; ids: Set<string> }[]>();
  for (const seg of model.segments) {
    for (const c of seg.confs) {
      if (!c.next) continue;
      const ids = new Set<string>();
      for (let i = c.pos + 1; i < c.next.pos; i++) {
        const it = seg.items[i];
        if (it.ev.type === 'deliver') ids.add(it.ev.id);
      }
      const k = `${c.key}->${c.next.key}`;
      let g = groups.get(k);
      if (!g) groups.set(k, (g = []));
      g.push({ conf: c, ids });
    }
  }
  for (const [k, g] of groups) {
    const a = g[0];
    for (const b of g.slice(1)) {
      const onlyA = [...a.ids].filter((id) => !b.ids.has(id));
      const onlyB = [...b.ids].filter((id) => !a.ids.has(id));
      if (onlyA.length === 0 && onlyB.length === 0) continue;
      const na = a.conf.seg.node;
      const nb = b.conf.seg.node;
      const diff = [...onlyA.slice(0, 3).map((id) => `${id} only at ${na}`), ...onlyB.slice(0, 3).map((id) => `${id} only at ${nb}`)];
      const ev = (node: number, id: string | undefined) => id === undefined ? null
        : model.msgs.get(id)?.delivers.find((d) => d.seg.node === node);
      r.add('failure-atomicity', `nodes ${na} and ${nb} both went ${k} but delivered different sets in ${a.conf.key}: ${diff.join(', ')}`,
        [na, nb], [a.conf, a.conf.next, b.conf, ev(na, onlyA[0]), ev(nb, onlyB[0])]);
      break;
    }
  }
}

function isTotal(o: Order): boolean {
  return o === 'agreed' || o === 'safe';
}

/** The order the sender asked for (its SEND), else the one the delivery reports. */
function asked(model: Model, d: Deliver): Order {
  return model.msgs.get(d.ev.id)?.send?.ev.order ?? d.ev.order;
}

/** 5. Causal order within a configuration (agreed and safe messages), with vector clocks. */
function checkCausal(model: Model, r: Report): void {
  const index = new Map<number, number>();
  for (const seg of model.segments) index.set(seg.node, 0);
  for (const m of model.msgs.values()) if (m.send) index.set(m.send.seg.node, 0);
  [...index.keys()].sort((a, b) => a - b).forEach((n, i) => index.set(n, i));
  const width = index.size;
  if (!computeClocks(model, index, width, r)) return;
  for (const seg of model.segments) {
    const byBase = new Map<string, Deliver[]>();
    for (const d of seg.delivers) {
      const m = model.msgs.get(d.ev.id);
      if (!m || !m.vc || !m.base) continue;
      let l = byBase.get(m.base);
      if (!l) byBase.set(m.base, (l = []));
      l.push(d);
    }
    for (const list of byBase.values()) checkCausalList(model, list, index, width, r);
  }
}

/** Vector clock of each message at its send, per base configuration. False if the logs cannot be ordered. */
function computeClocks(model: Model, index: Map<number, number>, width: number, r: Report): boolean {
  const cursors = model.segments.map(() => 0);
  const clocks = model.segments.map(() => new Map<string, Int32Array>());
  const clock = (i: number, base: string) => {
    let v = clocks[i].get(base);
    if (!v) clocks[i].set(base, (v = new Int32Array(width)));
    return v;
  };
  let progress = true;
  while (progress) {
    progress = false;
    model.segments.forEach((seg, i) => {
      for (; cursors[i] < seg.items.length; cursors[i]++, progress = true) {
        const it = seg.items[cursors[i]];
        if (isConf(it)) continue;
        const m = model.msgs.get(it.ev.id);
        if (!m || !m.base || !m.send || !isTotal(m.send.ev.order)) continue;
        if (it.ev.type === 'send') {
          if (m.send !== it) continue;
          const v = clock(i, m.base);
          const self = index.get(seg.node) ?? 0;
          m.vcIndex = ++v[self];
          m.vc = v.slice();
        } else {
          if (!m.vc) return; // wait until its send has been processed
          const v = clock(i, m.base);
          for (let k = 0; k < width; k++) if (m.vc[k] > v[k]) v[k] = m.vc[k];
        }
      }
    });
  }
  const stuck = model.segments.findIndex((seg, i) => cursors[i] < seg.items.length);
  if (stuck >= 0) {
    const seg = model.segments[stuck];
    const it = seg.items[cursors[stuck]];
    r.add('causal', `node ${seg.node} delivered ${'id' in it.ev ? it.ev.id : '?'} before it was sent (the logs admit no causal order)`, [seg.node], [it]);
    return false;
  }
  return true;
}

function checkCausalList(model: Model, list: Deliver[], index: Map<number, number>, width: number, r: Report): void {
  const minLater = new Int32Array(width).fill(0x7fffffff);
  const minLaterAt: (Deliver | null)[] = new Array(width).fill(null);
  for (let i = list.length - 1; i >= 0; i--) {
    const d = list[i];
    const m = model.msgs.get(d.ev.id);
    if (!m?.vc || !m.send) continue;
    for (let k = 0; k < width; k++) {
      if (minLater[k] <= m.vc[k] && minLaterAt[k] && minLaterAt[k]!.ev.id !== m.id) {
        const later = minLaterAt[k]!;
        r.add('causal', `node ${d.seg.node} delivered ${m.id} before ${later.ev.id}, which causally precedes it`,
          [d.seg.node, m.send.seg.node], [model.msgs.get(later.ev.id)?.send, m.send, d, later]);
        return;
      }
    }
    const s = index.get(m.send.seg.node) ?? 0;
    if (m.vcIndex < minLater[s]) {
      minLater[s] = m.vcIndex;
      minLaterAt[s] = d;
    }
  }
}

/** 6. Agreed order: one total order over the merged logs (configurations included); no gaps. */
function checkAgreed(model: Model, r: Report): void {
  const order = totalOrder(model, r);
  if (!order) return;
  checkRegularGaps(model, order, r);
  checkTransitionalGaps(model, order, r);
}

/** Topological order of messages and configurations (Kahn); null after reporting a cycle. */
function totalOrder(model: Model, r: Report): Map<string, number> | null {
  const ids = new Map<string, number>();
  const names: string[] = [];
  const vertex = (name: string) => {
    let v = ids.get(name);
    if (v === undefined) { v = names.length; ids.set(name, v); names.push(name); }
    return v;
  };
  const out: number[][] = [];
  const edgeNode = new Map<string, { node: number; a: Send | Deliver | Conf; b: Send | Deliver | Conf }>();
  for (const seg of model.segments) {
    let prev: { v: number; it: Deliver | Conf } | null = null;
    const seen = new Set<string>();
    for (const it of seg.items) {
      if (it.ev.type === 'send' || (!isConf(it) && !isTotal(asked(model, it as Deliver)))) continue;
      const name = isConf(it) ? `conf ${it.key}` : `msg ${it.ev.id}`;
      if (seen.has(name)) continue;
      seen.add(name);
      const v = vertex(name);
      while (out.length < names.length) out.push([]);
      if (prev) {
        out[prev.v].push(v);
        const k = `${prev.v}>${v}`;
        if (!edgeNode.has(k)) edgeNode.set(k, { node: seg.node, a: prev.it, b: it as Deliver | Conf });
      }
      prev = { v, it: it as Deliver | Conf };
    }
  }
  const n = names.length;
  const indeg = new Int32Array(n);
  for (const l of out) for (const v of l) indeg[v]++;
  const queue: number[] = [];
  for (let v = 0; v < n; v++) if (indeg[v] === 0) queue.push(v);
  const pos = new Map<string, number>();
  for (let qi = 0; qi < queue.length; qi++) {
    const v = queue[qi];
    pos.set(names[v], qi);
    for (const w of out[v]) if (--indeg[w] === 0) queue.push(w);
  }
  if (queue.length === n) return pos;
  reportCycle(indeg, out, names, edgeNode, r);
  return null;
}

function reportCycle(indeg: Int32Array, out: number[][], names: string[],
  edgeNode: Map<string, { node: number; a: Send | Deliver | Conf; b: Send | Deliver | Conf }>, r: Report): void {
  // Walk backwards inside the unresolved part until a vertex repeats: that is a cycle. (Every
  // unresolved vertex has an unresolved predecessor; it need not have an unresolved successor.)
  const inn: number[][] = out.map(() => []);
  out.forEach((l, u) => { for (const w of l) inn[w].push(u); });
  let v = indeg.findIndex((d) => d > 0);
  const seenAt = new Map<number, number>();
  const path: number[] = [];
  while (!seenAt.has(v)) {
    seenAt.set(v, path.length);
    path.push(v);
    v = inn[v].find((u) => indeg[u] > 0) ?? v;
  }
  const cycle = [...path.slice(seenAt.get(v)), v].reverse();
  const nodes: number[] = [];
  const events: (Send | Deliver | Conf)[] = [];
  for (let i = 0; i + 1 < cycle.length; i++) {
    const e = edgeNode.get(`${cycle[i]}>${cycle[i + 1]}`);
    if (e) { nodes.push(e.node); events.push(e.a, e.b); }
  }
  r.add('agreed', `delivery orders disagree: cycle ${cycle.map((x) => names[x]).join(' -> ')}`, nodes, events);
}

/** Messages (agreed or safe) grouped by a key of where they were delivered. */
function groupMessages(model: Model, keyOf: (d: Deliver) => string | undefined): Map<string, Set<Msg>> {
  const out = new Map<string, Set<Msg>>();
  for (const m of model.msgs.values()) {
    for (const d of m.delivers) {
      const k = isTotal(asked(model, d)) ? keyOf(d) : undefined;
      if (k === undefined) continue;
      let set = out.get(k);
      if (!set) out.set(k, (set = new Set()));
      set.add(m);
    }
  }
  return out;
}

/** This segment's agreed/safe deliveries matching `pick`, and the last of them in the total order. */
function deliveredIn(model: Model, seg: Segment, order: Map<string, number>, pick: (d: Deliver) => boolean, last: (d: Deliver) => boolean) {
  const ids = new Set<string>();
  let maxPos = -1;
  let lastD: Deliver | null = null;
  for (const d of seg.delivers) {
    if (!isTotal(asked(model, d)) || !pick(d)) continue;
    ids.add(d.ev.id);
    const p = order.get(`msg ${d.ev.id}`) ?? -1;
    if (last(d) && p > maxPos) { maxPos = p; lastD = d; }
  }
  return { ids, maxPos, last: lastD };
}

/** No gaps in a regular configuration: nothing delivered there by anyone is skipped before a delivery. */
function checkRegularGaps(model: Model, order: Map<string, number>, r: Report): void {
  const inRegular = groupMessages(model, (d) => d.conf?.ev.kind === 'regular' ? d.conf.key : undefined);
  for (const seg of model.segments) {
    for (const c of seg.confs) {
      if (c.ev.kind !== 'regular') continue;
      const own = deliveredIn(model, seg, order, (d) => d.conf === c, () => true);
      if (!own.last) continue;
      for (const m of inRegular.get(c.key) ?? []) {
        if (own.ids.has(m.id) || (order.get(`msg ${m.id}`) ?? -1) >= own.maxPos) continue;
        const other = m.delivers.find((d) => d.conf?.key === c.key);
        r.add('agreed', `gap in regular ${c.key}: node ${seg.node} delivered ${own.last.ev.id} but not ${m.id}, `
          + `which precedes it and node ${other?.seg.node} delivered there`, [seg.node, other?.seg.node ?? seg.node], [other, own.last]);
        break;
      }
    }
  }
}

/** In a transitional configuration, a gap only for messages no member of it delivered. */
function checkTransitionalGaps(model: Model, order: Map<string, number>, r: Report): void {
  const byBase = groupMessages(model, (d) => d.conf?.base);
  for (const seg of model.segments) {
    for (const t of seg.confs) {
      if (t.ev.kind !== 'transitional') continue;
      const own = deliveredIn(model, seg, order, (d) => d.conf?.base === t.base, (d) => d.conf === t);
      if (!own.last) continue;
      const members = new Set(t.ev.members);
      for (const m of byBase.get(t.base) ?? []) {
        if (own.ids.has(m.id) || (order.get(`msg ${m.id}`) ?? -1) >= own.maxPos) continue;
        const byMember = m.delivers.find((d) => members.has(d.seg.node) && isTotal(asked(model, d)) && d.conf?.base === t.base);
        if (!byMember) continue;
        r.add('agreed', `gap in transitional ${t.key}: node ${seg.node} delivered ${own.last.ev.id} but not ${m.id}, which precedes it `
          + `and member ${byMember.seg.node} delivered`, [seg.node, byMember.seg.node], [byMember, own.last, t]);
        break;
      }
    }
  }
}

/**
 * 7. Safe delivery: a safe message delivered in a regular configuration is delivered by every
 * member of it (there or in its transitional configuration) unless that member crashes or leaves.
 * As docs/TOTEM.md states it, for regular configurations only: a member named in a transitional
 * configuration may never install it (it lost the ring during recovery); what the members of a
 * transitional configuration that do install it deliver there is failure atomicity's business.
 */
function checkSafe(model: Model, r: Report): void {
  for (const m of model.msgs.values()) {
    for (const d of m.delivers) {
      if (asked(model, d) !== 'safe' || !d.conf || d.conf.ev.kind !== 'regular') continue;
      for (const member of d.conf.ev.members) {
        if (member === d.seg.node) continue;
        if (deliveredOrExcused(model, m, member, d.conf)) continue;
        r.add('safe', `safe ${m.id} delivered by node ${d.seg.node} in ${d.conf.key}, never by member ${member}, which did not crash`,
          [d.seg.node, member], [d, d.conf]);
        break;
      }
      if (r.full('safe')) return;
    }
  }
}

function deliveredOrExcused(model: Model, m: Msg, member: number, c: Conf): boolean {
  if (m.delivers.some((x) => x.seg.node === member && x.conf?.base === c.base)) return true;
  const installed = (model.confsByKey.get(c.key) ?? []).find((x) => x.seg.node === member);
  if (installed) return installed.seg.end !== 'running';
  // Never installed c: excused only if it crashed or left after c appeared.
  return model.segments.some((s) => s.node === member && s.end !== 'running' && s.endT >= c.ev.t);
}

/** Per-sender FIFO: a node delivers one process's messages in the order that process sent them. */
function checkFifo(model: Model, r: Report): void {
  for (const seg of model.segments) {
    const lastBySender = new Map<Segment, Deliver>();
    for (const d of seg.delivers) {
      const s = model.msgs.get(d.ev.id)?.send;
      if (!s) continue;
      const p = lastBySender.get(s.seg);
      const ps = p && model.msgs.get(p.ev.id)?.send;
      if (p && ps && ps.pos > s.pos) {
        r.add('fifo', `node ${seg.node} delivered ${d.ev.id} after ${p.ev.id}, but node ${s.seg.node} sent it first`,
          [seg.node, s.seg.node], [s, ps, p, d]);
      }
      if (!ps || ps.pos < s.pos) lastBySender.set(s.seg, d);
    }
  }
}

/**
 * No loss while membership is stable (cman's claim; implied by EVS). A message m sent by s at
 * time t must be delivered exactly once by a receiver process r when either
 * - by views: from t to the end of the log, s's view (its configuration at the SEND) contains r,
 *   r's view (its configuration at time t) contains s, neither changes and neither process
 *   crashes or leaves, and m was sent at least `graceMs` before the end of the log; or
 * - by ring (virtual synchrony): r installed s's configuration and both stay in it to the end.
 * Views are compared by member set only, so this holds for drivers whose nodes each decide
 * membership alone and name configurations locally. A receiver that dropped s, or that s
 * dropped, at any moment after t is excused: such a driver promises nothing across a change.
 */
function checkStableNoLoss(model: Model, r: Report, opts: CheckOptions): void {
  const end = Math.max(opts.endT ?? 0, logEnd(model));
  const graceMs = opts.stableGraceMs ?? 0;
  const views = opts.views ?? false;
  for (const m of model.msgs.values()) {
    const s = m.send;
    if (!s || !s.conf || !stays(s.conf)) continue;
    const byViews = end - s.ev.t >= graceMs;
    for (const seg of model.segments) {
      const inst = stablePeer(model, s, seg, byViews, views);
      if (!inst) continue;
      const got = m.delivers.filter((d) => d.seg === seg);
      if (got.length === 1) continue;
      r.add('stable-no-loss', `node ${seg.node} delivered ${m.id} ${got.length} times, though from its send at ${s.ev.t.toFixed(3)} `
        + `to the end of the log node ${seg.node}'s view (${inst.key}) and sender ${s.seg.node}'s (${s.conf.key}) contained each other unchanged`,
      [seg.node, s.seg.node], [s, s.conf, inst, ...got]);
      if (r.full('stable-no-loss')) return;
    }
  }
}

/** The receiver's configuration that obliges it to deliver s's message, or null. */
function stablePeer(model: Model, s: Send, seg: Segment, byViews: boolean, views: boolean): Conf | null {
  const sc = s.conf!;
  if (seg.end !== 'running' || !sc.ev.members.includes(seg.node)) return null;
  // A shared ring (not a view name, which nodes may reach at different times) binds at once.
  const same = views ? undefined : (model.confsByKey.get(sc.key) ?? []).find((c) => c.seg === seg);
  if (same && stays(same)) return same;
  if (!byViews) return null;
  const at = seg === s.seg ? sc : viewAt(seg, s.ev.t);
  return at && stays(at) && at.ev.members.includes(s.seg.node) ? at : null;
}

/** The configuration a process was in at time t (the last installed at or before t). */
function viewAt(seg: Segment, t: number): Conf | null {
  let out: Conf | null = null;
  for (const c of seg.confs) {
    if (c.ev.t > t) break;
    out = c;
  }
  return out;
}

function logEnd(model: Model): number {
  let end = 0;
  for (const seg of model.segments) {
    const last = seg.items[seg.items.length - 1];
    if (last) end = Math.max(end, last.ev.t);
    if (Number.isFinite(seg.endT)) end = Math.max(end, seg.endT);
  }
  return end;
}

/** The node stays in this configuration to the end of the log: no later configuration, crash or leave. */
function stays(c: Conf): boolean {
  return c.next === null && c.seg.end === 'running';
}

/** After liveFrom: live nodes share one regular configuration of exactly themselves and deliver all sent in it. */
function checkLiveness(model: Model, r: Report, liveFrom: number, views: boolean): void {
  const live = new Map<number, Segment>();
  for (const seg of model.segments) if (seg.end === 'running') live.set(seg.node, seg);
  if (live.size === 0) return;
  const lastConf = [...live.values()].map((seg) => ({ seg, c: seg.confs[seg.confs.length - 1] }));
  const none = lastConf.find((x) => !x.c || x.c.ev.kind !== 'regular');
  if (none) {
    r.add('liveness', `node ${none.seg.node} ends without a regular configuration (last: ${none.c?.key ?? 'none'})`, [none.seg.node], [none.c]);
    return;
  }
  const a = lastConf[0].c!;
  const liveIds = [...live.keys()].sort((x, y) => x - y);
  // Views: the same member set is the same configuration, however often each node installed it.
  const name = (c: Conf) => views ? c.ev.members.join(',') : c.key;
  const split = lastConf.find((x) => name(x.c!) !== name(a));
  if (split) {
    r.add('liveness', `live nodes end in different configurations: ${a.key} at ${a.seg.node}, ${split.c!.key} at ${split.seg.node}`,
      [a.seg.node, split.seg.node], [a, split.c]);
    return;
  }
  if (!sameList(a.ev.members, liveIds)) {
    r.add('liveness', `final configuration ${a.key} has members [${a.ev.members.join(',')}], live nodes are [${liveIds.join(',')}]`, liveIds, [a]);
    return;
  }
  checkLiveDeliveries(model, live, liveFrom, r);
}

function checkLiveDeliveries(model: Model, live: Map<number, Segment>, liveFrom: number, r: Report): void {
  for (const seg of live.values()) {
    const final = seg.confs[seg.confs.length - 1];
    for (const s of seg.sends) {
      if (s.ev.t < liveFrom || s.pos >= seg.leftAt) continue;
      const m = model.msgs.get(s.ev.id)!;
      if (m.send !== s) continue;
      const mustAll = s.pos > final.pos;
      const missing = mustAll ? [...live.keys()].find((n) => !m.delivers.some((d) => d.seg === live.get(n)))
        : (m.delivers.some((d) => d.seg === seg) ? undefined : seg.node);
      if (missing !== undefined) {
        r.add('liveness', `${m.id}, sent by node ${seg.node} after the heal${mustAll ? ` in ${final.key}` : ''}, never delivered at node ${missing}`,
          [seg.node, missing], [s, final]);
        if (r.full('liveness')) return;
      }
    }
  }
}

// ---- list helpers ---------------------------------------------------------------------

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function isSortedUnique(a: readonly number[]): boolean {
  for (let i = 1; i < a.length; i++) if (a[i] <= a[i - 1]) return false;
  return true;
}

function minus(a: readonly number[], b: readonly number[]): number[] {
  const s = new Set(b);
  return a.filter((x) => !s.has(x));
}

function subset(a: readonly number[], b: readonly number[]): boolean {
  const s = new Set(b);
  return a.every((x) => s.has(x));
}
