// Loads the native helper (core/native/afcluster_native.c, built at npm install by
// tools/build-native.mjs into core/native/build). It is optional: without it (no C compiler at
// install) the daemon and the client run the same on unix-dgram's sockets, only without giving
// freed memory back and without datagrams over 64 KiB (protocol version 5).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ByteParts } from '../wire/bytes.ts';

export interface Native {
  /** glibc's malloc_trim(0): true when it returned memory to the kernel (false on another C library). */
  trim(): boolean;
  /** glibc's mallopt(M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD), for a process that trims
   *  itself: true when every option was taken (false on another C library). */
  mallocTune(trimThreshold: number, topPad: number, mmapThreshold: number): boolean;
  unixSocket: NativeUnixSockets;
}

/** A socket handle from open(); the other calls answer -EBADF once it is closed. */
export type NativeHandle = object;

/** AF_UNIX SOCK_DGRAM sockets: every call is synchronous and answers 0 or -errno (no Error). */
export interface NativeUnixSockets {
  /** A socket whose every datagram arrives whole, in a Buffer of its own size, with the sender's
   *  path (null for an unbound sender); onWritable after a connected send met a full queue. */
  open(onMessage: (buf: Buffer, path: string | null) => void, onWritable: () => void, sendBufferMin?: number): NativeHandle | number;
  fd(h: NativeHandle): number;
  /** SO_SNDBUF as the kernel counts it: a datagram may be up to 32 bytes less (open raises it
   *  to sendBufferMin where it is smaller, as far as net.core.wmem_max allows). */
  sendBuffer(h: NativeHandle): number;
  bind(h: NativeHandle, path: string): number;
  connect(h: NativeHandle, path: string): number;
  /** One datagram of `bytes` (an array of parts is gathered in order, at most 16). */
  send(h: NativeHandle, bytes: ByteParts, path?: string): number;
  close(h: NativeHandle): number;
}

/** Where npm install builds the helper. This file runs from core/af under tsx; the build keeps
 *  import.meta.url pointing at this source file, so the root is two folders up. */
export const NATIVE_PATH = fileURLToPath(new URL('../../core/native/build/Release/afcluster_native.node', import.meta.url));

let cached: { native?: Native } | undefined;

/** The helper, or undefined when it was not built. A build that is there but cannot be used
 *  (older than this code, or built for another Node) is said once, as a process warning. */
export function loadNative(): Native | undefined {
  if (cached) return cached.native;
  const found = loadNativeAt(NATIVE_PATH);
  cached = { native: found.native };
  if (found.unusable) {
    process.emitWarning(`the native helper at ${NATIVE_PATH} is not used (${found.unusable}); running without it: no datagrams over 64 KiB and no memory given back. Rebuild it with npm run build:native`, { code: 'AFCLUSTER_NATIVE_UNUSABLE' });
  }
  return cached.native;
}

/** The helper at `path`: absent (not built), usable, or there but unusable, and why. */
export function loadNativeAt(path: string): { native?: Native; unusable?: string } {
  if (!existsSync(path)) return {};
  try {
    const m = createRequire(import.meta.url)(path) as Partial<Native>;
    const missing = typeof m.trim !== 'function' ? 'trim'
      : typeof m.unixSocket?.sendBuffer !== 'function' ? 'unixSocket.sendBuffer'
        : typeof m.mallocTune !== 'function' ? 'mallocTune' : undefined;
    if (missing === undefined) return { native: m as Native };
    return { unusable: `it is older than this code: no ${missing}` };
  } catch (e) {
    return { unusable: `it does not load: ${(e as Error).message.split('\n')[0]}` };
  }
}
