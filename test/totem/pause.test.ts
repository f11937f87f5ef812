// Proves the post-pause fix: a node stopped for longer than token + consensus and then resumed rejoins
// without the healthy nodes failing each other: each healthy node sees exactly the ring without
// it and then the ring with it back, whichever node was stopped (the lowest id included), with
// the fast profile and with the LAN defaults of the user's drill (5 nodes, node 4 for 3.5 s).
import { describe, expect, test } from 'vitest';
import { totemDriver } from '../../drivers/totem/index.ts';
import { Simulation } from '../../sim/sim.ts';
import { check } from '../../sim/checker.ts';
import type { DriverEntry } from '../../core/driver/types.ts';
import type { ConfEvent } from '../../sim/log.ts';
import { makeSim, formed, expectClean, confs, PROFILE } from './harness.ts';

const ALL = [1, 2, 3, 4, 5];
const show = (c: ConfEvent): string => `${c.kind} [${c.members.join(',')}] left [${c.left.join(',')}] joined [${c.joined.join(',')}]`;

/** Pause `victim` for `pauseMs` on a formed, lightly loaded ring; returns when all five are back. */
function pauseAndReturn(sim: Simulation, victim: number, pauseMs: number): number {
  sim.start();
  expect(sim.runUntil(() => formed(sim, ALL), 10_000), `seed ${sim.seed}: formed`).toBe(true);
  sim.workload({ ratePerSec: 10, sizes: [64, 300] });
  sim.runFor(300);
  const t0 = sim.now;
  sim.pause(victim);
  sim.runFor(pauseMs);
  const others = ALL.filter((n) => n !== victim);
  expect(formed(sim, others), `seed ${sim.seed}: the others formed a ring without ${victim} during the pause`).toBe(true);
  sim.resume(victim);
  expect(sim.runUntil(() => formed(sim, ALL), 20_000), `seed ${sim.seed}: all five back`).toBe(true);
  sim.runFor(1000);
  sim.workload(null);
  sim.runFor(500);
  return t0;
}

/** Every healthy node's configurations since t0: the ring without the victim, then with it. */
function expectTwoRings(sim: Simulation, victim: number, t0: number): void {
  const others = ALL.filter((n) => n !== victim);
  const want = [
    `transitional [${others}] left [${victim}] joined []`, `regular [${others}] left [] joined []`,
    `transitional [${others}] left [] joined []`, `regular [${ALL}] left [] joined [${victim}]`,
  ];
  for (const n of others) {
    expect(confs(sim, n).filter((c) => c.t >= t0).map(show), `seed ${sim.seed}: node ${n}, node ${victim} paused`).toEqual(want);
  }
  const availability = check(sim.logs(), { properties: ['availability'], seed: sim.seed, faults: sim.faults() });
  expect(availability.map((v) => v.message)).toEqual([]);
}

describe('totem: a node paused past token + consensus returns without breaking up the healthy ring', () => {
  test('fast profile: every node id, 1.1x and 1.6x of token + consensus', () => {
    const detect = PROFILE.token_ms + PROFILE.consensus_ms;
    for (const victim of ALL) {
      for (const [seed, factor] of [[61, 1.1], [62, 1.6]]) {
        const sim = makeSim({ seed: seed + victim * 10, nodes: 5, network: { jitterMs: 0.2 } });
        const t0 = pauseAndReturn(sim, victim, factor * detect);
        expectTwoRings(sim, victim, t0);
        expectClean(sim);
      }
    }
  });

  test('LAN defaults, the drill: node 4 of 5 stopped for 3.5 s', () => {
    for (const seed of [71, 72]) {
      const sim = new Simulation({ seed, nodes: 5, driver: totemDriver as DriverEntry<unknown>, network: { jitterMs: 0.2 } });
      const t0 = pauseAndReturn(sim, 4, 3500);
      expectTwoRings(sim, 4, t0);
      expectClean(sim);
    }
  });
});
