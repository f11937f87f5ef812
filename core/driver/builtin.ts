// The registry with the drivers that ship with afcluster.
import { DriverRegistry } from './registry.ts';

export function builtinRegistry(): DriverRegistry {
  const registry = new DriverRegistry();
  // Each driver adds one line here: registry.register(<name>Driver);
  return registry;
}
