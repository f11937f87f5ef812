// The totem driver's registry entry: Totem single-ring ordering and membership with extended
// virtual synchrony (docs/TOTEM.md). Options: the [totem] section (options.ts).
import type { DriverEntry } from '../../core/driver/types.ts';
import { TotemDriver, TOTEM_GUARANTEES } from './driver.ts';
import { totemOptionsSchema, type TotemOptions } from './options.ts';

export const totemDriver: DriverEntry<TotemOptions> = {
  name: 'totem',
  guarantees: TOTEM_GUARANTEES,
  summary: 'Totem single ring: agreed and safe total order, extended virtual synchrony',
  optionsSchema: totemOptionsSchema,
  create: (common, options, host) => new TotemDriver(common, options, host),
  // No token for token_ms starts GATHER; a silent node is failed when consensus_ms runs out.
  failureDetectionMs: (o) => o.tokenMs + o.consensusMs,
};

export { totemOptionsSchema, FAST_PROFILE, type TotemOptions } from './options.ts';
