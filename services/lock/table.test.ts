// Proves the lock table's rules: FIFO, shared/exclusive compatibility, trylock, release at
// membership events, the snapshot hand-over to newcomers, limits, and the request codec.
import { describe, expect, it } from 'vitest';
import { decodeLockMessage, encodeFenced, encodeRequest, encodeSnapshot } from './codec.ts';
import { LockTable, memberKey, type TableOutput } from './table.ts';
import type { ChangeReason, Member, SocketEvent } from '../../core/api/types.ts';

const G = 'locks';
const mem = (n: number): Member => ({ nodeId: n, pid: 100 + n, port: 1 });
const [A, B, C, D] = [mem(1), mem(2), mem(3), mem(4)];
const ring = { rep: 1, seq: 1 };

function joinEv(members: Member[], joined: Member[]): SocketEvent {
  return { type: 'membership', group: G, kind: 'regular', ringId: ring, members, joined: joined.map((member) => ({ member, reason: 'join' })), left: [] };
}
function leaveEv(members: Member[], left: Member[], reason: ChangeReason): SocketEvent {
  return { type: 'membership', group: G, kind: 'regular', ringId: ring, members, joined: [], left: left.map((member) => ({ member, reason })) };
}
function msg(sender: Member, data: Uint8Array): SocketEvent {
  return { type: 'message', group: G, sender, order: 'agreed', data };
}
let nextId = 1;
function req(sender: Member, op: 'lock' | 'trylock' | 'unlock', name: string, mode: 'shared' | 'exclusive' = 'exclusive', requestId = nextId++): SocketEvent {
  return msg(sender, encodeRequest({ op, name, mode, requestId }));
}
/** Decisions as short strings: "grant X 1/101/1#7". */
function decisions(outs: TableOutput[]): string[] {
  return outs.flatMap((o) => ('owner' in o ? [`${o.type} ${o.name} ${memberKey(o.owner)}#${o.requestId}${'reason' in o ? ` ${o.reason}` : ''}`] : []));
}
/** A table for `self` already synced in a group of `members` that all joined together. */
function table(self: Member, members: Member[]): LockTable {
  const t = new LockTable({ self, group: G });
  t.apply(joinEv(members, members));
  expect(t.status).toBe('synced');
  return t;
}

describe('LockTable rules', () => {
  it('grants exclusive locks one at a time, waiters in FIFO order', () => {
    const t = table(A, [A, B, C]);
    expect(decisions(t.apply(req(A, 'lock', 'x', 'exclusive', 1)))).toEqual(['grant x 1/101/1#1']);
    expect(decisions(t.apply(req(B, 'lock', 'x', 'exclusive', 2)))).toEqual([]);
    expect(decisions(t.apply(req(C, 'lock', 'x', 'exclusive', 3)))).toEqual([]);
    expect(t.waiters('x').map((w) => w.requestId)).toEqual([2, 3]);
    expect(decisions(t.apply(req(A, 'unlock', 'x', 'exclusive', 1)))).toEqual(['release x 1/101/1#1 unlock', 'grant x 2/102/1#2']);
    expect(decisions(t.apply(req(B, 'unlock', 'x', 'exclusive', 2)))).toEqual(['release x 2/102/1#2 unlock', 'grant x 3/103/1#3']);
  });

  it('shares shared locks, and a shared request does not overtake a waiting exclusive one', () => {
    const t = table(A, [A, B, C, D]);
    expect(decisions(t.apply(req(A, 'lock', 'x', 'shared', 1)))).toEqual(['grant x 1/101/1#1']);
    expect(decisions(t.apply(req(B, 'lock', 'x', 'shared', 2)))).toEqual(['grant x 2/102/1#2']);
    expect(decisions(t.apply(req(C, 'lock', 'x', 'exclusive', 3)))).toEqual([]);
    expect(decisions(t.apply(req(D, 'lock', 'x', 'shared', 4)))).toEqual([]);
    expect(decisions(t.apply(req(A, 'unlock', 'x', 'shared', 1)))).toEqual(['release x 1/101/1#1 unlock']);
    expect(decisions(t.apply(req(B, 'unlock', 'x', 'shared', 2)))).toEqual(['release x 2/102/1#2 unlock', 'grant x 3/103/1#3']);
    expect(decisions(t.apply(req(C, 'unlock', 'x', 'exclusive', 3)))).toEqual(['release x 3/103/1#3 unlock', 'grant x 4/104/1#4']);
  });

  it('grants consecutive shared waiters together once the exclusive holder lets go', () => {
    const t = table(A, [A, B, C, D]);
    t.apply(req(A, 'lock', 'x', 'exclusive', 1));
    t.apply(req(B, 'lock', 'x', 'shared', 2));
    t.apply(req(C, 'lock', 'x', 'shared', 3));
    t.apply(req(D, 'lock', 'x', 'exclusive', 4));
    expect(decisions(t.apply(req(A, 'unlock', 'x', 'exclusive', 1)))).toEqual(['release x 1/101/1#1 unlock', 'grant x 2/102/1#2', 'grant x 3/103/1#3']);
    expect(t.waiters('x').map((w) => w.requestId)).toEqual([4]);
  });

  it('trylock succeeds only when grantable at once, and fails behind a waiter even if compatible', () => {
    const t = table(A, [A, B, C]);
    expect(decisions(t.apply(req(A, 'trylock', 'x', 'shared', 1)))).toEqual(['grant x 1/101/1#1']);
    expect(decisions(t.apply(req(B, 'trylock', 'x', 'exclusive', 2)))).toEqual(['tryfail x 2/102/1#2']);
    expect(decisions(t.apply(req(B, 'lock', 'x', 'exclusive', 3)))).toEqual([]);
    expect(decisions(t.apply(req(C, 'trylock', 'x', 'shared', 4)))).toEqual(['tryfail x 3/103/1#4']);
    expect(t.holders('x').map((h) => h.requestId)).toEqual([1]);
  });

  it('unlock of a waiting request cancels it; unknown unlocks change nothing', () => {
    const t = table(A, [A, B, C]);
    t.apply(req(A, 'lock', 'x', 'exclusive', 1));
    t.apply(req(B, 'lock', 'x', 'exclusive', 2));
    t.apply(req(C, 'lock', 'x', 'exclusive', 3));
    expect(decisions(t.apply(req(B, 'unlock', 'x', 'exclusive', 2)))).toEqual(['cancel x 2/102/1#2 unlock']);
    expect(decisions(t.apply(req(C, 'unlock', 'x', 'exclusive', 99)))).toEqual([]);
    expect(decisions(t.apply(req(A, 'unlock', 'x', 'exclusive', 1)))).toEqual(['release x 1/101/1#1 unlock', 'grant x 3/103/1#3']);
  });

  it('releases holds and cancels waits of a member that leaves, with its reason, then grants the next', () => {
    const t = table(A, [A, B, C, D]);
    t.apply(req(B, 'lock', 'x', 'exclusive', 1));
    t.apply(req(C, 'lock', 'x', 'exclusive', 2));
    t.apply(req(B, 'lock', 'y', 'exclusive', 3));
    t.apply(req(D, 'lock', 'y', 'shared', 4));
    t.apply(req(B, 'lock', 'x', 'shared', 5));
    expect(decisions(t.apply(leaveEv([A, C, D], [B], 'procdown')))).toEqual([
      'release x 2/102/1#1 procdown', 'cancel x 2/102/1#5 procdown', 'release y 2/102/1#3 procdown',
      'grant x 3/103/1#2', 'grant y 4/104/1#4',
    ]);
  });

  it('grants nothing to members leaving in the same event', () => {
    const t = table(A, [A, B, C, D]);
    t.apply(req(B, 'lock', 'x', 'exclusive', 1));
    t.apply(req(C, 'lock', 'x', 'exclusive', 2));
    t.apply(req(D, 'lock', 'x', 'exclusive', 3));
    expect(decisions(t.apply(leaveEv([A, D], [B, C], 'procdown')))).toEqual([
      'release x 2/102/1#1 procdown', 'cancel x 3/103/1#2 procdown', 'grant x 4/104/1#3',
    ]);
  });

  it('keeps the holds of a member cut off with its node (or evicted) until FENCED, cancelling its waits', () => {
    const t = table(A, [A, B, C, D]);
    t.apply(req(B, 'lock', 'x', 'exclusive', 1));
    t.apply(req(C, 'lock', 'x', 'exclusive', 2));
    t.apply(req(B, 'lock', 'y', 'exclusive', 3));
    t.apply(req(D, 'lock', 'y', 'exclusive', 4));
    t.apply(req(B, 'lock', 'z', 'shared', 5));
    const out = t.apply(leaveEv([A, C, D], [B], 'nodedown'));
    expect(decisions(out)).toEqual([]); // nothing released, nothing granted: B may still be running
    expect(out.filter((o) => o.type === 'fence')).toEqual([{ type: 'fence', member: B, reason: 'nodedown' }]);
    expect(t.holders('x').map((h) => h.owner)).toEqual(['fenced/2/102/1']);
    expect(t.fencingMembers()).toEqual([{ member: B, reason: 'nodedown' }]);
    expect(decisions(t.apply(req(D, 'lock', 'z', 'exclusive', 6)))).toEqual([]); // z is still held by B
    expect(decisions(t.apply(msg(A, encodeFenced(B))))).toEqual([
      'release x 2/102/1#1 nodedown', 'release y 2/102/1#3 nodedown', 'release z 2/102/1#5 nodedown',
      'grant x 3/103/1#2', 'grant y 4/104/1#4', 'grant z 4/104/1#6',
    ]);
    expect(t.fencingMembers()).toEqual([]);
    expect(decisions(t.apply(msg(C, encodeFenced(B))))).toEqual([]); // a second FENCED changes nothing
    const e = table(A, [A, B]);
    e.apply(req(B, 'lock', 'x', 'exclusive', 7));
    e.apply(req(A, 'lock', 'x', 'exclusive', 8));
    expect(decisions(e.apply(leaveEv([A], [B], 'overrun')))).toEqual([]);
    expect(decisions(e.apply(msg(A, encodeFenced(B))))).toEqual(['release x 2/102/1#7 overrun', 'grant x 1/101/1#8']);
  });

  it('hands the holds that wait for FENCED to a newcomer in the snapshot', () => {
    const a = table(A, [A, B, C]);
    a.apply(req(B, 'lock', 'x', 'exclusive', 1));
    a.apply(leaveEv([A, C], [B], 'nodedown'));
    const d = new LockTable({ self: D, group: G });
    const join = joinEv([A, C, D], [D]);
    const sent = a.apply(join).flatMap((o) => (o.type === 'send' ? [o.data] : []));
    d.apply(join);
    expect(sent).toHaveLength(1);
    const installed = d.apply(msg(A, sent[0]));
    expect(installed).toContainEqual({ type: 'fence', member: B, reason: 'nodedown' });
    expect(d.status).toBe('synced');
    expect(d.holders('x').map((h) => h.owner)).toEqual(['fenced/2/102/1']);
    const fenced = msg(A, encodeFenced(B));
    a.apply(msg(A, sent[0]));
    expect(decisions(a.apply(fenced))).toEqual(decisions(d.apply(fenced)));
    expect(d.holders('x')).toEqual([]);
  });

  it('stops at once, deciding nothing more, when an event says the part is not quorate', () => {
    const quorum = (quorate: boolean) => ({ quorate, votes: quorate ? 2 : 1, expected: 3, quorum: 2, flags: [] });
    const t = table(A, [A, B, C]);
    t.apply(req(A, 'lock', 'x', 'exclusive', 1));
    t.apply(req(B, 'lock', 'x', 'exclusive', 2));
    const lost = t.apply({ type: 'quorum', group: G, ringId: ring, quorum: quorum(false) });
    expect(lost).toEqual([{ type: 'failed', code: 'ENOLCK', message: expect.stringMatching(/not quorate/) }]);
    expect(t.status).toBe('failed');
    expect(t.apply(req(A, 'unlock', 'x', 'exclusive', 1))).toEqual([]);
    const u = table(A, [A, B, C]);
    u.apply(req(B, 'lock', 'x', 'exclusive', 3));
    const ev = { ...leaveEv([A], [B, C], 'nodedown'), quorum: quorum(false) } as SocketEvent;
    expect(u.apply(ev).map((o) => o.type)).toEqual(['failed']); // no release, no grant in a minority
    const q = table(A, [A, B]);
    expect(q.apply({ type: 'quorum', group: G, ringId: ring, quorum: quorum(true) })).toEqual([]);
    expect(q.stats().index).toBe(0); // QUORUM events do not count as events (older daemons send none)
  });

  it('ignores requests from non-members and malformed messages', () => {
    const t = table(A, [A, B]);
    expect(decisions(t.apply(req(C, 'lock', 'x')))).toEqual([]);
    expect(decisions(t.apply(msg(B, new Uint8Array([1, 9, 0]))))).toEqual([]);
    expect(t.names()).toEqual([]);
    expect(t.stats()).toMatchObject({ stray: 1, malformed: 1 });
  });

  it('refuses requests beyond namesMax and entriesMax, identically', () => {
    const t = new LockTable({ self: A, group: G, namesMax: 1, entriesMax: 2 });
    t.apply(joinEv([A, B], [A, B]));
    expect(decisions(t.apply(req(A, 'lock', 'x', 'exclusive', 1)))).toEqual(['grant x 1/101/1#1']);
    expect(decisions(t.apply(req(B, 'lock', 'y', 'exclusive', 2)))).toEqual(['refused y 2/102/1#2']);
    expect(decisions(t.apply(req(B, 'lock', 'x', 'exclusive', 3)))).toEqual([]);
    expect(decisions(t.apply(req(B, 'lock', 'x', 'exclusive', 4)))).toEqual(['refused x 2/102/1#4']);
  });

  it('stops at the event that removes this member', () => {
    const t = table(A, [A, B]);
    const outs = t.apply(leaveEv([B], [A], 'overrun'));
    expect(outs).toEqual([expect.objectContaining({ type: 'failed', code: 'ENOTCONN' })]);
    expect(t.status).toBe('failed');
  });
});

describe('LockTable hand-over to newcomers', () => {
  it('a newcomer buffers until the lowest member sends a snapshot, then decides like everyone else', () => {
    const a = table(A, [A, B]);
    const b = table(B, [A, B]);
    const c = new LockTable({ self: C, group: G });
    const feedAll = (ev: SocketEvent): string[][] => [a, b, c].map((t) => decisions(t.apply(ev)));
    feedAll(req(A, 'lock', 'x', 'exclusive', 1));
    feedAll(req(B, 'lock', 'x', 'shared', 2));
    const joinC = joinEv([A, B, C], [C]);
    const sends = [a, b, c].map((t) => t.apply(joinC).filter((o) => o.type === 'send'));
    expect(sends.map((s) => s.length)).toEqual([1, 0, 0]); // only A, the lowest, hands over
    expect(c.status).toBe('pending');
    feedAll(req(C, 'lock', 'x', 'shared', 3)); // decided by C only after the snapshot
    const snap = sends[0][0] as { data: Uint8Array };
    const afterSnap = feedAll(msg(A, snap.data));
    expect(c.status).toBe('synced');
    expect(afterSnap).toEqual([[], [], []]);
    expect(c.waiters('x')).toEqual(a.waiters('x'));
    expect(c.holders('x')).toEqual(a.holders('x'));
    expect(feedAll(req(A, 'unlock', 'x', 'exclusive', 1))).toEqual(Array(3).fill(['release x 1/101/1#1 unlock', 'grant x 2/102/1#2', 'grant x 3/103/1#3']));
  });

  it('replays the events after the snapshot point, even when the snapshot comes late', () => {
    const a = table(A, [A]);
    const b = new LockTable({ self: B, group: G });
    const both = (ev: SocketEvent): string[][] => [a, b].map((t) => decisions(t.apply(ev)));
    a.apply(req(A, 'lock', 'x', 'exclusive', 1));
    const sent = a.apply(joinEv([A, B], [B])).find((o) => o.type === 'send') as { data: Uint8Array };
    b.apply(joinEv([A, B], [B]));
    both(req(B, 'lock', 'x', 'exclusive', 2));
    both(req(A, 'unlock', 'x', 'exclusive', 1));
    const outs = b.apply(msg(A, sent.data));
    a.apply(msg(A, sent.data));
    expect(decisions(outs)).toEqual(['release x 1/101/1#1 unlock', 'grant x 2/102/1#2']);
    expect(b.holders('x')).toEqual(a.holders('x'));
  });

  it('a newcomer whose every older member left before handing over rebuilds from its join', () => {
    const a = table(A, [A]);
    a.apply(req(A, 'lock', 'x', 'exclusive', 1));
    const b = new LockTable({ self: B, group: G });
    const c = new LockTable({ self: C, group: G });
    for (const t of [b, c]) t.apply(joinEv([A, B, C], [B, C]));
    const outs = [b, c].map((t) => {
      t.apply(req(B, 'lock', 'x', 'exclusive', 2));
      return decisions(t.apply(leaveEv([B, C], [A], 'nodedown')));
    });
    expect(b.status).toBe('synced');
    expect(c.status).toBe('synced');
    expect(outs[0]).toEqual(['grant x 2/102/1#2']);
    expect(outs[1]).toEqual(outs[0]);
    expect(b.stats()).toMatchObject({ rebuilt: 1 });
  });

  it('if the donor leaves before handing over, the next lowest member holding the table does', () => {
    const a = table(A, [A, B]);
    const b = table(B, [A, B]);
    const joinC = joinEv([A, B, C], [C]);
    expect(a.apply(joinC).some((o) => o.type === 'send')).toBe(true);
    expect(b.apply(joinC).some((o) => o.type === 'send')).toBe(false);
    const sent = b.apply(leaveEv([B, C], [A], 'procdown')).filter((o) => o.type === 'send');
    expect(sent).toHaveLength(1);
  });
});

describe('lock codec', () => {
  it('round-trips requests and snapshots and rejects garbage', () => {
    const r = encodeRequest({ op: 'trylock', name: 'ünïcode', mode: 'shared', requestId: 0xfffffffe });
    expect(decodeLockMessage(r)).toEqual({ type: 'request', op: 'trylock', name: 'ünïcode', mode: 'shared', requestId: 0xfffffffe });
    const snap = { joiner: C, afterEvents: 7, state: {
      members: [{ member: A }, { member: C, pending: { eventsSinceJoin: 7, older: [0] } }, { member: B, fencing: true }],
      locks: [{ name: 'x', holders: [{ member: 0, requestId: 3, mode: 'exclusive' as const }, { member: 2, requestId: 9, mode: 'exclusive' as const }], waiters: [] }],
    } };
    expect(decodeLockMessage(encodeSnapshot(snap))).toEqual({ type: 'snapshot', ...snap });
    expect(decodeLockMessage(encodeFenced(B))).toEqual({ type: 'fenced', member: B });
    expect(decodeLockMessage(encodeFenced(B).subarray(0, 13))).toBeUndefined();
    expect(decodeLockMessage(r.subarray(0, r.length - 1))).toBeUndefined();
    expect(decodeLockMessage(new Uint8Array([2, 1, 0, 0, 0, 0, 1, 1, 65]))).toBeUndefined();
    expect(() => encodeRequest({ op: 'lock', name: '', mode: 'shared', requestId: 1 })).toThrow(/EINVAL/);
    expect(() => encodeRequest({ op: 'lock', name: 'x'.repeat(129), mode: 'shared', requestId: 1 })).toThrow(/EINVAL/);
  });
});
