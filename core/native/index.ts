// Loads the native helper (core/native/afcluster_native.c, built at npm install by
// tools/build-native.mjs into core/native/build). It is optional: without it (no C compiler at
// install) the daemon and the client run the same on unix-dgram's sockets and Node's dgram, only
// without giving freed memory back, without datagrams over 64 KiB (protocol version 5), and with
// Node's costlier UDP receive.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ByteParts } from '../wire/bytes.ts';

export interface Native {
  /** glibc's malloc_trim(0): true when it returned memory to the kernel (false on another C library). */
  trim(): boolean;
  /** glibc's mallopt(M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD), for a process that trims
   *  itself: true when every option was taken (false on another C library). */
  mallocTune(trimThreshold: number, topPad: number, mmapThreshold: number): boolean;
  /** Frees an ArrayBuffer's memory now (detaches it: its views read as empty from then on); true
   *  when it did (core/wire/lease.ts). */
  release(memory: ArrayBuffer): boolean;
  unixSocket: NativeUnixSockets;
  udpSocket: NativeUdpSockets;
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

/** A datagram's source as the UDP socket reports it: IPv4 a number (address * 65536 + port),
 *  IPv6 a string ("address port"); sourceKey() gives the same for a configured address. */
export type UdpSourceKey = number | string;

/** UDP sockets (IPv4 or IPv6): every call is synchronous and answers 0 or -errno (no Error). */
export interface NativeUdpSockets {
  /** A socket whose every datagram arrives in a Buffer of its own size, with its source's key;
   *  onWritable after a send met a full send buffer. Both socket buffers are asked for
   *  `bufferBytes` (the kernel doubles the figure, within net.core.[rw]mem_max). */
  open(family: 4 | 6, onMessage: (buf: Buffer, source: UdpSourceKey | null) => void, onWritable: () => void, bufferBytes: number): NativeHandle | number;
  bind(h: NativeHandle, host: string, port: number, reuseAddr: boolean): number;
  /** Sends to groups leave from the interface holding `iface`, TTL 1, loopback on; `join` also
   *  joins `group` there. */
  multicast(h: NativeHandle, group: string, iface: string, join: boolean): number;
  /** The address as the kernel takes it, for send(); -EINVAL for one that is not an IP literal,
   *  -ENODEV for an IPv6 scope that names no interface. */
  sockaddr(host: string, port: number): Buffer | number;
  /** The key onMessage gives for a datagram from host:port; null for an address sockaddr refuses. */
  sourceKey(host: string, port: number): UdpSourceKey | null;
  /** One datagram of `bytes` (an array of parts is gathered in order, at most 16) to `to`. */
  send(h: NativeHandle, bytes: ByteParts, to: Buffer): number;
  recvBuffer(h: NativeHandle): number;
  sendBuffer(h: NativeHandle): number;
  /** The bound port. */
  port(h: NativeHandle): number;
  fd(h: NativeHandle): number;
  close(h: NativeHandle): number;
}

/** errno number -> name, built once (a full queue is a hot path). Where two names share a number
 *  the first in Node's table is kept: EAGAIN, not EWOULDBLOCK. */
const ERRNO_NAMES = new Map<number, string>();
for (const [name, v] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(v)) ERRNO_NAMES.set(v, name);

/** 'EAGAIN', 'ENOENT', ... for an errno number (positive). */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

/** Where npm install builds the helper. This file runs from core/native under tsx; the build keeps
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
    process.emitWarning(`the native helper at ${NATIVE_PATH} is not used (${found.unusable}); running without it: no datagrams over 64 KiB, no memory given back, Node's own UDP. Rebuild it with npm run build:native`, { code: 'AFCLUSTER_NATIVE_UNUSABLE' });
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
        : typeof m.mallocTune !== 'function' ? 'mallocTune'
          : typeof m.udpSocket?.send !== 'function' ? 'udpSocket'
            : typeof m.release !== 'function' ? 'release' : undefined;
    if (missing === undefined) return { native: m as Native };
    return { unusable: `it is older than this code: no ${missing}` };
  } catch (e) {
    return { unusable: `it does not load: ${(e as Error).message.split('\n')[0]}` };
  }
}
