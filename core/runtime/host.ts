// The real-world pieces a driver host injects: a monotonic clock, crypto randomness, and
// durable state files. Exported separately so an embedded node can reuse them.
import { randomFillSync } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, constants } from 'node:fs';
import { join } from 'node:path';
import { assert, ClusterError } from '../api/errors.ts';
import type { StateStore } from '../driver/types.ts';

export interface HostClock {
  /** Milliseconds on a monotonic clock (never jumps with the wall clock). */
  now(): number;
}

export function createHostClock(): HostClock {
  return { now: () => performance.now() };
}

/** Uniform in [0, 1) with 53 random bits, drawn from the OS CSPRNG in batches. */
export function createCryptoRng(): () => number {
  const pool = new Uint32Array(512);
  let next = pool.length;
  return () => {
    if (next + 2 > pool.length) {
      randomFillSync(pool);
      next = 0;
    }
    const hi = pool[next++] >>> 5; // 27 bits
    const lo = pool[next++] >>> 6; // 26 bits
    return (hi * 67_108_864 + lo) / 9_007_199_254_740_992;
  };
}

const KEY_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * One file per key in the node's state dir. save() writes a temporary file, fsyncs it, renames
 * it over the old one and fsyncs the directory, so after a crash a key holds either its old or
 * its new value, never a torn one, and a returned save() is durable.
 */
export class FileStateStore implements StateStore {
  constructor(private readonly dir: string) {}

  /** Creates the directory (mode 0700) if needed. */
  static open(dir: string): FileStateStore {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new ClusterError('EACCES', `cannot create the state directory ${dir}: ${(e as Error).message}; fix node.state_dir or its permissions`);
    }
    return new FileStateStore(dir);
  }

  load(key: string): Uint8Array | undefined {
    assert(KEY_PATTERN.test(key), `state key "${key}" is a short file name`);
    try {
      return readFileSync(join(this.dir, key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  save(key: string, value: Uint8Array): void {
    assert(KEY_PATTERN.test(key), `state key "${key}" is a short file name`);
    const path = join(this.dir, key);
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      let off = 0;
      while (off < value.length) off += writeSync(fd, value, off, value.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    const dfd = openSync(this.dir, constants.O_RDONLY);
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }
}
