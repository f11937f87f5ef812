// The lock table: a pure state machine fed with one group's event stream (messages and
// membership events, in delivery order). Every member runs one; with agreed order every member
// sees the same stream and so takes the same decisions, with no round trip (the 2004 thread's
// example). Without agreed order (cman) the same code runs and the members may disagree.
//
// Rules, applied to each event in delivery order:
// - lock: granted at once if nobody waits and the holders are compatible (any number of shared,
//   or one exclusive); otherwise queued, FIFO. trylock: granted at once or fails, never queued.
//   unlock(requestId): releases that hold, or cancels that waiter.
// - Quorum: a table decides only while its node's part of the cluster is quorate. An event that
//   says it is not (a membership or QUORUM event) stops the table at once (ENOLCK): the member
//   loses every lock it held here, and its owner must stop using them (afcluster lock kills the
//   command). It may join again, as a newcomer, once quorum is back.
// - A member that leaves by itself (leave) or whose process died (procdown: its daemon saw it
//   go) loses its holds and waits at the membership event that removes it; waiters behind are
//   then granted in FIFO order. A member cut off with its node (nodedown) or evicted for falling
//   behind (overrun) may still be running: its waits are cancelled, but its holds stay, FENCING,
//   until a FENCED message for it is delivered. The lowest member sends it once the fencing
//   delay has passed (by then the cut-off side has lost quorum and stopped its holders) or a
//   fence command has put the node down (services/lock/lock.ts, docs/LOCKS.md).
// - A newcomer does not know the table. It buffers the stream from its own join event until a
//   snapshot arrives, sent by the lowest member that holds the table and tagged with how many
//   events after the newcomer's join it was taken; it then replays the rest of its buffer. A
//   newcomer that got the table becomes a source for those still waiting. If every source leaves
//   first, what the newcomer missed can no longer matter (the holds of those who left by
//   themselves are gone, and no member left holds anything it could not see), so it rebuilds
//   the table from its own join on; every other newcomer in its place does the same, identically.
import { AssertionError, ClusterError } from '../../core/api/errors.ts';
import { compareMembers, memberKey } from '../../core/wire/member.ts';
import {
  decodeLockMessage, encodeSnapshot, type LockMode, type LockRequest, type LockSnapshot, type SnapshotState,
} from './codec.ts';
import type { ChangeReason, Member, MembershipEvent, SocketEvent } from '../../core/api/types.ts';

export type { LockMode };
export type ReleaseReason = 'unlock' | ChangeReason;

interface DecisionBase {
  readonly name: string;
  readonly owner: Member;
  readonly requestId: number;
  readonly mode: LockMode;
}

/** What the table decided, in delivery order. Identical at every member under agreed order. */
export type LockDecision =
  | (DecisionBase & { readonly type: 'grant' })
  | (DecisionBase & { readonly type: 'release'; readonly reason: ReleaseReason })
  | (DecisionBase & { readonly type: 'cancel'; readonly reason: ReleaseReason })
  | (DecisionBase & { readonly type: 'tryfail' })
  /** The table is at namesMax or entriesMax: the request is refused (EAGAIN for its owner). */
  | (DecisionBase & { readonly type: 'refused' });

export type TableOutput =
  | LockDecision
  /** This member must multicast `data` (a snapshot for a newcomer). */
  | { readonly type: 'send'; readonly data: Uint8Array }
  /** A departed member's holds now wait for FENCED (the lowest member sends it when due). */
  | { readonly type: 'fence'; readonly member: Member; readonly reason: ChangeReason }
  /** This member now holds the table: its own requests can be decided. */
  | { readonly type: 'synced' }
  /** The table stopped: this member left the group, or its buffer overflowed. */
  | { readonly type: 'failed'; readonly code: FailCode; readonly message: string };

type FailCode = 'ENOTCONN' | 'ENOBUFS' | 'ENOLCK';

/** Departures after which the member may still be running: its holds wait for FENCED. */
const FENCED_REASONS: ReadonlySet<ChangeReason> = new Set(['nodedown', 'overrun']);

/** The owner key of a departed member's holds while they wait for FENCED. */
function fenceKey(m: Member): string {
  return `fenced/${memberKey(m)}`;
}

/** false when the event says this node's part of the cluster is not quorate (undefined: says nothing). */
function quorateOf(ev: SocketEvent): boolean | undefined {
  return ev.type === 'membership' || ev.type === 'quorum' ? ev.quorum?.quorate : undefined;
}

export interface LockTableOptions {
  readonly self: Member;
  readonly group: string;
  /** Most lock names with a holder or waiter (default 256). */
  readonly namesMax?: number;
  /** Most holders + waiters over all names (default 1024). Keeps a snapshot under ~48 KiB. */
  readonly entriesMax?: number;
  /** Most events a newcomer buffers while it waits for its snapshot (default 100000). */
  readonly bufferMax?: number;
}

interface Entry {
  readonly owner: string;
  readonly requestId: number;
  readonly mode: LockMode;
}

interface Queue {
  holders: Entry[];
  waiters: Entry[];
}

interface MemberState {
  readonly member: Member;
  /** Present while the member waits for the table: when it joined and who was there before. */
  pending?: { readonly joinedAt: number; readonly older: Set<string> };
}

export type TableStatus = 'unbound' | 'pending' | 'synced' | 'failed';

export { compareMembers, memberKey };

function compatible(holders: readonly Entry[], mode: LockMode): boolean {
  if (holders.length === 0) return true;
  return mode === 'shared' && holders.every((h) => h.mode === 'shared');
}

export class LockTable {
  private readonly self: Member;
  private readonly selfKey: string;
  private readonly group: string;
  private readonly namesMax: number;
  private readonly entriesMax: number;
  private readonly bufferMax: number;
  private state: TableStatus = 'unbound';
  /** Events applied since this member's own join event (which is event 0). */
  private index = 0;
  private members = new Map<string, MemberState>();
  /** Departed members whose holds wait for FENCED, by fenceKey. */
  private fencing = new Map<string, { readonly member: Member; readonly reason: ChangeReason }>();
  private locks = new Map<string, Queue>();
  private entries = 0;
  private readonly snapshotsSent = new Set<string>();
  private buffer: { readonly index: number; readonly ev: SocketEvent }[] = [];
  private joinEvent: MembershipEvent | undefined;
  private myOlder = new Set<string>();
  /** While pending: later joiners still waiting, and their sources (trackCohort). */
  private cohort = new Map<string, Set<string>>();
  /** While pending: the group's members as of the last membership event. */
  private present = new Set<string>();
  private readonly counters = { stray: 0, malformed: 0, refused: 0, snapshotsSent: 0, snapshotsInstalled: 0, rebuilt: 0 };

  constructor(opts: LockTableOptions) {
    this.self = opts.self;
    this.selfKey = memberKey(opts.self);
    this.group = opts.group;
    this.namesMax = opts.namesMax ?? 256;
    this.entriesMax = opts.entriesMax ?? 1024;
    this.bufferMax = opts.bufferMax ?? 100_000;
  }

  get status(): TableStatus {
    return this.state;
  }

  /** Feeds one event of the socket's stream; returns what follows from it, in order. */
  apply(ev: SocketEvent): TableOutput[] {
    if (ev.type === 'error' || ev.group !== this.group) return [];
    const out: TableOutput[] = [];
    if (quorateOf(ev) === false && this.state !== 'failed') {
      this.fail(out, 'ENOLCK', "this node's part of the cluster is not quorate: the lock table stopped and every lock held through it is lost");
      return out;
    }
    // QUORUM events carry nothing else, and sockets of older daemons never get them: they do not
    // count as events (a snapshot's afterEvents must mean the same at every member).
    if (ev.type === 'quorum') return out;
    switch (this.state) {
      case 'unbound':
        if (ev.type === 'membership' && ev.members.some((m) => memberKey(m) === this.selfKey)) this.join(ev, out);
        break;
      case 'pending':
        this.index++;
        this.whilePending(ev, out);
        break;
      case 'synced':
        this.index++;
        this.step(ev, out);
        break;
      case 'failed':
        break;
    }
    if (this.state === 'synced') this.donate(out);
    return out;
  }

  holders(name: string): { owner: string; requestId: number; mode: LockMode }[] {
    return [...(this.locks.get(name)?.holders ?? [])];
  }

  waiters(name: string): { owner: string; requestId: number; mode: LockMode }[] {
    return [...(this.locks.get(name)?.waiters ?? [])];
  }

  /** Lock names with a holder or waiter, sorted. */
  names(): string[] {
    return [...this.locks.keys()].sort();
  }

  stats(): Record<string, number | string> {
    return {
      status: this.state, index: this.index, names: this.locks.size, entries: this.entries, members: this.members.size,
      fencing: this.fencing.size, buffered: this.buffer.length, ...this.counters,
    };
  }

  /** Departed members whose holds wait for FENCED. */
  fencingMembers(): { member: Member; reason: ChangeReason }[] {
    return [...this.fencing.values()];
  }

  /** This member is the lowest one holding the table: it sends snapshots and FENCED messages. */
  isDonor(): boolean {
    const d = this.donor();
    return this.state === 'synced' && d !== undefined && memberKey(d) === this.selfKey;
  }

  // --- joining and the snapshot hand-over ---------------------------------------------------

  private join(ev: MembershipEvent, out: TableOutput[]): void {
    this.joinEvent = ev;
    this.present = new Set(ev.members.map(memberKey));
    this.cohort = new Map();
    this.index = 0;
    const joined = new Set(ev.joined.map((c) => memberKey(c.member)));
    joined.add(this.selfKey);
    this.myOlder = new Set(ev.members.map(memberKey).filter((k) => !joined.has(k)));
    for (const k of joined) if (k !== this.selfKey && this.myOlder.size > 0) this.cohort.set(k, new Set(this.myOlder));
    if (this.myOlder.size === 0) {
      this.members = this.initialMembers(ev, joined);
      this.becomeSynced(out);
    } else {
      this.state = 'pending';
    }
  }

  /** Members as of my join event, with me and my co-joiners waiting on the older ones. */
  private initialMembers(ev: MembershipEvent, joined: Set<string>): Map<string, MemberState> {
    const members = new Map<string, MemberState>();
    for (const m of ev.members) {
      const k = memberKey(m);
      const pending = joined.has(k) && this.myOlder.size > 0 ? { joinedAt: 0, older: new Set(this.myOlder) } : undefined;
      members.set(k, { member: m, pending });
    }
    return members;
  }

  private whilePending(ev: SocketEvent, out: TableOutput[]): void {
    if (this.buffer.length >= this.bufferMax) {
      this.fail(out, 'ENOBUFS', `the lock table buffered ${this.bufferMax} events waiting for its snapshot; no member handed it the table`);
      return;
    }
    this.buffer.push({ index: this.index, ev });
    if (ev.type === 'membership') {
      if (!ev.members.some((m) => memberKey(m) === this.selfKey)) {
        this.fail(out, 'ENOTCONN', 'this socket is no longer a member of the lock group');
        return;
      }
      this.present = new Set(ev.members.map(memberKey));
      this.trackCohort(ev);
      for (const k of [...this.myOlder]) if (!this.present.has(k)) this.myOlder.delete(k);
      if (this.myOlder.size === 0) this.rebuildFromJoin(out);
      return;
    }
    if (ev.type !== 'message') return;
    const msg = decodeLockMessage(ev.data);
    if (msg?.type !== 'snapshot') return;
    const k = memberKey(msg.joiner);
    if (k === this.selfKey) { this.install(msg, out); return; }
    // A co-joiner (or a later joiner) that got the table holds it now: the synced members add it
    // to every waiting member's sources (step()), so I wait for the table from it too, rather than
    // rebuild when the older members are gone (their fencing holds live on in its table).
    const c = this.cohort.get(k);
    if (!c) return;
    this.cohort.delete(k);
    this.myOlder.add(k);
    for (const other of this.cohort.values()) other.add(k);
  }

  /** While pending: the members that joined with me or after me and still wait for the table,
   *  with their own sources, kept by the same rules the synced members keep them (step()). */
  private trackCohort(ev: MembershipEvent): void {
    const joined = new Set(ev.joined.map((c) => memberKey(c.member)));
    for (const [k, older] of this.cohort) {
      if (!this.present.has(k)) { this.cohort.delete(k); continue; }
      for (const o of [...older]) if (!this.present.has(o)) older.delete(o);
      if (older.size === 0) this.cohort.delete(k); // it rebuilt from its join: no source of mine
    }
    const before = [...this.present].filter((k) => !joined.has(k));
    for (const k of joined) if (k !== this.selfKey && before.length > 0) this.cohort.set(k, new Set(before));
  }

  /** Every older member left before handing me the table: start from my join, empty. */
  private rebuildFromJoin(out: TableOutput[]): void {
    const ev = this.joinEvent;
    if (ev === undefined) throw new AssertionError('lock table: pending without a join event');
    const joined = new Set(ev.joined.map((c) => memberKey(c.member)));
    joined.add(this.selfKey);
    this.myOlder = new Set(ev.members.map(memberKey).filter((k) => !joined.has(k)));
    this.members = this.initialMembers(ev, joined);
    this.locks = new Map();
    this.entries = 0;
    this.counters.rebuilt++;
    this.replayFrom(0, out);
  }

  private install(snap: LockSnapshot, out: TableOutput[]): void {
    const members = snap.state.members;
    if (!members.some((m) => memberKey(m.member) === this.selfKey && !m.fencing)) { this.counters.malformed++; return; }
    this.members = new Map();
    this.fencing = new Map();
    const ownerKey = (i: number): string => (members[i].fencing ? fenceKey(members[i].member) : memberKey(members[i].member));
    for (const m of members) {
      if (m.fencing) {
        // The reason is not in the snapshot: both reasons wait the same way.
        this.fencing.set(fenceKey(m.member), { member: m.member, reason: 'nodedown' });
        out.push({ type: 'fence', member: m.member, reason: 'nodedown' });
        continue;
      }
      const pending = m.pending && memberKey(m.member) !== this.selfKey
        ? { joinedAt: snap.afterEvents - m.pending.eventsSinceJoin, older: new Set(m.pending.older.map((i) => memberKey(members[i].member))) }
        : undefined;
      this.members.set(memberKey(m.member), { member: m.member, pending });
    }
    this.locks = new Map();
    this.entries = 0;
    for (const l of snap.state.locks) {
      const entry = (e: (typeof l.holders)[number]): Entry => ({ owner: ownerKey(e.member), requestId: e.requestId, mode: e.mode });
      this.locks.set(l.name, { holders: l.holders.map(entry), waiters: l.waiters.map(entry) });
      this.entries += l.holders.length + l.waiters.length;
    }
    this.counters.snapshotsInstalled++;
    this.replayFrom(snap.afterEvents, out, this.index);
  }

  /** Applies the buffered events after `from` by the synced rules; I am synced once my own
   *  pending mark clears (at once after a snapshot, at the last older member's departure
   *  when rebuilding). */
  private replayFrom(from: number, out: TableOutput[], installedAt?: number): void {
    const buffered = this.buffer;
    this.buffer = [];
    this.index = from;
    const me = this.members.get(this.selfKey) ?? assertNever('replay without me as a member');
    this.state = 'synced';
    let announced = false;
    const announce = (): void => {
      if (announced || me.pending) return;
      announced = true;
      out.push({ type: 'synced' });
    };
    announce();
    for (const b of buffered) {
      if (b.index <= from) continue;
      this.index = b.index;
      this.step(b.ev, out);
      // At my snapshot's own event the synced members add me to every waiting member's sources
      // (step()): so do I, at the same point.
      if (b.index === installedAt) for (const [k, st] of this.members) if (k !== this.selfKey && st.pending) st.pending.older.add(this.selfKey);
      if (this.status === 'failed') return;
      announce();
    }
    if (!announced) assertNever('replay did not leave this member synced');
  }

  private becomeSynced(out: TableOutput[]): void {
    this.state = 'synced';
    out.push({ type: 'synced' });
  }

  /** The lowest member holding the table. */
  private donor(): Member | undefined {
    let donor: Member | undefined;
    for (const st of this.members.values()) {
      if (!st.pending && (donor === undefined || compareMembers(st.member, donor) < 0)) donor = st.member;
    }
    return donor;
  }

  /** The lowest member holding the table sends it to every newcomer still waiting. */
  private donate(out: TableOutput[]): void {
    const donor = this.donor();
    if (donor === undefined || memberKey(donor) !== this.selfKey) return;
    for (const [k, st] of this.members) {
      if (!st.pending || this.snapshotsSent.has(k)) continue;
      this.snapshotsSent.add(k);
      this.counters.snapshotsSent++;
      out.push({ type: 'send', data: encodeSnapshot({ joiner: st.member, afterEvents: this.index - st.pending.joinedAt, state: this.snapshotState() }) });
    }
  }

  private snapshotState(): SnapshotState {
    const sorted = [...this.members.values()].sort((a, b) => compareMembers(a.member, b.member));
    const fenced = [...this.fencing.values()].sort((a, b) => compareMembers(a.member, b.member));
    const at = new Map([...sorted.map((st) => memberKey(st.member)), ...fenced.map((f) => fenceKey(f.member))].map((k, i) => [k, i]));
    const idx = (k: string): number => at.get(k) ?? assertNever(`owner ${k} is not a member`);
    const members = [
      ...sorted.map((st) => ({
        member: st.member,
        pending: st.pending && { eventsSinceJoin: this.index - st.pending.joinedAt, older: [...st.pending.older].map(idx) },
      })),
      ...fenced.map((f) => ({ member: f.member, fencing: true })),
    ];
    const entry = (e: Entry) => ({ member: idx(e.owner), requestId: e.requestId, mode: e.mode });
    const locks = [...this.locks].map(([name, q]) => ({ name, holders: q.holders.map(entry), waiters: q.waiters.map(entry) }));
    return { members, locks };
  }

  private fail(out: TableOutput[], code: FailCode, message: string): void {
    this.state = 'failed';
    this.buffer = [];
    out.push({ type: 'failed', code, message });
  }

  // --- a synced member applies one event ---------------------------------------------------

  private step(ev: SocketEvent, out: TableOutput[]): void {
    if (ev.type === 'membership') {
      this.applyMembership(ev, out);
      return;
    }
    if (ev.type !== 'message') return;
    const sender = this.members.get(memberKey(ev.sender));
    if (!sender) { this.counters.stray++; return; }
    const msg = decodeLockMessage(ev.data);
    if (msg === undefined) { this.counters.malformed++; return; }
    if (msg.type === 'snapshot') {
      const k = memberKey(msg.joiner);
      const joiner = this.members.get(k);
      if (!joiner?.pending) return;
      this.markSynced(k, joiner);
      // It holds the table now: the members still waiting may get it from it (whilePending).
      for (const [other, st] of this.members) if (other !== k && st.pending) st.pending.older.add(k);
      return;
    }
    if (msg.type === 'fenced') {
      this.applyFenced(msg.member, out);
      return;
    }
    this.applyRequest(sender.member, msg, out);
  }

  /** A departed member can no longer act: its holds go, and the waiters behind them are granted. */
  private applyFenced(member: Member, out: TableOutput[]): void {
    const k = fenceKey(member);
    const f = this.fencing.get(k);
    if (!f) { this.counters.stray++; return; }
    this.fencing.delete(k);
    for (const [name, q] of [...this.locks]) {
      q.holders = q.holders.filter((e) => {
        if (e.owner !== k) return true;
        out.push({ type: 'release', name, owner: member, requestId: e.requestId, mode: e.mode, reason: f.reason });
        this.entries--;
        return false;
      });
    }
    for (const [name, q] of [...this.locks]) this.promote(name, q, out);
  }

  private markSynced(k: string, st: MemberState): void {
    st.pending = undefined;
    this.snapshotsSent.delete(k);
  }

  private applyMembership(ev: MembershipEvent, out: TableOutput[]): void {
    const present = new Set(ev.members.map(memberKey));
    if (!present.has(this.selfKey)) {
      this.fail(out, 'ENOTCONN', 'this socket is no longer a member of the lock group');
      return;
    }
    const reasons = new Map(ev.left.map((c) => [memberKey(c.member), c.reason]));
    const gone = [...this.members.values()].filter((st) => !present.has(memberKey(st.member)));
    if (gone.length > 0) this.removeMembers(gone.map((st) => ({ member: st.member, reason: reasons.get(memberKey(st.member)) ?? 'leave' })), out);
    for (const [k, st] of this.members) {
      if (!st.pending) continue;
      for (const o of [...st.pending.older]) if (!present.has(o)) st.pending.older.delete(o);
      if (st.pending.older.size === 0) this.markSynced(k, st);
    }
    const older = [...this.members.keys()];
    for (const m of ev.members) {
      const k = memberKey(m);
      if (this.members.has(k)) continue;
      this.members.set(k, { member: m, pending: older.length > 0 ? { joinedAt: this.index, older: new Set(older) } : undefined });
    }
  }

  /** Drops every wait of the departed members, and every hold of those that cannot be running
   *  any more; the holds of members that may still run (nodedown, overrun) wait for FENCED.
   *  Then grants waiters behind: nothing is granted to a member that leaves in the same event. */
  private removeMembers(gone: readonly { member: Member; reason: ChangeReason }[], out: TableOutput[]): void {
    const reasonOf = new Map(gone.map((g) => [memberKey(g.member), g]));
    for (const k of reasonOf.keys()) {
      this.members.delete(k);
      this.snapshotsSent.delete(k);
    }
    const fenced = new Set<string>();
    for (const [name, q] of [...this.locks]) {
      const report = (type: 'release' | 'cancel', e: Entry): Entry[] => {
        const g = reasonOf.get(e.owner);
        if (g === undefined) return [e];
        if (type === 'release' && FENCED_REASONS.has(g.reason)) {
          fenced.add(e.owner);
          return [{ ...e, owner: fenceKey(g.member) }];
        }
        out.push({ type, name, owner: g.member, requestId: e.requestId, mode: e.mode, reason: g.reason });
        this.entries--;
        return [];
      };
      q.holders = q.holders.flatMap((e) => report('release', e));
      q.waiters = q.waiters.flatMap((e) => report('cancel', e));
    }
    for (const k of fenced) {
      const g = reasonOf.get(k) ?? assertNever('a fenced owner left');
      this.fencing.set(fenceKey(g.member), { member: g.member, reason: g.reason });
      out.push({ type: 'fence', member: g.member, reason: g.reason });
    }
    for (const [name, q] of [...this.locks]) this.promote(name, q, out);
  }

  private applyRequest(owner: Member, req: LockRequest, out: TableOutput[]): void {
    const k = memberKey(owner);
    const base = { name: req.name, owner, requestId: req.requestId, mode: req.mode };
    if (req.op === 'unlock') {
      this.applyUnlock(k, base, out);
      return;
    }
    let q = this.locks.get(req.name);
    if ((q === undefined && this.locks.size >= this.namesMax) || this.entries >= this.entriesMax) {
      this.counters.refused++;
      out.push({ type: 'refused', ...base });
      return;
    }
    if (q === undefined) {
      q = { holders: [], waiters: [] };
      this.locks.set(req.name, q);
    }
    const entry = { owner: k, requestId: req.requestId, mode: req.mode };
    if (q.waiters.length === 0 && compatible(q.holders, req.mode)) {
      q.holders.push(entry);
      this.entries++;
      out.push({ type: 'grant', ...base });
    } else if (req.op === 'lock') {
      q.waiters.push(entry);
      this.entries++;
    } else {
      out.push({ type: 'tryfail', ...base });
      this.dropIfEmpty(req.name, q);
    }
  }

  private applyUnlock(k: string, base: { name: string; owner: Member; requestId: number }, out: TableOutput[]): void {
    const q = this.locks.get(base.name);
    const match = (e: Entry) => e.owner === k && e.requestId === base.requestId;
    const h = q ? q.holders.findIndex(match) : -1;
    const w = q && h < 0 ? q.waiters.findIndex(match) : -1;
    if (!q || (h < 0 && w < 0)) { this.counters.stray++; return; }
    const [e] = h >= 0 ? q.holders.splice(h, 1) : q.waiters.splice(w, 1);
    this.entries--;
    out.push({ type: h >= 0 ? 'release' : 'cancel', ...base, mode: e.mode, reason: 'unlock' });
    this.promote(base.name, q, out);
  }

  /** FIFO: grant waiters from the head while they are compatible with the holders. */
  private promote(name: string, q: Queue, out: TableOutput[]): void {
    while (q.waiters.length > 0 && compatible(q.holders, q.waiters[0].mode)) {
      const e = q.waiters.shift() as Entry;
      q.holders.push(e);
      const owner = this.members.get(e.owner)?.member ?? assertNever(`waiter ${e.owner} is not a member`);
      out.push({ type: 'grant', name, owner, requestId: e.requestId, mode: e.mode });
    }
    this.dropIfEmpty(name, q);
  }

  private dropIfEmpty(name: string, q: Queue): void {
    if (q.holders.length === 0 && q.waiters.length === 0) this.locks.delete(name);
  }
}

function assertNever(message: string): never {
  throw new AssertionError(`lock table: ${message}`);
}

/** The error a LockClient raises for a refused request. */
export function refusedError(name: string): ClusterError {
  return new ClusterError('EAGAIN', `the lock table is full (too many names or waiters); request for "${name}" refused, retry after others unlock`);
}
