// Proves the CI share of `afcluster sim --driver totem`: 200 loss seeds and 500 swarm seeds (faults, then a healed liveness phase) with every declared EVS property checked on each.
import { describe, expect, test } from 'vitest';
import { runSeed } from '../../sim/scenario.ts';
import { propertiesFor } from '../../sim/checker.ts';
import { totemDriver } from '../../drivers/totem/index.ts';
import type { DriverEntry } from '../../core/driver/types.ts';

const LOSS_SEEDS = Number(process.env.TOTEM_LOSS_SEEDS ?? 200);
const SWARM_SEEDS = Number(process.env.TOTEM_SWARM_SEEDS ?? 500);
const CHUNK = 50;

function runRange(from: number, to: number, swarm: boolean): string[] {
  const bad: string[] = [];
  for (let seed = from; seed <= to; seed++) {
    const r = runSeed({
      driver: totemDriver as DriverEntry<unknown>, seed, swarm, faults: swarm ? undefined : 'loss',
      properties: propertiesFor(totemDriver.guarantees),
    });
    for (const v of r.violations.slice(0, 2)) bad.push(`seed ${seed} (${r.nodes} nodes, ${r.faults}): ${v.property}: ${v.message}`);
  }
  return bad;
}

describe('totem sim seeds', () => {
  for (let from = 1; from <= LOSS_SEEDS; from += CHUNK) {
    const to = Math.min(LOSS_SEEDS, from + CHUNK - 1);
    test(`loss seeds ${from}-${to}`, () => {
      expect(runRange(from, to, false)).toEqual([]);
    }, 300_000);
  }
  for (let from = 1; from <= SWARM_SEEDS; from += CHUNK) {
    const to = Math.min(SWARM_SEEDS, from + CHUNK - 1);
    test(`swarm seeds ${from}-${to}`, () => {
      expect(runRange(from, to, true)).toEqual([]);
    }, 600_000);
  }
});
