// Per-driver settings of the fault drills: the driver's config section (fast failure detection
// on loopback, slow enough that a loaded 2-core machine does not split rings for nothing) and
// what the checker may demand of the driver.
import { FAST_PROFILE } from '../../drivers/totem/options.ts';
import { UsageError } from '../command.ts';
import type { DrillSettings } from './faults.ts';

export type DrillDriver = 'totem' | 'cman';

export function driverSections(driver: DrillDriver): Record<string, Record<string, unknown>> {
  return driver === 'totem'
    ? { totem: { ...FAST_PROFILE, token_ms: 500, consensus_ms: 600 } }
    : { cman: { heartbeat_ms: 100, dead_after_missed: 6, ack_timeout_ms: 100, resend_max: 10 } };
}

export function drillSettings(driver: DrillDriver, extra: Partial<DrillSettings> = {}): DrillSettings {
  const totem = driver === 'totem';
  return {
    driver, order: totem ? 'agreed' : 'fifo', totalOrder: totem, virtualSynchrony: totem,
    clientsPerNode: 1, intervalMs: 10, messagesBefore: 20, messagesAfter: 20, waitMs: 60_000,
    // cman's views can stay apart for good after a fault (test/drills/faults-cman.test.ts, KNOWN):
    // say so after 15 s rather than a minute. Totem's always converge: the full bound.
    ...(totem ? {} : { settleMs: 15_000 }),
    ...extra,
  };
}

export function parseDriver(v: string | undefined): DrillDriver {
  if (v === 'totem' || v === 'cman') return v;
  throw new UsageError(`--driver ${v ?? '(missing)'}: expected totem or cman`);
}
