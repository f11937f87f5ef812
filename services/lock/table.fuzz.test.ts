// Proves, over seeded random histories of an ideal agreed-order group (joins of one or two at
// a time, leaves and crashes that may lose a member's undelivered messages, requests of every
// kind, snapshots delivered late or never), that every member holding the table has the same
// table after every event and took the same decisions, and that every newcomer gets the table.
import { describe, expect, it } from 'vitest';
import { randomSource } from '../../sim/rng.ts';
import { encodeRequest } from './codec.ts';
import { LockTable, memberKey, type TableOutput } from './table.ts';
import type { ChangeReason, Member, SocketEvent } from '../../core/api/types.ts';

const G = 'locks';
const ring = { rep: 1, seq: 1 };

interface Live { readonly member: Member; readonly table: LockTable; nextId: number }

function fuzz(seed: number, steps: number): { joins: number; snapshots: number; rebuilt: number } {
  const rng = randomSource(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
  let live: Live[] = [];
  let pool: { sender: Member; data: Uint8Array }[] = [];
  let pid = 1;
  let joins = 0;
  const stats = { snapshots: 0, rebuilt: 0 };
  const sorted = (): Member[] => live.map((l) => l.member).sort((a, b) => a.pid - b.pid);

  const deliver = (ev: SocketEvent, to: Live[]): void => {
    const outs = new Map<Live, TableOutput[]>();
    const wasSynced = new Set(to.filter((l) => l.table.status === 'synced'));
    for (const l of to) outs.set(l, l.table.apply(ev));
    for (const [l, o] of outs) for (const x of o) if (x.type === 'send') pool.push({ sender: l.member, data: x.data });
    const decided = [...wasSynced].map((l) => JSON.stringify((outs.get(l) ?? []).filter((x) => 'owner' in x)));
    expect(new Set(decided).size, `step decisions differ (seed ${seed})`).toBeLessThanOrEqual(1);
    const synced = live.filter((l) => l.table.status === 'synced');
    const states = synced.map((l) => JSON.stringify(l.table.names().map((n) => [n, l.table.holders(n), l.table.waiters(n)])));
    expect(new Set(states).size, `tables differ (seed ${seed})`).toBeLessThanOrEqual(1);
  };

  const join = (): void => {
    const fresh: Live[] = Array.from({ length: rng() < 0.3 ? 2 : 1 }, () => {
      const m = { nodeId: 1 + Math.floor(rng() * 3), pid: pid++, port: 1 };
      return { member: m, table: new LockTable({ self: m, group: G }), nextId: 1 };
    });
    joins += fresh.length;
    live = [...live, ...fresh];
    deliver({ type: 'membership', group: G, kind: 'regular', ringId: ring, members: sorted(), joined: fresh.map((l) => ({ member: l.member, reason: 'join' })), left: [] }, live);
  };

  const leave = (): void => {
    const gone = pick(live);
    const reason: ChangeReason = pick(['leave', 'procdown', 'nodedown', 'overrun']);
    if (reason !== 'leave') pool = pool.filter((p) => memberKey(p.sender) !== memberKey(gone.member)); // lost in the crash
    else while (pool.some((p) => memberKey(p.sender) === memberKey(gone.member))) deliverNext();
    stats.snapshots += Number(gone.table.stats().snapshotsInstalled);
    stats.rebuilt += Number(gone.table.stats().rebuilt);
    live = live.filter((l) => l !== gone);
    deliver({ type: 'membership', group: G, kind: rng() < 0.5 ? 'transitional' : 'regular', ringId: ring, members: sorted(), joined: [], left: [{ member: gone.member, reason }] }, live);
  };

  const request = (): void => {
    const l = pick(live);
    const op = pick(['lock', 'lock', 'trylock', 'unlock'] as const);
    const requestId = op === 'unlock' ? 1 + Math.floor(rng() * l.nextId) : l.nextId++;
    pool.push({ sender: l.member, data: encodeRequest({ op, name: pick(['a', 'b', 'c']), mode: rng() < 0.3 ? 'shared' : 'exclusive', requestId }) });
  };

  function deliverNext(): void {
    const p = pool.shift();
    if (p) deliver({ type: 'message', group: G, sender: p.sender, order: 'agreed', data: p.data }, live);
  }

  for (let i = 0; i < steps; i++) {
    const r = rng();
    if (live.length < 2 || (r < 0.08 && live.length < 8)) join();
    else if (r < 0.14) leave();
    else if (r < 0.55) request();
    else deliverNext();
  }
  while (pool.length > 0) deliverNext();
  expect(live.map((l) => l.table.status), `every member holds the table at the end (seed ${seed})`).toEqual(live.map(() => 'synced'));
  for (const l of live) {
    stats.snapshots += Number(l.table.stats().snapshotsInstalled);
    stats.rebuilt += Number(l.table.stats().rebuilt);
  }
  return { joins, ...stats };
}

describe('LockTable over random agreed-order histories', () => {
  it('keeps every synced member identical and hands the table to every newcomer', () => {
    const base = Number(process.env.LOCK_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`lock table fuzz seeds ${base}..${base + 9} (replay: LOCK_SEED=${base})`);
    const total = { joins: 0, snapshots: 0, rebuilt: 0 };
    for (let s = 0; s < 10; s++) {
      const r = fuzz(base + s, 1000);
      total.joins += r.joins;
      total.snapshots += r.snapshots;
      total.rebuilt += r.rebuilt;
    }
    console.log(`lock table fuzz: ${JSON.stringify(total)}`);
    expect(total.snapshots).toBeGreaterThan(0);
  });
});
