// Proves totem's frames go back as their holders let go, with nothing delivered wrong: in the simulator every received datagram is memory of its own that is overwritten once released (core/wire/lease.ts), and under loss, large fragmented messages and a partition and merge, every node still delivers every message byte for byte (the checker compares payload hashes).
import { afterEach, describe, expect, test } from 'vitest';
import { leaseCounters, setReleaser } from '../../core/wire/lease.ts';
import { expectClean, formed, makeSim } from './harness.ts';

afterEach(() => { setReleaser(undefined); });

describe('totem with buffer release', () => {
  test.each([1400, 9000])('MTU %i: loss, fragments, a partition and a merge; every payload intact and the frames released', (mtu) => {
    for (const seed of [311, 312, 313]) {
      const sim = makeSim({ seed, nodes: 3, mtu, network: { latencyMs: 0.05, jitterMs: 0.05, loss: 0.05 } });
      sim.start();
      expect(sim.runUntil(() => formed(sim, [1, 2, 3]), 20_000), `seed ${seed}: formed`).toBe(true);
      sim.workload({ ratePerSec: 2000, sizes: [100, 1300, 20_000] });
      sim.runFor(300);
      sim.partition([[1, 2], [3]]);
      sim.runFor(600);
      sim.heal();
      sim.runFor(600);
      sim.workload(null);
      sim.setNetwork({ loss: 0 });
      const liveFrom = sim.now;
      expect(sim.runUntil(() => formed(sim, [1, 2, 3]), 20_000), `seed ${seed}: merged`).toBe(true);
      sim.runFor(500);
      expectClean(sim, liveFrom);
      expect(leaseCounters.released, `seed ${seed}: frames released`).toBeGreaterThan(100);
      expect(leaseCounters.unbalanced, `seed ${seed}`).toBe(0);
    }
  });
});
