// Proves that sealed datagrams captured from a running totem ring (joins, tokens, commit tokens, multicasts) and replayed after a ring change (a node leaves and rejoins) from their senders' real addresses, to their receivers and to the third node, are all dropped and counted before any driver sees them (as replays, as too old to judge, as an earlier incarnation, or as addressed to another node), as are datagrams of the current ring replayed just after they were accepted; and that they change no membership (no configuration, the same ring id) and deliver nothing twice, while messages still flow.
import { afterEach, describe, expect, it } from 'vitest';
import { readHeader, TO_ALL } from '../../core/crypto/sealer.ts';
import { waitFor } from '../../core/transport/testing.ts';
import { decodeCaptured, SecCluster, statsOf, type Captured, type SecNode } from './cluster.ts';

let cluster: SecCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

/** The sealer's drop counters of a node (every crypto counter named dropped*). */
function drops(n: SecNode): Record<string, number> {
  return Object.fromEntries(Object.entries(statsOf(n).crypto).filter(([k]) => k.startsWith('dropped')));
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v !== 0));
}

async function multicastEverywhere(c: SecCluster, tag: string): Promise<void> {
  const nodes = c.running();
  for (const n of nodes) n.rt.multicast(Buffer.from(`${tag}-${n.id}`), 'agreed');
  await waitFor(() => nodes.every((n) => nodes.every((m) => n.delivered.includes(`${m.id}:${tag}-${m.id}`))), `${tag} messages everywhere`, 30_000);
}

describe('replayed datagrams', () => {
  it('captured before a ring change, replayed after it: all dropped and counted, no membership change', async () => {
    cluster = await SecCluster.create('replay', 3);
    const c = cluster;
    const captured: Captured[] = [];
    for (const id of [1, 2, 3]) await c.start(id, captured);
    await c.settled([1, 2, 3], 'a ring of 3');
    await multicastEverywhere(c, 'before');
    // Capture until the formation's joins and commit tokens and the ring's tokens are all in.
    const kinds = (): Set<string> => new Set(captured.map((d) => decodeCaptured(c, d)?.type ?? 'undecodable'));
    await waitFor(() => ['join', 'commit', 'token', 'mcast'].every((k) => kinds().has(k)), 'a join, a commit token, a token and a multicast captured');
    for (const n of c.running()) n.tap.sink = undefined;
    const replay = captured.slice();
    const byKind = new Map<string, number>();
    for (const d of replay) {
      const k = decodeCaptured(c, d)?.type ?? 'undecodable';
      byKind.set(k, (byKind.get(k) ?? 0) + 1);
    }
    console.log(`captured ${replay.length} datagrams: ${[...byKind].map(([k, n]) => `${n} ${k}`).join(', ')}`);
    expect(byKind.get('undecodable')).toBeUndefined(); // every capture is a real, sealed totem message

    // The ring changes: node 3 leaves, the others form a ring of 2, node 3 comes back (a new incarnation).
    const incarnation3 = statsOf(c.node(3)).crypto.incarnation;
    await c.stop(3);
    await c.settled([1, 2], 'a ring of 2 after node 3 left');
    await c.start(3);
    expect(statsOf(c.node(3)).crypto.incarnation).toBeGreaterThan(incarnation3);
    const ring = await c.settled([1, 2, 3], 'a ring of 3 again');
    await multicastEverywhere(c, 'rejoined');
    // A second capture: the current ring's traffic, to replay just after it was accepted.
    const recent: Captured[] = [];
    for (const n of c.running()) n.tap.sink = recent;
    await multicastEverywhere(c, 'recent');
    await waitFor(() => ['token', 'mcast'].every((k) => recent.some((d) => decodeCaptured(c, d)?.type === k)), 'a token and a multicast of the current ring');
    for (const n of c.running()) n.tap.sink = undefined;
    console.log(`captured ${recent.length} datagrams of the current ring`);

    const nodes = c.running();
    const confsBefore = nodes.map((n) => n.confs.length);
    const dropsBefore = nodes.map(drops);
    const inBefore = nodes.map((n) => statsOf(n).runtime.datagramsIn);

    // Replay every capture from its sender's socket to its receiver and to the third node, and
    // predict the reason each one is dropped from its stamp alone.
    const expected = new Map<number, Record<string, number>>(nodes.map((n) => [n.id, {}]));
    const bump = (to: number, reason: string) => { const e = expected.get(to)!; e[reason] = (e[reason] ?? 0) + 1; };
    let sent = 0;
    for (const d of [...replay, ...recent]) {
      const stamp = readHeader(d.bytes)!.stamp!;
      for (const to of [d.to, 6 - d.to - d.from]) {
        c.node(d.from).tap.raw(to, d.bytes);
        sent++;
        if (stamp.destination !== TO_ALL && stamp.destination !== to) bump(to, 'droppedWrongDestination');
        else if (d.from === 3 && stamp.incarnation === incarnation3) bump(to, 'droppedStaleIncarnation'); // node 3's previous run
        else bump(to, 'droppedReplay|droppedBehindWindow'); // accepted before, or older than what the node can judge
      }
      if (sent % 200 === 0) await new Promise((r) => setImmediate(r)); // let the receivers keep up
    }
    const got = (n: SecNode) => {
      const dd = delta(drops(n), dropsBefore[nodes.indexOf(n)]);
      const { droppedReplay = 0, droppedBehindWindow = 0, ...rest } = dd;
      return droppedReplay + droppedBehindWindow > 0 ? { ...rest, 'droppedReplay|droppedBehindWindow': droppedReplay + droppedBehindWindow } : rest;
    };
    const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    await waitFor(() => nodes.every((n) => total(got(n)) >= total(expected.get(n.id)!)), 'every replayed datagram counted', 30_000);
    console.log(`replayed ${sent}; dropped: ${nodes.map((n) => `node ${n.id} ${JSON.stringify(got(n))}`).join('; ')}`);
    for (const n of nodes) expect(got(n), `node ${n.id}`).toEqual(expected.get(n.id));
    expect(sent).toBe(2 * (replay.length + recent.length));

    // No membership change, anywhere: no configuration upcall, the same ring; and the ring still works.
    await multicastEverywhere(c, 'after');
    expect(nodes.map((n) => n.confs.length)).toEqual(confsBefore);
    expect(nodes.map((n) => String(statsOf(n).driver.ring))).toEqual(nodes.map(() => ring));
    for (const [i, n] of nodes.entries()) {
      expect(statsOf(n).runtime.datagramsIn).toBeGreaterThan(inBefore[i]); // honest traffic kept flowing
      expect(statsOf(n).runtime.handleDatagramErrors).toBe(0);
      expect(new Set(n.delivered).size, `node ${n.id} delivered nothing twice`).toBe(n.delivered.length);
    }
  });
});
