// Proves cman in the simulator: exactly once + FIFO per sender while membership is stable (3/5 nodes, up to 20% loss, fragments), heartbeat membership, and no splice across a gap.
import { describe, expect, it } from 'vitest';
import {
  cmanSim, confsAfter, delivers, expectExactlyOnceFifo, stat, untilMembers, untilQuiet,
} from './helpers.ts';
import { check } from '../../sim/checker.ts';
import type { Packer } from '../../core/driver/packing.ts';

const SEEDS = [1, 2, 3];

describe('cman over the simulator: stable membership', () => {
  for (const nodes of [3, 5]) {
    for (const loss of [0, 0.05, 0.2]) {
      it(`${nodes} nodes, loss ${loss}: exactly once, FIFO per sender`, () => {
        for (const seed of SEEDS) {
          const sim = cmanSim({ seed, nodes, network: { loss, duplicate: loss / 4, jitterMs: 0.3 } });
          const ids = sim.nodes.slice();
          expect(untilMembers(sim, ids, nodes), `seed ${seed}: membership converges`).toBe(true);
          const t0 = sim.now;
          sim.workload({ ratePerSec: 200, sizes: [16, 64, 256, 1200, 5000] });
          sim.runFor(1000);
          sim.workload(null);
          expect(untilQuiet(sim, ids), `seed ${seed}: every frame acked`).toBe(true);
          expect(confsAfter(sim.logs(), t0), `seed ${seed}: membership stayed stable`).toBe(0);
          const n = expectExactlyOnceFifo(sim.logs(), t0);
          expect(n).toBeGreaterThan(nodes * 150);
          const total = (k: string) => ids.reduce((a, id) => a + stat(sim, id, k), 0);
          if (loss > 0) expect(total('resent')).toBeGreaterThan(0);
          // Selective acks work: resends stay near what loss forces (a frame or its acks lost).
          expect(total('resent')).toBeLessThanOrEqual(2 * (nodes - 1) * total('framesSent') * loss / (1 - loss));
        }
      });
    }
  }

  it('fragments and reassembles messages of 64 KiB and more under 20% loss', () => {
    const sim = cmanSim({ seed: 11, nodes: 3, network: { loss: 0.2 } });
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    const t0 = sim.now;
    for (let i = 0; i < 6; i++) {
      expect(sim.send(1 + (i % 3), 'fifo', 65536 + i * 40_000)).toBe('ok');
      expect(sim.send(1 + (i % 3), 'fifo', 100)).toBe('ok');
    }
    expect(untilQuiet(sim, [1, 2, 3])).toBe(true);
    expect(expectExactlyOnceFifo(sim.logs(), t0)).toBe(12);
    expect(delivers(sim.logs()[1]).some((d) => d.size >= 265536)).toBe(true);
  });

  it('packs many small messages into one frame', () => {
    const sim = cmanSim({ seed: 12, nodes: 3 });
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    const t0 = sim.now;
    for (let i = 0; i < 200; i++) expect(sim.send(1, 'fifo', 40)).toBe('ok');
    expect(untilQuiet(sim, [1, 2, 3])).toBe(true);
    expect(expectExactlyOnceFifo(sim.logs(), t0)).toBe(200);
    expect(stat(sim, 1, 'framesSent')).toBeLessThan(20);
  });
});

describe('cman over the simulator: membership from heartbeats', () => {
  it('declares a crashed node down after the dead time and stops waiting for it', () => {
    const sim = cmanSim({ seed: 21, nodes: 3 });
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    sim.crash(3);
    const t0 = sim.now;
    expect(sim.send(1, 'fifo', 100)).toBe('ok');
    expect(untilMembers(sim, [1, 2], 2)).toBe(true);
    // dead_after_missed 4 x heartbeat_ms 250, plus half an interval of slack.
    expect(sim.now - t0).toBeGreaterThanOrEqual(1000);
    expect(sim.now - t0).toBeLessThanOrEqual(1130);
    expect(untilQuiet(sim, [1, 2])).toBe(true);
    const conf = sim.logs()[0].events.filter((e) => e.type === 'conf').at(-1);
    expect(conf).toMatchObject({ kind: 'regular', members: [1, 2], left: [3], joined: [] });
  });

  it('a clean leave is seen at once', () => {
    const sim = cmanSim({ seed: 22, nodes: 3 });
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    sim.leave(2);
    expect(untilMembers(sim, [1, 3], 2, 5)).toBe(true);
    expect(sim.send(2, 'fifo', 50)).toBe('ENOTCONN');
  });

  it('a restarted node is a new incarnation: left, then joined; its new stream starts afresh', () => {
    const sim = cmanSim({ seed: 23, nodes: 3 });
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    for (let i = 0; i < 5; i++) sim.send(3, 'fifo', 64);
    sim.runFor(50);
    sim.crash(3);
    sim.runFor(100);
    sim.restart(3);
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    expect(stat(sim, 3, 'incarnation')).toBe(2);
    const t0 = sim.now;
    for (let i = 0; i < 5; i++) sim.send(3, 'fifo', 64);
    expect(untilQuiet(sim, [1, 2, 3])).toBe(true);
    expect(expectExactlyOnceFifo(sim.logs(), t0)).toBe(5);
    const confs = sim.logs()[0].events.filter((e) => e.type === 'conf');
    expect(confs.slice(-2).map((c) => c.type === 'conf' && [c.left, c.joined])).toEqual([[[3], []], [[], [3]]]);
  });

  it('a node that never acks data is declared down after resend_max resends', () => {
    const sim = cmanSim({ seed: 24, nodes: 3, driverOptions: { resend_max: 3 } });
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    // Data to node 3 is lost; heartbeats still flow, so only the resend limit can tell.
    sim.setFilter((from, to, bytes) => !(to === 3 && bytes[1] === 1));
    sim.send(1, 'fifo', 64);
    expect(sim.runUntil(() => stat(sim, 1, 'declaredUnacked') === 1, 2000)).toBe(true);
    expect(stat(sim, 1, 'resent')).toBe(3);
    expect(stat(sim, 1, 'windowFrames')).toBe(0);
  });
});

describe('cman over the simulator: gaps across membership changes', () => {
  it('a receiver cut off mid-message skips what the sender no longer holds and never splices', () => {
    const sim = cmanSim({ seed: 41, nodes: 3 });
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    let passed = 0;
    // Node 3 gets the first 10 fragments of a large message, then loses node 1 entirely.
    sim.setFilter((from, to, bytes) => {
      if (from === 1 && to === 3 && bytes[1] === 1 && passed < 10) { passed++; return true; }
      return !((from === 1 && to === 3 && passed >= 10) || (from === 3 && to === 1 && passed >= 10));
    });
    expect(sim.send(1, 'fifo', 300_000)).toBe('ok');
    sim.runFor(1500); // both declare the other down; node 2 has it all
    expect(stat(sim, 1, 'members')).toBe(2);
    expect(stat(sim, 3, 'members')).toBe(2);
    sim.setFilter(null);
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    const t0 = sim.now;
    for (let i = 0; i < 5; i++) expect(sim.send(1, 'fifo', 100 + i)).toBe('ok');
    expect(untilQuiet(sim, [1, 2, 3])).toBe(true);
    expect(expectExactlyOnceFifo(sim.logs(), t0)).toBe(5);
    expect(stat(sim, 3, 'framesSkipped')).toBeGreaterThan(0);
    expect(stat(sim, 3, 'partialsDropped')).toBe(1);
    expect(stat(sim, 3, 'partialSenders')).toBe(0);
    const big = (node: number) => delivers(sim.logs()[node - 1]).filter((d) => d.size === 300_000).length;
    expect([big(1), big(2), big(3)]).toEqual([1, 1, 0]);
    expect(check(sim.logs(), { properties: ['basic', 'fifo'] })).toEqual([]);
  });

  it('lets its free frame buffers go at a heartbeat once nothing was queued since the last', () => {
    // A window of 2 frames: the queue drains slowly, so frames wait in it and are staged.
    const sim = cmanSim({ seed: 12, nodes: 3, driverOptions: { window_max: 2 } });
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    const free = (): number => (sim.host(1).driver as unknown as { packer: Packer }).packer.stagingFree;
    sim.workload({ ratePerSec: 20_000, sizes: [900], nodes: [1] });
    let most = 0;
    for (let t = 0; t < 300; t++) { sim.runFor(1); most = Math.max(most, free()); }
    sim.workload(null);
    expect(untilQuiet(sim, [1, 2, 3])).toBe(true);
    expect(most).toBeGreaterThan(0); // frames waited, were filled in buffers of the queue's own
    sim.runFor(2000); // heartbeats
    expect(free()).toBe(0);
  });
});
