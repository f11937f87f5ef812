// A typed face for the `unix-dgram` package (AF_UNIX SOCK_DGRAM; it ships no types). Its events
// and callbacks are synchronous; errors carry a negative errno in `code` (and `code === 1` on a
// connected send means congestion: the peer's queue is full, EAGAIN, a 'writable' follows).
import { createRequire } from 'node:module';
import { constants } from 'node:os';

export interface UnixDgramSocket {
  on(event: 'message', fn: (buf: Buffer, rinfo: { size: number; path: string | null }) => void): this;
  on(event: 'error', fn: (err: UnixError) => void): this;
  on(event: 'writable' | 'listening' | 'connect', fn: () => void): this;
  removeAllListeners(event?: string): this;
  bind(path: string): void;
  connect(path: string): void;
  /** Connected send: cb(undefined) sent, cb(err) with code 1 congestion or a negative errno. */
  send(buf: Buffer, cb: (err?: UnixError) => void): void;
  /** Unconnected send to `path`. */
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: UnixError) => void): void;
  close(): void;
  fd: number;
}

export interface UnixError extends Error {
  code: number | string;
}

const require = createRequire(import.meta.url);
const lib = require('unix-dgram') as { createSocket(type: 'unix_dgram'): UnixDgramSocket };

export function createUnixSocket(): UnixDgramSocket {
  return lib.createSocket('unix_dgram');
}

export const CONGESTION = 1;

/** errno number -> name, built once (a full queue is a hot path: see sendUnix). Where two names
 *  share a number the first in Node's table is kept: EAGAIN, not EWOULDBLOCK. */
const ERRNO_NAMES = new Map<number, string>();
for (const [name, v] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(v)) ERRNO_NAMES.set(v, name);

/** 'EAGAIN', 'ECONNREFUSED', ... for a unix-dgram error (negative errno), 'EAGAIN' for 1 (congestion). */
export function unixErrorName(err: UnixError): string {
  if (err.code === CONGESTION) return 'EAGAIN';
  if (typeof err.code === 'number') return ERRNO_NAMES.get(-err.code) ?? `E${-err.code}`;
  return String(err.code);
}

/**
 * One datagram now, on a connected socket (`path` undefined) or to `path`: undefined when sent,
 * else the errno's name ('EAGAIN' when the peer's queue is full). unix-dgram reports every failed
 * send, a full queue included, with a new Error, and capturing its stack cost a sender of 64 KiB
 * messages about 50 us a message (most sends of a fast sender meet a full queue once): the Errors
 * are made here without a stack. The library calls back before send() returns; a version that did
 * not would be caught here.
 */
export function sendUnix(sock: UnixDgramSocket, buf: Buffer, path?: string): string | undefined {
  let called = false;
  let failure: string | undefined;
  const cb = (err?: UnixError): void => {
    called = true;
    if (err) failure = unixErrorName(err);
  };
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    if (path === undefined) sock.send(buf, cb);
    else sock.send(buf, 0, buf.length, path, cb);
  } finally {
    Error.stackTraceLimit = limit;
  }
  if (!called) throw new Error('unix-dgram did not report the send before returning: sendUnix needs its synchronous callback');
  return failure;
}

/** Bind synchronously; throws a plain Error naming the errno. */
export function bindUnix(sock: UnixDgramSocket, path: string): void {
  let failure: UnixError | undefined;
  sock.on('error', (e) => { failure = e; });
  sock.bind(path);
  sock.removeAllListeners('error');
  if (failure) throw Object.assign(new Error(`bind ${path}: ${unixErrorName(failure)}`), { code: unixErrorName(failure) });
}

/** Connect synchronously; returns the errno name on failure. */
export function connectUnix(sock: UnixDgramSocket, path: string): string | undefined {
  let failure: UnixError | undefined;
  sock.on('error', (e) => { failure = e; });
  sock.connect(path);
  sock.removeAllListeners('error');
  return failure ? unixErrorName(failure) : undefined;
}
