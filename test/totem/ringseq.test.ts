// Proves that a restarted node's new rings have higher seqs than any ring it took part in before (ring seq persisted via host.state).
import { describe, expect, test } from 'vitest';
import { makeSim, formed, expectClean, confs } from './harness.ts';

describe('totem ring seq persistence', () => {
  test('rings after restarts always have higher seqs', () => {
    const sim = makeSim({ seed: 21, nodes: 3 });
    sim.start();
    expect(sim.runUntil(() => formed(sim, [1, 2, 3]), 5000)).toBe(true);
    let highest = 0;
    for (let round = 0; round < 4; round++) {
      const before = Math.max(...confs(sim, 1).map((c) => c.ringId.seq));
      highest = Math.max(highest, before);
      // Crash every node at once: nobody remembers the rings but their state stores.
      for (const n of [1, 2, 3]) sim.crash(n);
      sim.runFor(50);
      for (const n of [1, 2, 3]) sim.restart(n);
      expect(sim.runUntil(() => formed(sim, [1, 2, 3]), 5000)).toBe(true);
      for (const n of [1, 2, 3]) {
        const c = confs(sim, n);
        expect(c[c.length - 1].ringId.seq, `round ${round} node ${n}`).toBeGreaterThan(highest);
      }
      sim.send(1);
      sim.runFor(100);
    }
    expectClean(sim);
  });

  test('a lone restarted node never reuses a ring id it was in', () => {
    const sim = makeSim({ seed: 22, nodes: [5] });
    sim.start();
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      expect(sim.runUntil(() => formed(sim, [5]), 5000)).toBe(true);
      const c = confs(sim, 5);
      seen.push(c[c.length - 1].ringId.seq);
      sim.crash(5);
      sim.restart(5);
    }
    expect(seen[1]).toBeGreaterThan(seen[0]);
    expect(seen[2]).toBeGreaterThan(seen[1]);
  });
});
