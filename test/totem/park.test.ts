// Proves the parked token (park_ms): a lone sender's messages, one at a time, go without a
// rotation each; another node that wants the token gets it by a hold cancel, not after the park,
// and a lost cancel is sent again;
// several messages at once, safe messages and a sender between other nodes' bursts never park; a
// visit's max_messages, and a quarter of token_ms, end a run of parks; the nodes before the
// parker do not re-send their tokens meanwhile; lone senders under loss, duplicates and a
// partition stay clean; a parker that crashes is replaced as for any lost token. Default [totem]
// options, 3 nodes on a simulated LAN, unless a test says otherwise.
import { describe, expect, test } from 'vitest';
import { FAST_PROFILE, totemDriver } from '../../drivers/totem/index.ts';
import { Simulation } from '../../sim/sim.ts';
import type { DriverEntry, Order } from '../../core/driver/types.ts';
import { Rng } from '../../sim/rng.ts';
import { defaultsOnLan, expectClean, formed, LAN, lastSent, stat } from './harness.ts';

const HOLD_CANCEL = 6;

/** Three nodes with default options on LAN, formed, then idle for a second: the representative holds the token. */
function cluster(seed: number, driverOptions: Record<string, unknown> = {}): Simulation {
  const sim = defaultsOnLan(seed, driverOptions);
  sim.runFor(1000);
  return sim;
}

const deliveredAt = (sim: Simulation, n: number, id: string): number | undefined =>
  sim.events().find((e) => e.type === 'deliver' && e.node === n && e.id === id)?.t;

/** `count` messages from `node`, each sent once the last one came back to it (and `gapMs` more);
 *  their round trips in ms. */
function oneAtATime(sim: Simulation, node: number, count: number, order: Order = 'agreed', gapMs = 0): number[] {
  const rtts: number[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0 && gapMs > 0) sim.runFor(gapMs);
    const t0 = sim.now;
    expect(sim.send(node, order, 100)).toBe('ok');
    const id = lastSent(sim);
    expect(sim.runUntil(() => deliveredAt(sim, node, id) !== undefined, 1000), `message ${i} came back`).toBe(true);
    rtts.push(deliveredAt(sim, node, id)! - t0);
  }
  return rtts;
}

describe('totem: the parked token', () => {
  test('a lone sender\'s messages, one at a time, go with the token parked at it, not a rotation each; park_ms 0 gives a rotation each', () => {
    for (const seed of [301, 302]) {
      const sim = cluster(seed);
      oneAtATime(sim, 2, 1); // the first one waits for the token (the representative's hold cancel)
      const tokens3 = stat(sim, 3, 'tokens');
      const parks = stat(sim, 2, 'parks');
      // Fewer than max_messages (17): one visit's run of parks. Node 2 is not the representative:
      // any lone sender parks.
      const rtts = oneAtATime(sim, 2, 15);
      expect(stat(sim, 2, 'parks') - parks, `seed ${seed}: parks`).toBeGreaterThanOrEqual(15);
      expect(stat(sim, 3, 'tokens') - tokens3, `seed ${seed}: the token stayed at node 2`).toBe(0);
      // A rotation is three hops of at least 0.05 ms; each message went at once.
      expect(Math.max(...rtts), `seed ${seed}: round trips`).toBeLessThan(LAN.latencyMs);
      sim.runFor(100);
      expectClean(sim);

      const off = cluster(seed, { park_ms: 0 });
      oneAtATime(off, 2, 1);
      const offTokens3 = stat(off, 3, 'tokens');
      const offRtts = oneAtATime(off, 2, 15);
      expect(stat(off, 2, 'parks'), `seed ${seed}: park_ms 0`).toBe(0);
      expect(stat(off, 3, 'tokens') - offTokens3, `seed ${seed}: a rotation each`).toBeGreaterThanOrEqual(14);
      expect(Math.min(...offRtts)).toBeGreaterThan(2 * LAN.latencyMs);
    }
  });

  test('a lost hold cancel is sent again while a run of parks may last, hold_ms 0 too (no idle hold to bound it)', () => {
    for (const seed of [317, 318]) {
      const sim = cluster(seed, { park_ms: 100, hold_ms: 0 });
      oneAtATime(sim, 2, 2);
      const tokens3 = stat(sim, 3, 'tokens');
      expect(sim.runUntil(() => stat(sim, 3, 'tokens') > tokens3, 1000)).toBe(true); // node 3 sees the parks flag
      const parks = stat(sim, 2, 'parks');
      expect(sim.send(2, 'agreed', 100)).toBe('ok');
      expect(sim.runUntil(() => stat(sim, 2, 'parks') > parks, 1000)).toBe(true); // parked for up to 100 ms
      // The first cancel is lost (its datagrams to both other nodes); the ones sent again are counted.
      let firstAt = -1;
      let resent = 0;
      sim.setFilter((from, _to, b) => {
        if (from !== 3 || b[1] !== HOLD_CANCEL) return true;
        if (firstAt < 0) firstAt = sim.now;
        if (sim.now === firstAt) return false;
        resent++;
        return true;
      });
      const t0 = sim.now;
      expect(sim.send(3, 'agreed', 100)).toBe('ok');
      const id = lastSent(sim);
      expect(sim.runUntil(() => deliveredAt(sim, 3, id) !== undefined, 1000)).toBe(true);
      expect(resent, `seed ${seed}: cancels sent again`).toBeGreaterThan(0);
      expect(deliveredAt(sim, 3, id)! - t0, `seed ${seed}: not the park's 100 ms`).toBeLessThan(10);
      sim.setFilter(null);
      sim.runFor(300);
      expectClean(sim);
    }
  });

  test('no node re-sends the token it forwarded while the token is parked further on: the parker\'s new seqs show it went on', () => {
    for (const seed of [310, 311]) {
      const sim = cluster(seed);
      oneAtATime(sim, 2, 1);
      const resends = [1, 2, 3].map((n) => stat(sim, n, 'tokenRetransmits'));
      const tokens3 = stat(sim, 3, 'tokens');
      // Runs of parks of 2 ms and more (50 messages, 0.05 ms apart), where the re-send bound is 1 ms.
      oneAtATime(sim, 2, 300, 'agreed', 0.05);
      expect(stat(sim, 3, 'tokens') - tokens3, `seed ${seed}: rotations`).toBeGreaterThan(3);
      // Node 3 forwards to node 1, which sends nothing: node 2's seqs alone tell node 3 that its token went on.
      expect([1, 2, 3].map((n) => stat(sim, n, 'tokenRetransmits') - resends[n - 1]), `seed ${seed}: re-sends`).toEqual([0, 0, 0]);
      sim.runFor(100);
      expectClean(sim);
    }
  });

  test('another node that wants the parked token sends a hold cancel and gets it at once, not after park_ms', () => {
    for (const seed of [303, 304]) {
      // A park of 100 ms: waiting it out would show.
      const sim = cluster(seed, { park_ms: 100 });
      oneAtATime(sim, 2, 2);
      // The park runs out and the token goes round: node 3 sees a busy ring (not one its
      // representative may hold) whose token says a node parks it.
      const tokens3 = stat(sim, 3, 'tokens');
      expect(sim.runUntil(() => stat(sim, 3, 'tokens') > tokens3, 1000)).toBe(true);
      const parks = stat(sim, 2, 'parks');
      expect(sim.send(2, 'agreed', 100)).toBe('ok');
      expect(sim.runUntil(() => stat(sim, 2, 'parks') > parks, 1000)).toBe(true); // node 2 holds the token parked now
      let cancels = 0;
      sim.setFilter((from, _to, b) => { if (from === 3 && b[1] === HOLD_CANCEL) cancels++; return true; });
      const t0 = sim.now;
      expect(sim.send(3, 'agreed', 100)).toBe('ok');
      const id = lastSent(sim);
      expect(sim.runUntil(() => [1, 2, 3].every((n) => deliveredAt(sim, n, id) !== undefined), 1000)).toBe(true);
      expect(cancels, `seed ${seed}: node 3's hold cancel`).toBeGreaterThan(0);
      for (const n of [1, 2, 3]) expect(deliveredAt(sim, n, id)! - t0, `seed ${seed}: node ${n}`).toBeLessThan(2);
      sim.runFor(300);
      expectClean(sim);
    }
  });

  test('a visit that sends several messages does not park: a stream is left to the rotation, which fills frames meanwhile', () => {
    const sim = cluster(309);
    oneAtATime(sim, 2, 1);
    sim.runFor(50); // the park runs out; the token goes round, and on an idle ring node 1 holds it
    const parks = stat(sim, 2, 'parks');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      expect(sim.send(2, 'agreed', 100)).toBe('ok');
      ids.push(lastSent(sim));
    }
    expect(sim.runUntil(() => ids.every((id) => deliveredAt(sim, 2, id) !== undefined), 1000)).toBe(true);
    sim.runFor(5);
    expect(stat(sim, 2, 'parks')).toBe(parks);
    expectClean(sim);
  });

  test('safe messages never park: each needs the rotations that make it safe', () => {
    const sim = cluster(305);
    oneAtATime(sim, 2, 1);
    const parks = stat(sim, 2, 'parks');
    oneAtATime(sim, 2, 10, 'safe');
    expect(stat(sim, 2, 'parks')).toBe(parks);
    sim.runFor(100);
    expectClean(sim);
  });

  test('a visit\'s max_messages ends a run of parks: the token still goes round at least every 17 frames', () => {
    const sim = cluster(306);
    oneAtATime(sim, 2, 1);
    const tokens3 = stat(sim, 3, 'tokens');
    const rtts = oneAtATime(sim, 2, 200);
    // max_messages is 17 frames a visit, the parked token's releases included; each message here
    // is a frame of its own.
    expect(stat(sim, 3, 'tokens') - tokens3).toBeGreaterThanOrEqual(Math.floor(200 / 17));
    // Most went at once.
    expect(rtts.filter((r) => r < LAN.latencyMs).length).toBeGreaterThan(150);
    sim.runFor(100);
    expectClean(sim);
  });

  test('a run of parks lasts at most a quarter of token_ms: the others never take a parked token for a lost one', () => {
    // A park of 30 ms, and a lone sender whose messages come 25 ms apart: each would park again.
    const sim = cluster(312, { park_ms: 30 });
    const gathers = [1, 2, 3].map((n) => stat(sim, n, 'gathers'));
    const t0 = sim.now;
    oneAtATime(sim, 2, 60, 'agreed', 25); // 1.5 s, past token_ms (1000)
    expect(sim.now - t0).toBeGreaterThan(1000);
    expect([1, 2, 3].map((n) => stat(sim, n, 'gathers') - gathers[n - 1])).toEqual([0, 0, 0]);
    sim.runFor(100);
    expectClean(sim);
  });

  test('another node sending now and then beside a lone sender waits about a rotation, not a run of parks', () => {
    for (const seed of [313, 314]) {
      const sim = cluster(seed);
      const waits: number[] = [];
      for (let i = 0; i < 400; i++) {
        let other: string | undefined;
        const t0 = sim.now;
        if (i % 20 === 19) {
          expect(sim.send(3, 'agreed', 100)).toBe('ok');
          other = lastSent(sim);
        }
        expect(sim.send(2, 'agreed', 100)).toBe('ok');
        const id = lastSent(sim);
        expect(sim.runUntil(() => deliveredAt(sim, 2, id) !== undefined, 1000)).toBe(true);
        if (other) {
          expect(sim.runUntil(() => deliveredAt(sim, 3, other) !== undefined, 1000)).toBe(true);
          waits.push(deliveredAt(sim, 3, other)! - t0);
        }
        sim.runFor(0.3);
      }
      // A rotation is about 0.2 ms here, a park 1 ms, a run of parks up to 17 of them.
      expect(Math.max(...waits), `seed ${seed}: node 3's waits ${waits.map((w) => w.toFixed(2)).join(' ')}`).toBeLessThan(1);
      sim.runFor(100);
      expectClean(sim);
    }
  });

  test('a sender between another node\'s bursts does not park: only a lone sender does', () => {
    for (const seed of [315, 316]) {
      const sim = cluster(seed);
      oneAtATime(sim, 2, 1);
      // Node 3 sends every 1 ms (about five rotations here), node 2 one message at a time;
      // counted once node 3's first sends have gone round.
      let next3 = sim.now;
      let parks = 0;
      for (let i = 0; i < 200; i++) {
        if (i === 20) parks = stat(sim, 2, 'parks');
        if (sim.now >= next3) {
          expect(sim.send(3, 'agreed', 100)).toBe('ok');
          next3 = sim.now + 1;
        }
        oneAtATime(sim, 2, 1, 'agreed');
        sim.runFor(0.05);
      }
      expect(stat(sim, 2, 'parks') - parks, `seed ${seed}: parks between bursts`).toBe(0);
      sim.runFor(100);
      expectClean(sim);
    }
  });

  test('lone senders under faults: loss and duplicates, a partition while parked, safe messages mixed in, with and without the Accelerated Ring; the checker finds nothing', () => {
    // The swarm's random workload seldom has a lone sender; this one has one at a time, mostly.
    const first = 700;
    const seeds = 30;
    console.log(`park faults: seeds ${first} to ${first + seeds - 1}`);
    let parks = 0;
    for (let seed = first; seed < first + seeds; seed++) {
      const rng = new Rng(seed);
      const n = 2 + Math.floor(rng.next() * 4);
      const ids = Array.from({ length: n }, (_, i) => i + 1);
      const parkMs = [1, 3, 8][seed % 3];
      const loss = seed % 4 === 0 ? 0.05 : 0;
      const sim = new Simulation({ seed, nodes: n, driver: totemDriver as DriverEntry<unknown>,
        driverOptions: { ...FAST_PROFILE, park_ms: parkMs, accelerated_window: seed % 2 ? 3 : 0, window_size: 20, max_messages: 7 },
        network: { latencyMs: 0.05, jitterMs: 0.03, loss, duplicate: loss } });
      sim.start();
      expect(sim.runUntil(() => formed(sim, ids), 20_000), `seed ${seed}: formed`).toBe(true);
      sim.runFor(300);
      // Two senders, the first twice as often: each alone for a while, now and then both.
      const senders = [ids[Math.floor(rng.next() * n)], ids[Math.floor(rng.next() * n)]];
      for (let step = 0; step < 400; step++) {
        sim.send(senders[step % 3 === 0 ? 1 : 0], rng.next() < 0.1 ? 'safe' : 'agreed', 50 + Math.floor(rng.next() * 200));
        sim.runFor(rng.next() * 2 * parkMs);
        if (step === 200 && n > 2) sim.partition([ids.slice(0, 1), ids.slice(1)]);
        if (step === 260) sim.partition([ids]);
      }
      sim.runFor(3000);
      expect(sim.runUntil(() => formed(sim, ids), 20_000), `seed ${seed}: formed again`).toBe(true);
      for (const id of ids) parks += stat(sim, id, 'parks');
      expectClean(sim);
    }
    expect(parks).toBeGreaterThan(1000);
  });

  test('a parker that crashes with the token is replaced as for any lost token: the others form a ring and agree on what was delivered', () => {
    for (const seed of [307, 308]) {
      const sim = cluster(seed);
      oneAtATime(sim, 2, 3);
      expect(sim.send(2, 'agreed', 100)).toBe('ok');
      sim.runFor(0.01); // sent with the parked token, and parked again
      sim.crash(2);
      expect(sim.runUntil(() => formed(sim, [1, 3]), 5000), `seed ${seed}: a ring of 1 and 3`).toBe(true);
      expect(sim.send(1, 'agreed', 100)).toBe('ok');
      const id = lastSent(sim);
      expect(sim.runUntil(() => [1, 3].every((n) => deliveredAt(sim, n, id) !== undefined), 1000)).toBe(true);
      sim.runFor(200);
      expectClean(sim);
    }
  });
});
