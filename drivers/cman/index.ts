// The cman driver's registry entry: `cluster.driver = "cman"` selects it, [cman] configures it.
import type { DriverEntry } from '../../core/driver/types.ts';
import { CMAN_GUARANTEES, CmanDriver } from './driver.ts';
import { cmanOptionsSchema, type CmanOptions } from './options.ts';

export const cmanDriver: DriverEntry<CmanOptions> = {
  name: 'cman',
  guarantees: CMAN_GUARANTEES,
  summary: 'multicast, an ack from every member, resend on timeout; heartbeat membership; FIFO per sender only',
  optionsSchema: cmanOptionsSchema,
  create: (common, options, host) => new CmanDriver(common, options, host),
  // A node unheard for dead_after_missed heartbeats (plus half of one) is declared down.
  failureDetectionMs: (o) => (o.deadAfterMissed + 0.5) * o.heartbeatMs,
};

export { CmanDriver, CMAN_GUARANTEES } from './driver.ts';
export type { CmanOptions } from './options.ts';
