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

/** 'EAGAIN', 'ECONNREFUSED', ... for a unix-dgram error (negative errno), 'congestion' for 1. */
export function unixErrorName(err: UnixError): string {
  if (err.code === CONGESTION) return 'EAGAIN';
  if (typeof err.code === 'number') {
    const n = -err.code;
    for (const [name, v] of Object.entries(constants.errno)) if (v === n) return name;
    return `E${n}`;
  }
  return String(err.code);
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
