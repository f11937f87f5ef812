// The registry with the drivers that ship with afcluster.
import { DriverRegistry } from '../core/driver/registry.ts';
import { cmanDriver } from './cman/index.ts';
import { totemDriver } from './totem/index.ts';

export function builtinRegistry(): DriverRegistry {
  const registry = new DriverRegistry();
  registry.register(cmanDriver);
  registry.register(totemDriver);
  return registry;
}
