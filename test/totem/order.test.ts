// Proves agreed and safe total order, self-delivery, no duplicates and no loss on 3, 5 and 12-node rings under loss up to 30%, duplication and reordering.
import { describe, expect, test } from 'vitest';
import { makeSim, formed, expectClean, delivered, sent, confs } from './harness.ts';

const CASES: { nodes: number; loss: number; seeds: number[] }[] = [
  { nodes: 3, loss: 0, seeds: [1, 2] },
  { nodes: 3, loss: 0.1, seeds: [3, 4] },
  { nodes: 3, loss: 0.3, seeds: [5, 6] },
  { nodes: 5, loss: 0.2, seeds: [7, 8] },
  { nodes: 5, loss: 0.3, seeds: [9] },
  { nodes: 12, loss: 0.1, seeds: [10] },
  { nodes: 12, loss: 0.3, seeds: [11] },
];

describe('totem ordering under loss, duplication and reordering', () => {
  for (const c of CASES) {
    for (const seed of c.seeds) {
      test(`${c.nodes} nodes, loss ${c.loss}, seed ${seed}`, () => {
        const ids = Array.from({ length: c.nodes }, (_, i) => i + 1);
        const sim = makeSim({ seed, nodes: c.nodes, network: { loss: c.loss, duplicate: 0.1, jitterMs: 0.5 } });
        sim.start();
        expect(sim.runUntil(() => formed(sim, ids), 30_000), `seed ${seed}: ring formed`).toBe(true);
        sim.workload({ ratePerSec: c.nodes > 5 ? 60 : 150, sizes: [16, 200, 1300, 4000] });
        sim.runFor(1500);
        sim.workload(null);
        sim.setNetwork({ loss: 0, duplicate: 0 });
        const healed = sim.now;
        expect(sim.runUntil(() => formed(sim, ids), 10_000), `seed ${seed}: one ring after healing`).toBe(true);
        sim.runFor(500);
        expectClean(sim, healed);
        const all = ids.flatMap((n) => sent(sim, n));
        expect(all.length).toBeGreaterThan(50);
        // Without a membership change, everything sent reached everyone, in one order.
        if (ids.every((n) => confs(sim, n).length === 1)) {
          const order = delivered(sim, 1);
          expect(new Set(order).size).toBe(all.length);
          for (const n of ids) expect(delivered(sim, n)).toEqual(order);
        }
        for (const n of ids) {
          const mine = new Set(delivered(sim, n));
          for (const id of sent(sim, n)) expect(mine.has(id), `seed ${seed}: node ${n} delivered its own ${id}`).toBe(true);
        }
      });
    }
  }
});
