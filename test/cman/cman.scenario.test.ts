// Proves, on `afcluster sim`'s own scenario, cman's declared properties and invariants per fault mix, and exactly once + FIFO at every node checked directly (ring ids are per node).
import { describe, expect, it } from 'vitest';
import { propertiesFor } from '../../sim/checker.ts';
import { runSeed, type FaultMix } from '../../sim/scenario.ts';
import { cmanDriver } from '../../drivers/cman/index.ts';
import { exactlyOnceFifoProblems } from './helpers.ts';

const SEEDS = Array.from({ length: 6 }, (_, i) => i + 1);

describe('cman on the sim scenario', () => {
  for (const faults of ['none', 'loss', 'all'] as FaultMix[]) {
    it(`faults ${faults}: exactly once + FIFO ${faults === 'none' ? 'for the whole run' : 'after the last membership change'}`, () => {
      let checked = 0;
      for (const seed of SEEDS) {
        const r = runSeed({ driver: cmanDriver as never, seed, faults, properties: propertiesFor(cmanDriver.guarantees) });
        expect(r.violations, `seed ${seed}`).toEqual([]);
        const logs = r.sim.logs();
        let last = 0;
        for (const l of logs) for (const e of l.events) if (e.type !== 'send' && e.type !== 'deliver') last = Math.max(last, e.t);
        const from = faults === 'none' ? 0 : last;
        expect(exactlyOnceFifoProblems(logs, from), `seed ${seed}`).toEqual([]);
        if (logs.some((l) => l.events.some((e) => e.type === 'send' && e.t > from))) checked++;
      }
      expect(checked).toBeGreaterThanOrEqual(SEEDS.length / 2);
    });
  }
});
