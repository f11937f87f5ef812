// The project's unix datagram sockets (AF_UNIX SOCK_DGRAM). Two implementations behind one face:
// the native helper's (core/native: each datagram received whole into a buffer of its own size,
// so datagrams over 64 KiB arrive too; sends gathered from several buffers, failures as -errno)
// and, where the helper was not built, the `unix-dgram` package's (which receives into a 64 KiB
// buffer, and cuts longer datagrams). Events and send results are synchronous either way. Errors
// carry a negative errno in `code` (and unix-dgram's `code === 1` on a connected send means
// congestion: the peer's queue is full, EAGAIN, a 'writable' follows).
// AFCLUSTER_UNIX_SOCKETS=unix-dgram in the environment picks unix-dgram's even where the helper is built.
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { errnoName, loadNative, type NativeHandle, type NativeUnixSockets } from '../native/index.ts';
import type { ByteParts } from '../wire/bytes.ts';
import { own } from '../wire/lease.ts';
import { LARGE_DATAGRAM_MAX } from './codec.ts';
import { keepShapes } from '../transport/shapes.ts';

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
  /** The native implementation's send: one datagram (parts gathered), 0 or -errno. */
  sendRaw?(bytes: ByteParts, path?: string): number;
  /** Whether datagrams over 64 KiB arrive whole and can be sent (the native implementation, its
   *  send buffer large enough). */
  readonly largeDatagrams?: boolean;
  /** The socket's send buffer as the kernel counts it (the native implementation only). */
  readonly sendBuffer?: number;
}

export interface UnixError extends Error {
  code: number | string;
}

const require = createRequire(import.meta.url);
let unixDgram: { createSocket(type: 'unix_dgram'): UnixDgramSocket } | undefined;

/** The native sockets, unless the helper is missing or the environment asks for unix-dgram's. */
function nativeSockets(): NativeUnixSockets | undefined {
  return process.env.AFCLUSTER_UNIX_SOCKETS === 'unix-dgram' ? undefined : loadNative()?.unixSocket;
}

/** Whether sockets made here receive datagrams over 64 KiB whole. */
export function unixLargeDatagrams(): boolean {
  return nativeSockets() !== undefined;
}

export interface UnixSocketOptions {
  /** unix-dgram's socket even where the native helper is built. */
  readonly impl?: 'unix-dgram';
  /** The send buffer to raise the socket's to, at least (the native helper's sockets; default:
   *  what version 5's largest datagram needs). The kernel gives at most twice net.core.wmem_max. */
  readonly sendBufferMin?: number;
}

/** A socket of the native helper's where it was built (or of unix-dgram's, when `impl` says so). */
export function createUnixSocket(opts: UnixSocketOptions = {}): UnixDgramSocket {
  keepShapes();
  const n = opts.impl === 'unix-dgram' ? undefined : nativeSockets();
  if (n) return new NativeUnixSocket(n, Math.max(LARGE_SEND_BUFFER, opts.sendBufferMin ?? 0));
  unixDgram ??= require('unix-dgram') as { createSocket(type: 'unix_dgram'): UnixDgramSocket };
  return unixDgram.createSocket('unix_dgram');
}

/** The send buffer a socket needs for protocol version 5's largest datagram: the kernel refuses
 *  a unix datagram over the sender's SO_SNDBUF less 32 bytes. Linux's default (212,992) is more. */
const LARGE_SEND_BUFFER = LARGE_DATAGRAM_MAX + 32;

/** unix-dgram's face over the native helper's socket. */
class NativeUnixSocket extends EventEmitter implements UnixDgramSocket {
  /** Large datagrams arrive whole on every native socket; they can be sent where the send buffer
   *  could be made large enough (a host with net.core.wmem_default and wmem_max below it cannot). */
  readonly largeDatagrams: boolean;
  private readonly h: NativeHandle;
  private connected = false;

  constructor(private readonly n: NativeUnixSockets, sendBufferMin: number) {
    super();
    // Each datagram has memory of its own (the helper's): the daemon may release it once its
    // holders let go (core/af/bridge.ts, core/wire/lease.ts).
    const h = n.open((buf, path) => { own(buf); this.emit('message', buf, { size: buf.length, path }); }, () => { this.emit('writable'); }, sendBufferMin);
    if (typeof h === 'number') throw Object.assign(new Error(`socket: ${errnoName(-h)}`), { code: h });
    this.h = h;
    this.largeDatagrams = n.sendBuffer(h) >= LARGE_SEND_BUFFER;
  }

  get fd(): number { return this.n.fd(this.h); }

  get sendBuffer(): number { return this.n.sendBuffer(this.h); }

  bind(path: string): void {
    const r = this.n.bind(this.h, path);
    if (r < 0) this.emit('error', Object.assign(new Error(`bind ${errnoName(-r)}`), { code: r }));
    else this.emit('listening');
  }

  connect(path: string): void {
    const r = this.n.connect(this.h, path);
    if (r < 0) { this.emit('error', Object.assign(new Error(`connect ${errnoName(-r)}`), { code: r })); return; }
    this.connected = true;
    this.emit('connect');
  }

  sendRaw(bytes: ByteParts, path?: string): number {
    return this.n.send(this.h, bytes, this.connected ? undefined : path);
  }

  send(buf: Buffer, a: number | ((err?: UnixError) => void), length?: number, path?: string, cb?: (err?: UnixError) => void): void {
    const r = typeof a === 'function' ? this.sendRaw(buf) : this.sendRaw(buf.subarray(a, a + (length ?? buf.length - a)), path);
    const done = typeof a === 'function' ? a : cb;
    if (r < 0) done?.(Object.assign(new Error(`send ${errnoName(-r)}`), { code: r }));
    else done?.();
  }

  close(): void {
    this.n.close(this.h);
  }
}

export const CONGESTION = 1;

/** 'EAGAIN', 'ECONNREFUSED', ... for a socket error (negative errno), 'EAGAIN' for 1 (unix-dgram's congestion). */
export function unixErrorName(err: UnixError): string {
  if (err.code === CONGESTION) return 'EAGAIN';
  if (typeof err.code === 'number') return errnoName(-err.code);
  return String(err.code);
}

/**
 * One datagram now, on a connected socket (`path` undefined) or to `path`: undefined when sent,
 * else the errno's name ('EAGAIN' when the peer's queue is full). The native socket answers with
 * the errno itself. unix-dgram reports every failed
 * send, a full queue included, with a new Error, and capturing its stack cost a sender of 64 KiB
 * messages about 50 us a message (most sends of a fast sender meet a full queue once): the Errors
 * are made here without a stack. The library calls back before send() returns; a version that did
 * not would be caught here.
 */
export function sendUnix(sock: UnixDgramSocket, bytes: ByteParts, path?: string): string | undefined {
  if (sock.sendRaw) {
    const r = sock.sendRaw(bytes, path);
    return r === 0 ? undefined : errnoName(-r);
  }
  const buf = bytes instanceof Uint8Array ? asBuffer(bytes) : Buffer.concat(bytes);
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

/** The same bytes as a Buffer (unix-dgram takes nothing else), without a copy. */
function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
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
