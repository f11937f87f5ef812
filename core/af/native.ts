// Loads the daemon's native helper (core/native/afcluster_native.c, built at npm install by
// tools/build-native.mjs into core/native/build). It is optional: without it (no C compiler at
// install, another C library) the daemon runs the same, only without giving freed memory back.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface Native {
  /** glibc's malloc_trim(0): true when it returned memory to the kernel. */
  trim(): boolean;
}

const BUILT = 'core/native/build/Release/afcluster_native.node';

let cached: { native?: Native } | undefined;

/** The helper, or undefined when it was not built. This file runs from core/af under tsx; the
 *  build keeps import.meta.url pointing at this source file, so the root is two folders up. */
export function loadNative(): Native | undefined {
  if (cached) return cached.native;
  cached = {};
  const path = fileURLToPath(new URL('../../' + BUILT, import.meta.url));
  if (!existsSync(path)) return undefined;
  try {
    const m = createRequire(import.meta.url)(path) as Partial<Native>;
    if (typeof m.trim === 'function') cached.native = m as Native;
  } catch {
    // built for another Node or another machine: run without it
  }
  return cached.native;
}
