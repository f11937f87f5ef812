// Shared set-up for the totem sim tests: the fast profile, a cluster that forms, and the checker.
import { expect } from 'vitest';
import { totemDriver, FAST_PROFILE } from '../../drivers/totem/index.ts';
import { Simulation, type NetworkOptions } from '../../sim/sim.ts';
import { check, propertiesFor, type Violation } from '../../sim/checker.ts';
import type { DriverEntry } from '../../core/driver/types.ts';
import type { ConfEvent } from '../../sim/log.ts';

export const PROFILE: Record<string, number> = { ...FAST_PROFILE };

/** A simulated LAN: 0.05 ms a hop, a gigabit. */
export const LAN = { latencyMs: 0.05, jitterMs: 0.01, bandwidthBytesPerMs: 125_000 };

/** Three nodes with default [totem] options (not the fast profile: what users run) on LAN, formed. */
export function defaultsOnLan(seed: number, driverOptions: Record<string, unknown> = {}): Simulation {
  const sim = new Simulation({ seed, nodes: 3, driver: totemDriver as DriverEntry<unknown>, network: LAN, driverOptions });
  sim.start();
  expect(sim.runUntil(() => formed(sim, [1, 2, 3]), 10_000), `seed ${seed}: formed`).toBe(true);
  return sim;
}

/** A driver counter of node `n`. */
export const stat = (sim: Simulation, n: number, key: string): number => Number(sim.host(n).driver?.stats()[key]);
/** The id of the message sent last. */
export const lastSent = (sim: Simulation): string => sim.events().filter((e) => e.type === 'send').at(-1)!.id;

export function makeSim(opts: { seed: number; nodes: number | number[]; network?: NetworkOptions;
  driverOptions?: Record<string, unknown>; mtu?: number }): Simulation {
  return new Simulation({
    seed: opts.seed, nodes: opts.nodes, driver: totemDriver as DriverEntry<unknown>,
    driverOptions: { ...PROFILE, ...opts.driverOptions }, network: opts.network, mtu: opts.mtu,
  });
}

/** Every live node is operational on one ring with exactly `ids`. */
export function formed(sim: Simulation, ids: number[]): boolean {
  let ring: string | undefined;
  for (const id of ids) {
    const d = sim.host(id).driver;
    if (!d) return false;
    const s = d.stats();
    if (s.state !== 'operational' || s.members !== ids.length) return false;
    if (ring !== undefined && s.ring !== ring) return false;
    ring = s.ring as string;
  }
  return true;
}

export function violations(sim: Simulation, liveFrom?: number): Violation[] {
  const props = propertiesFor(totemDriver.guarantees).filter((p) => liveFrom !== undefined || p !== 'liveness');
  return check(sim.logs(), { properties: props, seed: sim.seed, liveFrom });
}

export function expectClean(sim: Simulation, liveFrom?: number): void {
  expect(sim.failure, `seed ${sim.seed}: a driver threw`).toBeNull();
  const v = violations(sim, liveFrom);
  expect(v.map((x) => `${x.property}: ${x.message}\n  ${x.events.slice(0, 6).join('\n  ')}`), `seed ${sim.seed}`).toEqual([]);
}

export function confs(sim: Simulation, node: number): ConfEvent[] {
  const log = sim.logs().find((l) => l.node === node);
  return (log?.events ?? []).filter((e): e is ConfEvent => e.type === 'conf');
}

export function delivered(sim: Simulation, node: number): string[] {
  const log = sim.logs().find((l) => l.node === node);
  return (log?.events ?? []).flatMap((e) => (e.type === 'deliver' ? [e.id] : []));
}

export function sent(sim: Simulation, node: number): string[] {
  const log = sim.logs().find((l) => l.node === node);
  return (log?.events ?? []).flatMap((e) => (e.type === 'send' ? [e.id] : []));
}
