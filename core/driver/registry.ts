// The driver registry: name -> entry. Built-in drivers register in drivers/builtin.ts (above the drivers; nothing in core imports it).
import { ClusterError } from '../api/errors.ts';
import type { DriverEntry } from './types.ts';

export class DriverRegistry {
  private readonly entries = new Map<string, DriverEntry<unknown>>();

  register<O>(entry: DriverEntry<O>): void {
    if (this.entries.has(entry.name)) {
      throw new ClusterError('EADDRINUSE', `a driver named "${entry.name}" is already registered`);
    }
    this.entries.set(entry.name, entry as DriverEntry<unknown>);
  }

  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  get(name: string): DriverEntry<unknown> {
    const entry = this.entries.get(name);
    if (!entry) {
      const known = this.names();
      throw new ClusterError('ENOENT',
        `no driver named "${name}"; registered drivers: ${known.length ? known.join(', ') : '(none)'}`);
    }
    return entry;
  }
}
