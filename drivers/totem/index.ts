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
  // The token is missed for token_ms; then GATHER runs until consensus (consensus_ms), and once
  // more if a join changed the sets at the last moment; the commit token's two rotations and
  // recovery take a few token passes more (counted in the second consensus).
  failureDetectionMs: (o) => o.tokenMs + 2 * o.consensusMs,
};

export { totemOptionsSchema, FAST_PROFILE, type TotemOptions } from './options.ts';
