// Proves the CI share of `afcluster sim --driver totem`: 200 loss seeds, 100 pause seeds on 5 nodes and 500 swarm seeds (faults, then a healed liveness phase) with every declared property (EVS, availability) checked on each.
import { describe, expect, test } from 'vitest';
import { runSeed } from '../../sim/scenario.ts';
import { propertiesFor } from '../../sim/checker.ts';
import { totemDriver } from '../../drivers/totem/index.ts';
import type { DriverEntry } from '../../core/driver/types.ts';

const LOSS_SEEDS = Number(process.env.TOTEM_LOSS_SEEDS ?? 200);
const SWARM_SEEDS = Number(process.env.TOTEM_SWARM_SEEDS ?? 500);
const PAUSE_SEEDS = Number(process.env.TOTEM_PAUSE_SEEDS ?? 100);
const CHUNK = 50;

function runRange(from: number, to: number, mix: 'swarm' | 'loss' | 'pause'): string[] {
  const bad: string[] = [];
  for (let seed = from; seed <= to; seed++) {
    const r = runSeed({
      driver: totemDriver as DriverEntry<unknown>, seed, swarm: mix === 'swarm', faults: mix === 'swarm' ? undefined : mix,
      nodes: mix === 'pause' ? 5 : undefined, properties: propertiesFor(totemDriver.guarantees),
    });
    for (const v of r.violations.slice(0, 2)) bad.push(`seed ${seed} (${r.nodes} nodes, ${r.faults}): ${v.property}: ${v.message}`);
  }
  return bad;
}

describe('totem sim seeds', () => {
  for (let from = 1; from <= LOSS_SEEDS; from += CHUNK) {
    const to = Math.min(LOSS_SEEDS, from + CHUNK - 1);
    test(`loss seeds ${from}-${to}`, () => {
      expect(runRange(from, to, 'loss')).toEqual([]);
    }, 300_000);
  }
  for (let from = 1; from <= PAUSE_SEEDS; from += CHUNK) {
    const to = Math.min(PAUSE_SEEDS, from + CHUNK - 1);
    test(`pause seeds ${from}-${to} (5 nodes)`, () => {
      expect(runRange(from, to, 'pause')).toEqual([]);
    }, 300_000);
  }
  for (let from = 1; from <= SWARM_SEEDS; from += CHUNK) {
    const to = Math.min(SWARM_SEEDS, from + CHUNK - 1);
    test(`swarm seeds ${from}-${to}`, () => {
      expect(runRange(from, to, 'swarm')).toEqual([]);
    }, 600_000);
  }
});
