// The registry with the drivers that ship with afcluster.
import { DriverRegistry } from './registry.ts';
import { cmanDriver } from '../../drivers/cman/index.ts';
import { totemDriver } from '../../drivers/totem/index.ts';

export function builtinRegistry(): DriverRegistry {
  const registry = new DriverRegistry();
  registry.register(cmanDriver);
  registry.register(totemDriver);
  return registry;
}
