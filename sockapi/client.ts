// ClusterSocket: a cluster socket reached through the local daemon over the bridge protocol
// (docs/PROTOCOL.md). The socket binds its own unix datagram socket (the daemon knows the client
// by that path), says hello with its pid, then sends requests and matches replies by request
// id; events arrive in the same stream and are handed out by `for await`. With a version-2 daemon
// (PROTOCOL.md section 9) sends are pipelined: queued, packed into BATCH containers at the end of
// the current tick, up to the socket's window of them unanswered (OpenOptions.sendWindow,
// SEND_WINDOW by default); each send() resolves when the daemon accepted its message. A send
// refused with EAGAIN waits for the daemon's WRITABLE event (no sleeping) and is resent, in
// order, with everything after it. With a version-4 daemon (PROTOCOL.md section 11) a large
// message's parts stream through the same window: no reply is awaited per part, and a refused
// part puts the whole message back in line like a refused send.
import { randomBytes } from 'node:crypto';
import { chmodSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterError, ERROR_NUMBERS, errorCodeFromNumber, isClusterError, type ErrorCode } from '../core/api/errors.ts';
import {
  BATCH_HEADER_BYTES, BATCH_ITEM_OVERHEAD, DATAGRAM_MAX, decodeDaemonDatagram, encodeRequest, isBatch, OP, readMessageAt, visitBatch,
  OP_PROTOCOL_ERROR, REPLY_BIT, SEND_DATA_MAX, SEND_HEADER_BYTES, SEND_PART_DATA_MAX, SEND_PART_HEADER_BYTES, VERSION_BATCH, VERSION_LARGE, VERSION_MAX, VERSION_STREAM, VERSION_VIEWS, datagramMax, writeBatchHeader,
  writeSendHeader, writeSendPartHeader,
  writeSend, writeSendAt, writeSendPart, type HelloResult, type MessagePart, type Reply, type ReplyResult, type Request, type StatValue,
} from '../core/af/codec.ts';
import { bindUnix, createUnixSocket, sendUnix, type UnixDgramSocket } from '../core/af/unix.ts';
import { checkUnixPath } from '../core/af/socketfile.ts';
import { allocBytesToFill, plainBytes, readU32, writeU16, type ByteParts } from '../core/wire/bytes.ts';
import { badCallback, badSignal, callUser, EventQueue, eventBytes, failLater, retryEagain, settleTo, WritableSignal } from '../core/api/queue.ts';
import { Inflight } from './inflight.ts';
import type {
  BindOptions, GroupSocket, LocalNode, Member, MemberInfo, Order, QuorumInfo, SendCallback, SendOptions, SocketEvent,
} from '../core/api/types.ts';

export interface OpenOptions {
  /** The daemon's socket (node.socket in its config). */
  readonly path: string;
  readonly signal?: AbortSignal;
  /** How long a request may wait for its reply (default 10000 ms): then ETIMEDOUT. */
  readonly timeoutMs?: number;
  /** Where this socket binds (default: a fresh name in $XDG_RUNTIME_DIR or the temp dir). */
  readonly clientPath?: string;
  /** Mode of this socket's file (default 0o600: only this user and root, the usual daemon, may write to it). */
  readonly clientMode?: number;
  /** Events kept while nobody iterates (default 65536, and 64 MiB); past it: ENOBUFS, as the daemon does. */
  readonly eventQueueMax?: number;
  readonly eventQueueBytesMax?: number;
  /** How often to check that the daemon still knows this socket (default 5000 ms; 0 = never).
   *  When it is gone or restarted, the stream ends with an ECONNREFUSED error event. */
  readonly keepaliveMs?: number;
  /** The newest bridge protocol version to say HELLO with (default: the newest both this socket
   *  and the daemon speak). For testing older clients' paths against a new daemon. */
  readonly maxVersion?: number;
  /** Sends unanswered at most (default SEND_WINDOW, 512; 1 to SEND_WINDOW_MAX). Deeper suits one
   *  sender of small messages; with every node sending 1300-byte messages, shallower delivered
   *  more (docs/BENCH.md, "The client library's window"). */
  readonly sendWindow?: number;
}

interface Pending {
  readonly resolve: (r: Reply) => void;
  readonly reject: (e: Error) => void;
  readonly done: () => void;
}

/** A new promise's resolving functions, taken by captureResolvers while its executor runs: one
 *  function for every send's promise, not a closure (and its context) per message. */
const noop = (): void => undefined;
/** Slots of the due-callback arrays kept between windows (ClusterSocket.runDone). */
const DONE_KEPT_MAX = 4096;
const captured: { resolve: () => void; reject: (e: Error) => void } = { resolve: noop, reject: noop };
function captureResolvers(resolve: () => void, reject: (e: Error) => void): void {
  captured.resolve = resolve;
  captured.reject = reject;
}

/** A pipelined send: queued, then in flight, then settled by its reply (or an error). */
interface QueuedSend {
  id: number;
  readonly order: Order;
  readonly data: Uint8Array;
  /** false: an EAGAIN answer rejects instead of waiting for WRITABLE. */
  readonly wait: boolean;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  /** Given instead of a promise (send's third argument): resolve and reject are no-ops then. */
  readonly callback: SendCallback | undefined;
  sentAt: number;
  settled: boolean;
  readonly signal?: AbortSignal;
  onAbort?: () => void;
  /** Larger than one datagram: sent alone, in SEND_PART fragments, once every earlier send is
   *  accepted, and before any later one (a socket's sends reach the daemon in call order). */
  readonly large: boolean;
  /** Version 4: a large send streams its parts through the window; set while it does. */
  stream?: StreamState;
}

/** A large send going out in parts to a version-4 daemon (PROTOCOL.md, section 11). */
interface StreamState {
  readonly msgId: number;
  /** Offset of the next part to send. */
  next: number;
  /** Parts sent and not yet answered. */
  unanswered: number;
  /** A part was refused or failed: the daemon dropped the message; later answers are ignored. */
  decided: boolean;
}

/** Sends unanswered at most (the daemon holds a few datagrams of them in its kernel queue, and
 *  keeps the replies of up to 4096 requests while this socket is full: PROTOCOL.md). 512, with
 *  the totem driver's send queue of 2048 messages: one sender of small messages then keeps the
 *  daemon's queue filled through a token rotation (at 256 it delivered a sixth less); 1024 had
 *  the daemons refuse many more sends when every node sent, and deliver less (docs/BENCH.md). */
export const SEND_WINDOW = 512;
/** The deepest OpenOptions.sendWindow: the daemon keeps the replies of 4096 requests for a socket
 *  that is busy sending, and other requests may be unanswered too. */
export const SEND_WINDOW_MAX = 1024;
/** Version 4: bytes of large messages' parts unanswered at most (the daemon keeps one message's
 *  parts at a time; this bounds what waits in the kernel and the daemon's queue). */
export const STREAM_BYTES_MAX = 4 * 1024 * 1024;
/** Sends queued in this process at most, waiting for the window: past it, send() throws EAGAIN. */
export const SEND_QUEUE_MAX = 65536;
/** Without a WRITABLE event this long after an EAGAIN, resend anyway (the daemon answers again). */
const WRITABLE_FALLBACK_MS = 50;
const REPLY_SEND = OP.send | REPLY_BIT;
const REPLY_SEND_PART = OP.sendPart | REPLY_BIT;
const ERROR_STATUS_EAGAIN = ERROR_NUMBERS.EAGAIN;

/** Largest message reassembled from parts, whatever the daemon says (memory bound). */
const PART_TOTAL_MAX = 64 * 1024 * 1024;
const SEND_RETRY_MIN_MS = 1;
const SEND_RETRY_MAX_MS = 50;
/** A version-2 daemon answers WRITABLE after refusing a large message: wait that long at most for it. */
const LARGE_RETRY_MS = 50;

let counter = 0;

/** Socket files of this process's open sockets: removed at exit even when nobody closed them. */
const openPaths = new Set<string>();
let exitHook = false;
function trackPath(path: string): void {
  openPaths.add(path);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => { for (const p of openPaths) try { unlinkSync(p); } catch { /* gone */ } });
}

/** The daemon is gone (its socket refuses) or restarted (it no longer knows us: EPROTO). */
function daemonLost(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'ECONNREFUSED' || code === 'EPROTO';
}

function defaultClientPath(): string {
  const dir = process.env.XDG_RUNTIME_DIR || tmpdir();
  return join(dir, `afc-${process.pid}-${++counter}-${randomBytes(3).toString('hex')}.sock`);
}

function cancelled(signal: AbortSignal): ClusterError {
  const why = signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted');
  return new ClusterError('ECANCELED', `the operation was aborted (${why})`);
}

function statusError(reply: Reply, what: string): ClusterError {
  const code: ErrorCode = errorCodeFromNumber(reply.status) ?? 'EPROTO';
  const hint: Partial<Record<ErrorCode, string>> = {
    EAGAIN: 'the send queue is full; retry later', ENOTCONN: 'bind the socket to a group first',
    EADDRINUSE: 'the socket is already bound; unbind first', EMSGSIZE: 'send a smaller message',
    EOPNOTSUPP: 'this driver cannot give that order', EPROTO: 'the daemon did not understand the request',
    EINVAL: 'the request was malformed', EMFILE: 'the daemon has too many sockets open',
    ENAMETOOLONG: 'use a shorter group name',
  };
  return new ClusterError(code, `${what}: ${hint[code] ?? `daemon answered status ${reply.status}`}`);
}

export class ClusterSocket implements GroupSocket {
  private readonly pending = new Map<number, Pending>();
  private readonly events: EventQueue<SocketEvent>;
  private keepalive?: NodeJS.Timeout;
  private nextId = 0;
  private nextMsgId = 0;
  private partial?: { readonly head: MessagePart; readonly buf: Uint8Array; received: number };
  private closed = false;
  private overrun = false;
  private hello?: HelloResult;
  /** The protocol version the daemon accepted in HELLO. */
  private version = 1;
  /** The bridge protocol version the daemon and this socket agreed on at HELLO. */
  get protocolVersion(): number { return this.version; }
  /** The daemon speaks version 2: BATCH containers, WRITABLE, pipelined sends. */
  private batch = false;
  private readonly writableSignal = new WritableSignal();
  /** WRITABLE events read so far: one read before a refusal's reply was handled is not lost. */
  private writableCount = 0;
  /** Pipelined sends: not yet sent (from queueHead), in flight by id, refused and waiting to resend. */
  private queue: QueuedSend[] = [];
  /** A large send is going out in parts: the queue behind it waits. */
  private largeActive = false;
  /** Version 4: the large send whose parts are going out now (taken off the queue). */
  private streaming?: QueuedSend;
  /** Version 4: bytes of parts in flight, and each part's length by request id. */
  private streamBytes = 0;
  private readonly parts = new Map<number, { readonly len: number; readonly st: StreamState }>();
  private queueHead = 0;
  private readonly inflight = new Inflight<QueuedSend>();
  private refused: QueuedSend[] = [];
  private paused = false;
  private writableSeen = false;
  private resumeNext = false;
  private flushScheduled = false;
  private retryTimer?: NodeJS.Timeout;
  private sendTimer?: NodeJS.Timeout;
  private readonly scratch = Buffer.allocUnsafe(DATAGRAM_MAX);
  /** Send callbacks due and their outcomes, for runDone (callBack). */
  private readonly doneCallbacks: SendCallback[] = [];
  private readonly doneErrors: (Error | null)[] = [];
  private doneCount = 0;
  private doneQueued = false;
  /** The largest datagram either side sends (version 5: LARGE_DATAGRAM_MAX), and so the largest
   *  payload of one SEND and of one SEND_PART. */
  private dgramMax = DATAGRAM_MAX;
  private get sendDataMax(): number { return this.dgramMax - SEND_HEADER_BYTES; }
  private get partDataMax(): number { return this.dgramMax - SEND_PART_HEADER_BYTES; }
  /** Datagrams from the daemon that did not decode (counted, dropped). */
  badDatagrams = 0;
  /** Sends unanswered at most (OpenOptions.sendWindow). */
  private readonly window: number;

  private constructor(
    private readonly sock: UnixDgramSocket,
    private readonly daemonPath: string,
    private readonly clientPath: string,
    private readonly timeoutMs: number,
    opts: OpenOptions,
  ) {
    this.window = opts.sendWindow ?? SEND_WINDOW;
    this.events = new EventQueue<SocketEvent>({
      max: opts.eventQueueMax ?? 65536, bytesMax: opts.eventQueueBytesMax ?? 64 << 20, sizeOf: eventBytes,
    });
    sock.on('message', (buf) => this.datagram(buf));
    sock.on('error', () => { /* send errors are reported through callbacks */ });
  }

  /** Open a socket on the daemon at `path`: binds a client socket and says hello. */
  static async open(opts: OpenOptions): Promise<ClusterSocket> {
    const w = opts.sendWindow;
    if (w !== undefined && !(Number.isInteger(w) && w >= 1 && w <= SEND_WINDOW_MAX)) {
      throw new ClusterError('EINVAL', `sendWindow ${w}: expected a whole number of sends from 1 to ${SEND_WINDOW_MAX}`);
    }
    const clientPath = opts.clientPath ?? defaultClientPath();
    checkUnixPath(opts.path, 'daemon socket path');
    checkUnixPath(clientPath, 'client socket path (set clientPath, or a shorter XDG_RUNTIME_DIR or TMPDIR)');
    const sock = createUnixSocket();
    try {
      bindUnix(sock, clientPath);
      trackPath(clientPath);
      chmodSync(clientPath, opts.clientMode ?? 0o600);
    } catch (e) {
      sock.close();
      const code = (e as { code?: string }).code;
      throw new ClusterError(code === 'EADDRINUSE' ? 'EADDRINUSE' : 'EACCES', `cannot bind client socket ${clientPath}: ${(e as Error).message}`);
    }
    const cs = new ClusterSocket(sock, opts.path, clientPath, opts.timeoutMs ?? 10_000, opts);
    try {
      const r = await cs.sayHello(opts.signal, opts.maxVersion);
      if (r.result.type !== 'hello') throw new ClusterError('EPROTO', 'the daemon answered hello without an identity');
      cs.hello = r.result.hello;
      cs.startKeepalive(opts.keepaliveMs ?? 5000);
      return cs;
    } catch (e) {
      cs.shutdown();
      throw e;
    }
  }

  /** HELLO with the newest version; a daemon that does not speak it answers EPROTO: say it again
   *  one version lower (4: who the members are, 3: views and quorum, 2: batches and flow control, 1). */
  private async sayHello(signal?: AbortSignal, maxVersion = VERSION_MAX): Promise<Reply> {
    // Version 5 only where this socket receives and sends datagrams over 64 KiB whole (the native
    // sockets, their send buffer large enough).
    const newest = Math.max(1, Math.min(maxVersion, this.sock.largeDatagrams ? VERSION_MAX : VERSION_LARGE - 1));
    for (let version = newest; ; version--) {
      try {
        const r = await this.call({ type: 'hello', id: 0, pid: process.pid, version }, signal);
        this.version = version;
        this.batch = version >= VERSION_BATCH;
        this.dgramMax = datagramMax(version);
        return r;
      } catch (e) {
        if ((e as { code?: string }).code !== 'EPROTO' || this.closed || version === 1) throw e;
      }
    }
  }

  get self(): Member {
    const h = this.identity();
    return { nodeId: h.nodeId, pid: h.pid, port: h.port };
  }

  /** The driver's name and the largest message the daemon accepts. */
  get daemon(): { readonly driver: string; readonly messageSizeMax: number; readonly nodeId: number } {
    return this.identity();
  }

  /** Join `group`. While the daemon's control queue is full (EAGAIN) it retries. */
  async bind(group: string, options: BindOptions = {}): Promise<void> {
    this.overrun = false;
    const req: Request = { type: 'bind', id: 0, group, selfDelivery: options.selfDelivery ?? true };
    await retryEagain(() => this.call(req, options.signal), { signal: options.signal, maxDelayMs: SEND_RETRY_MAX_MS });
  }

  async unbind(options: { signal?: AbortSignal } = {}): Promise<void> {
    await retryEagain(() => this.call({ type: 'unbind', id: 0 }, options.signal), { signal: options.signal, maxDelayMs: SEND_RETRY_MAX_MS });
  }

  /** Send to the group. While the daemon answers EAGAIN it retries, unless `wait: false`. Every
   *  failure is a rejection, never a throw. Not an async function: with a version-2 daemon or later
   *  the promise is the queued send's own, with no second one around it per message.
   *  With a callback (Node's style, as a stream's write): no promise; the callback is called once,
   *  with null when the daemon accepted the message or with the error, in a microtask as a
   *  promise's reaction would be (never before send returns, never from inside the library's own
   *  handling). A sender of many small messages spends less per message this way. */
  send(data: Uint8Array | string, options?: SendOptions): Promise<void>;
  send(data: Uint8Array | string, options: SendOptions, callback: SendCallback): void;
  send(data: Uint8Array | string, options: SendOptions = {}, callback?: SendCallback): Promise<void> | void {
    let bytes: Uint8Array, order: Order;
    try {
      const bad = badCallback(callback);
      if (bad) throw bad;
      bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
      const max = this.identity().messageSizeMax;
      if (bytes.length > max) throw new ClusterError('EMSGSIZE', `message of ${bytes.length} bytes is over ${max}, the most this daemon carries; send a smaller one`);
      order = options.order ?? 'agreed';
    } catch (e) {
      if (typeof callback === 'function') { failLater(callback, e as Error); return; }
      return Promise.reject(e as Error);
    }
    if (!this.batch) {
      const p = this.sendAlone(bytes, order, options);
      if (!callback) return p;
      settleTo(p, callback);
      return;
    }
    return this.enqueue(bytes, order, options, callback);
  }

  /** A version-1 daemon: one request per send, each awaiting its reply. */
  private async sendAlone(bytes: Uint8Array, order: Order, options: SendOptions): Promise<void> {
    const attempt = bytes.length <= SEND_DATA_MAX
      ? async (): Promise<void> => { await this.call({ type: 'send', id: 0, order, data: bytes }, options.signal); }
      : (): Promise<void> => this.sendParts(bytes, order, options.signal);
    await retryEagain(attempt, {
      wait: options.wait, signal: options.signal, minDelayMs: SEND_RETRY_MIN_MS, maxDelayMs: SEND_RETRY_MAX_MS,
      writable: this.writableSignal,
    });
  }

  /** Queue a send for the next batch; resolves (or calls back) when the daemon accepted it. */
  private enqueue(data: Uint8Array, order: Order, options: SendOptions, callback: SendCallback | undefined): Promise<void> | undefined {
    const refused = this.refusal(options.signal);
    if (refused) {
      if (!callback) return Promise.reject(refused);
      failLater(callback, refused);
      return undefined;
    }
    const signal = options.signal;
    const promise = callback ? undefined : new Promise<void>(captureResolvers);
    const s: QueuedSend = {
      id: 0, order, data, wait: options.wait !== false, resolve: captured.resolve, reject: captured.reject, callback, sentAt: 0, settled: false, signal,
      large: data.length > this.sendDataMax,
    };
    captured.resolve = captured.reject = noop; // not kept alive until the next send
    if (signal) {
      s.onAbort = () => this.settle(s, cancelled(signal));
      signal.addEventListener('abort', s.onAbort, { once: true }); // badSignal() let only signals through
    }
    this.queue.push(s);
    this.scheduleFlush();
    return promise;
  }

  /** Why a send cannot be queued now, or undefined. */
  private refusal(signal: AbortSignal | undefined): Error | undefined {
    if (this.closed) return new ClusterError('ENOTCONN', 'the socket is closed; open a new one');
    const bad = badSignal(signal);
    if (bad) return bad;
    if (signal?.aborted) return cancelled(signal);
    if (this.queue.length - this.queueHead + this.refused.length >= SEND_QUEUE_MAX) {
      return new ClusterError('EAGAIN', `${SEND_QUEUE_MAX} sends already wait in this process; await some before sending more`);
    }
    return undefined;
  }

  private settle(s: QueuedSend, err?: Error): void {
    if (s.settled) return;
    s.settled = true;
    if (s.onAbort) s.signal?.removeEventListener('abort', s.onAbort);
    if (s.callback) this.callBack(s.callback, err ?? null);
    else if (err) s.reject(err); else s.resolve();
  }

  /** A send's callback, called in a microtask after the loop that settled it (one microtask for
   *  all that one loop settles), as a promise's reaction would be: never from inside
   *  flushSends() or a reply's handling, which the callback's own calls (close(), a request, more
   *  sends) would re-enter. */
  private callBack(cb: SendCallback, err: Error | null): void {
    // Written by index into arrays kept at their size: emptied with length = 0, V8 let go of
    // their store and grew it again, step by step, for every window of sends.
    this.doneCallbacks[this.doneCount] = cb;
    this.doneErrors[this.doneCount++] = err;
    if (!this.doneQueued) { this.doneQueued = true; queueMicrotask(this.runDone); }
  }

  private readonly runDone = (): void => {
    this.doneQueued = false;
    const cbs = this.doneCallbacks, errs = this.doneErrors;
    // Callbacks settled by these callbacks' own calls join the loop, in order.
    for (let i = 0; i < this.doneCount; i++) {
      const cb = cbs[i], err = errs[i];
      cbs[i] = noop; // nothing kept alive until the next window
      errs[i] = null;
      callUser(cb, err);
    }
    // Kept at their size for the next window; let go after a burst far past it (a close that
    // failed every queued send at once).
    if (this.doneCount > DONE_KEPT_MAX) cbs.length = errs.length = 0;
    this.doneCount = 0;
  };

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    setImmediate(() => { this.flushScheduled = false; this.flushSends(); });
  }

  /** Send queued sends, packed into containers, while the window has room. */
  private flushSends(): void {
    // While paused nothing goes, and the timer is maybeResume's fallback: a send() now must not
    // clear it, or a pipeline that missed its WRITABLE would wait for a datagram that never comes.
    if (this.paused) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.streaming && !this.paused && !this.closed && this.pumpParts(this.streaming) !== 'sent') {
      if (this.inflight.size > 0) this.startSendTimer();
      return;
    }
    while (!this.paused && !this.closed && !this.largeActive && this.queueHead < this.queue.length && this.inflight.size < this.window) {
      const head = this.queue[this.queueHead];
      if (head.settled) { this.queueHead++; continue; }
      if (head.large && this.version >= VERSION_STREAM) {
        this.queueHead++;
        this.nextMsgId = (this.nextMsgId + 1) >>> 0;
        head.stream = { msgId: this.nextMsgId, next: 0, unanswered: 0, decided: false };
        this.streaming = head;
        if (this.pumpParts(head) !== 'sent') break;
        continue;
      }
      if (head.large) {
        if (this.inflight.size > 0) break; // after every earlier send is accepted (afterDatagram calls again)
        this.queueHead++;
        this.startLarge(head);
        break;
      }
      const [count, bytes] = this.pack();
      if (count === 0) continue; // only settled (aborted) sends were at the head
      const err = this.transmitNow(bytes);
      if (err === 'again') {
        // The daemon's kernel queue is full: try again at the next reply, or shortly when none is due.
        if (this.inflight.size === 0) this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.flushSends(); }, SEND_RETRY_MIN_MS);
        return;
      }
      this.resumeNext = false;
      const now = performance.now();
      for (let i = 0; i < count; i++) {
        const s = this.queue[this.queueHead++];
        if (s.settled) { i--; continue; }
        if (err) { this.settle(s, err); continue; }
        s.sentAt = now;
        this.inflight.push(s.id, s);
      }
      if (err?.code === 'ECONNREFUSED' && this.hello) this.lost(err);
    }
    if (this.queueHead === this.queue.length) { this.queue = []; this.queueHead = 0; }
    else if (this.queueHead > 4096) { this.queue = this.queue.slice(this.queueHead); this.queueHead = 0; }
    if (this.inflight.size > 0) this.startSendTimer();
  }

  /** Version 4: the streaming send's next parts, each its own datagram, while the window and
   *  STREAM_BYTES_MAX allow; 'sent' once its last part is out. No reply is awaited per part:
   *  the daemon's fence keeps later messages behind one whose part it refused. */
  private pumpParts(s: QueuedSend): 'sent' | 'blocked' {
    const st = s.stream;
    if (!st || s.settled || st.decided) { this.streaming = undefined; return 'sent'; }
    const total = s.data.length;
    while (st.next < total) {
      const chunk = this.partDataMax;
      if (this.inflight.size >= this.window || (this.streamBytes > 0 && this.streamBytes + chunk > STREAM_BYTES_MAX)) return 'blocked';
      const id = this.allocId();
      const data = s.data.subarray(st.next, st.next + chunk);
      const req = { id, order: s.order, msgId: st.msgId, total, offset: st.next, data, resume: this.resumeNext && st.next === 0 };
      // Version 5 (native sockets): the header and the data gathered by the kernel, not joined here.
      const err = this.gather
        ? this.transmitNow([writeSendPartHeader(this.scratch, 0, req), data])
        : this.transmitNow(writeSendPart(this.scratch, 0, req));
      if (err === 'again') {
        if (this.inflight.size === 0) this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.flushSends(); }, SEND_RETRY_MIN_MS);
        return 'blocked';
      }
      if (err) {
        st.decided = true;
        this.streaming = undefined;
        this.settle(s, err);
        if (err.code === 'ECONNREFUSED' && this.hello) this.lost(err);
        return 'sent';
      }
      this.resumeNext = false;
      s.sentAt = performance.now();
      st.next += data.length;
      st.unanswered++;
      this.streamBytes += data.length;
      this.parts.set(id, { len: data.length, st });
      this.inflight.push(id, s);
    }
    this.streaming = undefined;
    this.startSendTimer();
    return 'sent';
  }

  /** Version 4: the daemon answered one part of a streaming send. */
  private partReply(id: number, s: QueuedSend, part: { readonly len: number; readonly st: StreamState }, status: number): void {
    const st = part.st;
    st.unanswered--;
    this.streamBytes -= part.len;
    this.parts.delete(id);
    if (s.settled || st.decided) return; // the message was decided by an earlier part's answer
    if (status === 0) {
      if (st.unanswered === 0 && st.next === s.data.length) this.settle(s);
      return;
    }
    // Any error drops the whole message at the daemon: stop sending its parts.
    st.decided = true;
    if (this.streaming === s) this.streaming = undefined;
    if (status === ERROR_STATUS_EAGAIN && s.wait) {
      s.stream = undefined;
      this.refused.push(s); // resent from offset 0 after WRITABLE, in order
    } else {
      this.settle(s, statusError({ type: 'reply', op: OP.sendPart | REPLY_BIT, id, status, result: { type: 'none' } }, 'send'));
      if (status !== ERROR_STATUS_EAGAIN) return;
    }
    if (!this.paused) { this.paused = true; this.writableSeen = false; }
  }

  /** Version 5 (said only on the native sockets): sends gather a header and the caller's bytes
   *  into one datagram. */
  private get gather(): boolean { return this.version >= VERSION_LARGE; }

  /** The next sends from the queue head as one datagram (a lone SEND, or a BATCH container). */
  private pack(): [number, ByteParts] {
    const buf = this.scratch;
    let at = BATCH_HEADER_BYTES, count = 0;
    for (let i = this.queueHead; i < this.queue.length && this.inflight.size + count < this.window; i++) {
      const s = this.queue[i];
      if (s.settled) { if (count === 0) this.queueHead++; continue; }
      if (s.large) break; // goes alone, in parts, once this container is accepted
      const need = BATCH_ITEM_OVERHEAD + SEND_HEADER_BYTES + s.data.length;
      if (at + need > DATAGRAM_MAX && count === 0) return [1, this.packAlone(s)]; // too big for a container
      if (at + need > DATAGRAM_MAX) break;
      s.id = this.allocId();
      writeU16(buf, at, need - BATCH_ITEM_OVERHEAD);
      writeSendAt(buf, at + BATCH_ITEM_OVERHEAD, s.id, s.order, s.data, this.resumeNext && count === 0);
      at += need;
      count++;
    }
    // One SEND goes as it is, not in a container. (A view of the scratch Buffer: a Buffer itself.)
    if (count <= 1) return [count, buf.subarray(count === 0 ? 0 : BATCH_HEADER_BYTES + BATCH_ITEM_OVERHEAD, count === 0 ? 0 : at)];
    writeBatchHeader(buf, count);
    return [count, buf.subarray(0, at)];
  }

  private packAlone(s: QueuedSend): ByteParts {
    s.id = this.allocId();
    if (this.gather) return [writeSendHeader(this.scratch, 0, s.id, s.order, this.resumeNext), s.data];
    const b = writeSend(this.scratch, 0, s.id, s.order, s.data, this.resumeNext);
    return this.scratch.subarray(0, b.length);
  }

  /** One datagram to the daemon now: undefined when sent, 'again' when its queue is full, else the error. */
  private transmitNow(buf: ByteParts): ClusterError | 'again' | undefined {
    const name = sendUnix(this.sock, buf, this.daemonPath);
    if (name === undefined) return undefined;
    return name === 'EAGAIN' || name === 'ENOBUFS' ? 'again' : this.reachError(name);
  }

  private reachError(name: string): ClusterError {
    const known: Record<string, ErrorCode> = { ENOENT: 'ECONNREFUSED', ECONNREFUSED: 'ECONNREFUSED', EACCES: 'EACCES', EPERM: 'EACCES', EMSGSIZE: 'EMSGSIZE' };
    return new ClusterError(known[name] ?? 'EINVAL', `cannot reach the daemon at ${this.daemonPath} (${name}); is it running, and may you use its socket?`);
  }

  /** The daemon answered a pipelined send (false: no send in flight has that id). */
  private sendReply(id: number, status: number): boolean {
    const s = this.inflight.take(id);
    if (!s) return false;
    const part = this.parts.size === 0 ? undefined : this.parts.get(id); // no hash lookup per small send
    if (part) { this.partReply(id, s, part, status); return true; }
    if (s.settled) return true;
    if (status === 0) { this.settle(s); return true; }
    if (status !== ERROR_STATUS_EAGAIN || !s.wait) {
      this.settle(s, statusError({ type: 'reply', op: REPLY_SEND, id, status, result: { type: 'none' } }, 'send'));
      if (status !== ERROR_STATUS_EAGAIN) return true;
    } else {
      this.refused.push(s); // replies come in send order: refused stays in order
    }
    // The daemon now refuses every send until one carries RESUME: stop, wait for WRITABLE.
    if (!this.paused) { this.paused = true; this.writableSeen = false; }
    return true;
  }

  /** After a datagram from the daemon: resume a paused pipeline or fill the window again. */
  private afterDatagram(): void {
    if (this.paused) this.maybeResume();
    else if (this.queueHead < this.queue.length || this.streaming) this.flushSends();
  }

  private maybeResume(): void {
    if (!this.paused || this.inflight.size > 0) return;
    if (this.writableSeen) { this.resume(); return; }
    this.retryTimer ??= setTimeout(() => { this.retryTimer = undefined; this.resume(); }, WRITABLE_FALLBACK_MS);
  }

  /** Resend the refused sends first, the first of them with RESUME, then the rest of the queue.
   *  A streaming send that had sent no part yet (the window or STREAM_BYTES_MAX held it back when
   *  an earlier send was refused) is neither refused nor in the queue: it goes back in after the
   *  refused ones, from its start, or it would never be sent nor settled. (One that had sent parts
   *  was decided by their answers, refused behind the fence, before the pipeline could resume; were
   *  one not, it would start again too, under a new message id: the daemon's half never completes.) */
  private resume(): void {
    if (!this.paused || this.closed) return;
    this.paused = false;
    this.writableSeen = false;
    this.resumeNext = true;
    const held = this.streaming;
    this.streaming = undefined;
    const unbegun = held && !held.settled && held.stream && !held.stream.decided ? [held] : [];
    for (const s of unbegun) s.stream = undefined;
    this.queue = this.refused.concat(unbegun, this.queue.slice(this.queueHead));
    this.queueHead = 0;
    this.refused = [];
    this.flushSends();
  }

  private daemonWritable(): void {
    this.writableCount++;
    this.writableSignal.notify();
    this.writableSeen = true;
    this.maybeResume();
  }

  /** One timer for every send in flight: those older than timeoutMs fail with ETIMEDOUT. */
  private startSendTimer(): void {
    if (this.sendTimer) return;
    this.sendTimer = setInterval(() => {
      const now = performance.now();
      for (let o = this.inflight.oldest(); o; o = this.inflight.oldest()) {
        const { id, item: s } = o;
        if (now - s.sentAt < this.timeoutMs) break; // in send order: the rest are younger
        this.inflight.take(id);
        const part = this.parts.get(id);
        if (part) {
          this.streamBytes -= part.len;
          this.parts.delete(id);
          part.st.decided = true;
          if (this.streaming === s) this.streaming = undefined;
        }
        this.settle(s, new ClusterError('ETIMEDOUT', `no reply from the daemon at ${this.daemonPath} within ${this.timeoutMs} ms; is it running?`));
      }
      if (this.inflight.size === 0) {
        clearInterval(this.sendTimer);
        this.sendTimer = undefined;
        if (this.paused) this.maybeResume(); else this.flushSends(); // a large send may wait for the window to empty
      }
    }, Math.max(10, Math.min(1000, this.timeoutMs / 4)));
    this.sendTimer.unref();
  }

  /** The queue's head is a large send: it goes out now, and the queue waits until it is done. */
  private startLarge(s: QueuedSend): void {
    this.largeActive = true;
    this.sendLarge(s.data, s.order, { wait: s.wait, signal: s.signal }).then(() => this.settle(s), (e: Error) => this.settle(s, e)).finally(() => {
      this.largeActive = false;
      this.flushSends();
    });
  }

  /** A large message to a version-2 daemon: after EAGAIN, retry at WRITABLE, not on a fast timer,
   *  since every retry carries the whole message (and the daemon refuses it until WRITABLE). */
  private async sendLarge(bytes: Uint8Array, order: Order, options: SendOptions): Promise<void> {
    for (;;) {
      const seen = this.writableCount;
      try {
        await this.sendParts(bytes, order, options.signal);
        return;
      } catch (e) {
        if (!isClusterError(e, 'EAGAIN') || options.wait === false) throw e;
      }
      if (this.writableCount === seen) await this.waitWritable(options.signal);
    }
  }

  /** Until WRITABLE, LARGE_RETRY_MS (in case it was dropped), or `signal` aborts (ECANCELED). */
  private async waitWritable(signal?: AbortSignal): Promise<void> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), LARGE_RETRY_MS);
    const onAbort = (): void => ctl.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.writableSignal.wait(ctl.signal);
    } catch { /* timed out or aborted */ } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    if (signal?.aborted) throw cancelled(signal);
  }

  /** A message larger than one datagram, as SEND_PART fragments; any error makes the daemon drop it whole. */
  private async sendParts(bytes: Uint8Array, order: Order, signal?: AbortSignal): Promise<void> {
    this.nextMsgId = (this.nextMsgId + 1) >>> 0;
    const msgId = this.nextMsgId;
    for (let offset = 0; offset < bytes.length; offset += SEND_PART_DATA_MAX) {
      const data = bytes.subarray(offset, offset + SEND_PART_DATA_MAX);
      await this.call({ type: 'sendPart', id: 0, order, msgId, total: bytes.length, offset, data }, signal);
    }
  }

  async members(options: { signal?: AbortSignal } = {}): Promise<Member[]> {
    const r = await this.call({ type: 'members', id: 0 }, options.signal);
    return r.result.type === 'members' ? [...r.result.members] : [];
  }

  /** The members of the group with who they are: uid and gid of each member's socket, by the
   *  kernel's word on its node (identity absent when its node did not say); EPROTO from a daemon
   *  that does not know MEMBER_INFO. */
  async memberInfo(options: { signal?: AbortSignal } = {}): Promise<MemberInfo[]> {
    const r = await this.call({ type: 'memberInfo', id: 0 }, options.signal);
    return r.result.type === 'memberInfo' ? [...r.result.members] : [];
  }

  async localNode(options: { signal?: AbortSignal } = {}): Promise<LocalNode> {
    const r = await this.call({ type: 'localNode', id: 0 }, options.signal);
    if (r.result.type !== 'localNode') throw new ClusterError('EPROTO', 'bad local node reply');
    return r.result.node;
  }

  /** The node's quorum state and every configured node with its votes (version 3 daemons). */
  async quorum(options: { signal?: AbortSignal } = {}): Promise<QuorumInfo> {
    if (this.version < VERSION_VIEWS) throw new ClusterError('EOPNOTSUPP', 'this daemon is older than protocol version 3 and knows no quorum');
    const r = await this.call({ type: 'quorum', id: 0 }, options.signal);
    if (r.result.type !== 'quorum') throw new ClusterError('EPROTO', 'bad quorum reply');
    return r.result.quorum;
  }

  /** The daemon's counters: node.*, bridge.*, groups.*, driver.* */
  async stats(options: { signal?: AbortSignal } = {}): Promise<Record<string, StatValue>> {
    const r = await this.call({ type: 'stats', id: 0 }, options.signal);
    if (r.result.type !== 'stats') throw new ClusterError('EPROTO', 'bad stats reply');
    return { ...r.result.stats };
  }

  /** Leave the group (if bound), tell the daemon, and end the event stream. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.call({ type: 'close', id: 0 }, AbortSignal.timeout(Math.min(this.timeoutMs, 2000)));
    } catch { /* the daemon may be gone; our socket goes anyway, and its death is noticed there */ }
    this.shutdown();
  }

  [Symbol.asyncIterator](): AsyncIterator<SocketEvent> {
    return this.events[Symbol.asyncIterator]();
  }

  /** Every event to `listener`, in order, in place of `for await`: those waiting at once, before
   *  listen returns, then those of each datagram in a microtask just after it (one per datagram,
   *  not per event; never from inside the library's own handling, which what the listener calls
   *  would re-enter). No promise per event, so a reader of many small messages spends less per
   *  message. listen(undefined) goes back to `for await`. One reader at a time: EINVAL while a
   *  `for await` loop waits, and the loop's next step is refused while a listener is set. An
   *  exception the listener throws is Node's uncaught exception, as from any socket's callback;
   *  the events after it still come. A listener is never behind (it takes each datagram's events
   *  before the next is read), so the socket never leaves its group for an unread queue
   *  (ENOBUFS); a listener that is slow holds up this process, and the daemon's own bound
   *  applies. The stream's end is not a call: an end this socket did not ask for (close()) comes
   *  after an error event (ECONNREFUSED: the daemon went away or restarted). */
  listen(listener: ((ev: SocketEvent) => void) | undefined): void {
    this.events.listen(listener);
  }

  /** Every keepaliveMs, when nothing else was asked: does the daemon still know us? */
  private startKeepalive(ms: number): void {
    if (ms <= 0) return;
    this.keepalive = setInterval(() => {
      if (this.pending.size > 0 || this.inflight.size > 0) return;
      this.call({ type: 'localNode', id: 0 }).catch((e: unknown) => { if (daemonLost(e)) this.lost(e as Error); });
    }, ms);
    this.keepalive.unref();
  }

  /** The daemon went away: the stream ends with an error event saying so. */
  private lost(e: Error): void {
    if (this.closed) return;
    this.events.force({ type: 'error', code: 'ECONNREFUSED', message: `the daemon at ${this.daemonPath} went away or restarted (${e.message}); open a new socket` });
    this.shutdown();
  }

  private identity(): HelloResult {
    if (!this.hello) throw new ClusterError('ENOTCONN', 'the socket is not open');
    return this.hello;
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    clearInterval(this.sendTimer);
    clearTimeout(this.retryTimer);
    for (const p of this.pending.values()) p.reject(new ClusterError('ECANCELED', 'the socket was closed'));
    this.pending.clear();
    const sends = [...this.queue.slice(this.queueHead), ...this.inflight.values(), ...this.refused, ...(this.streaming ? [this.streaming] : [])];
    this.streaming = undefined;
    this.streamBytes = 0;
    this.parts.clear();
    this.queue = []; this.queueHead = 0; this.inflight.clear(); this.refused = [];
    for (const s of sends) this.settle(s, new ClusterError('ECANCELED', 'the socket was closed'));
    this.events.end();
    this.sock.removeAllListeners();
    try { this.sock.close(); } catch { /* already closed */ }
    try { unlinkSync(this.clientPath); } catch { /* already gone */ }
    openPaths.delete(this.clientPath);
  }

  /** The datagram is read as a plain Uint8Array: a message's data is a view of it, and a Buffer's
   *  views are Buffers, built through Node's own subarray (about 8% of a receiving client's
   *  time at 1300 B; docs/BENCH.md). */
  private datagram(buf: Buffer): void {
    const bytes = plainBytes(buf);
    if (!isBatch(bytes)) this.single(bytes);
    else if (!visitBatch(bytes, this.item)) this.badDatagrams++;
    if (!this.closed) this.afterDatagram();
  }

  /** One item of a BATCH container, read where it lies (single). */
  private readonly item = (bytes: Uint8Array, at: number, n: number): void => {
    if (!this.closed) this.single(bytes, at, n);
  };

  /** The hot path: a SEND's reply (10 bytes: header and status) to a send in flight, read where
   *  it lies without decoding objects; false for anything else. */
  private sendReplyAt(bytes: Uint8Array, at: number, n: number): boolean {
    if (n !== 10 || (bytes[at + 3] !== REPLY_SEND && bytes[at + 3] !== REPLY_SEND_PART) || bytes[at] !== 0x41 || bytes[at + 1] !== 0x46
      || this.inflight.size === 0) return false;
    return this.sendReply(readU32(bytes, at + 4), (bytes[at + 8] << 8) | bytes[at + 9]);
  }

  /** A datagram, or a container's item where it lies: a SEND's reply and a MESSAGE event (one per
   *  message) read without a view of the item or a decoded header; anything else decoded whole. */
  private single(bytes: Uint8Array, at = 0, n = bytes.length): void {
    if (this.sendReplyAt(bytes, at, n)) return;
    const ev = readMessageAt(bytes, at, n);
    if (ev) { this.event(ev); return; }
    const d = decodeDaemonDatagram(at === 0 && n === bytes.length ? bytes : bytes.subarray(at, at + n));
    switch (d.type) {
      case 'bad': this.badDatagrams++; return;
      case 'batch': this.badDatagrams++; return; // a container inside one: visitBatch refuses it
      case 'reply': {
        const p = this.pending.get(d.reply.id);
        if (p) p.resolve(d.reply);
        else if (d.reply.op === REPLY_SEND || d.reply.op === REPLY_SEND_PART) this.sendReply(d.reply.id, d.reply.status);
        return;
      }
      case 'writable': return this.daemonWritable();
      case 'event': return this.event(d.event);
      case 'part': return this.part(d.part);
    }
  }

  /** Fragments of one large message arrive consecutively; anything else discards the partial. */
  private part(p: MessagePart): void {
    if (p.offset === 0) {
      // Not zeroed: the message is handed on only once every byte of it has arrived.
      this.partial = p.total <= PART_TOTAL_MAX ? { head: p, buf: allocBytesToFill(p.total), received: 0 } : undefined;
    }
    const cur = this.partial;
    if (!cur || cur.head.msgId !== p.msgId || cur.received !== p.offset || cur.buf.length !== p.total
      || p.offset + p.data.length > p.total) {
      this.partial = undefined;
      this.badDatagrams++;
      return;
    }
    cur.buf.set(p.data, p.offset);
    cur.received += p.data.length;
    if (cur.received < cur.buf.length) return;
    this.partial = undefined;
    this.event({ type: 'message', group: cur.head.group, sender: cur.head.sender, order: cur.head.order, data: cur.buf });
  }

  private event(ev: SocketEvent): void {
    if (ev.type === 'error' && ev.code === 'ECONNREFUSED') { // the daemon is stopping
      this.events.force(ev);
      this.shutdown();
      return;
    }
    if (this.overrun) return;
    if (this.events.push(ev)) return;
    // Nobody reads: behave as the daemon does with a slow socket, and leave the group.
    this.overrun = true;
    this.events.force({ type: 'error', code: 'ENOBUFS', message: 'this socket fell behind (its event queue overflowed) and left its group; read faster, then bind again' });
    this.call({ type: 'unbind', id: 0 }).catch(() => { /* not bound any more, or closing */ });
  }

  /** One request, its reply. Rejects with the reply's errno, ETIMEDOUT or ECANCELED. */
  private call(req: Request, signal?: AbortSignal): Promise<Reply & { result: ReplyResult }> {
    if (this.closed) return Promise.reject(new ClusterError('ENOTCONN', 'the socket is closed; open a new one'));
    const bad = badSignal(signal);
    if (bad) return Promise.reject(bad);
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    // Sends queued for this tick go first: a request made after them must not overtake them.
    if (this.queueHead < this.queue.length) this.flushSends();
    const id = this.allocId();
    const bytes = encodeRequest({ ...req, id });
    return new Promise((resolve, reject) => {
      const onAbort = (): void => fail(cancelled(signal as AbortSignal));
      // First: were it to throw (a signal-like object that badSignal() let through), the promise
      // rejects before a timer is set.
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => fail(new ClusterError('ETIMEDOUT', `no reply from the daemon at ${this.daemonPath} within ${this.timeoutMs} ms; is it running?`)), this.timeoutMs);
      const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', onAbort); this.pending.delete(id); };
      const fail = (e: Error): void => { done(); reject(e); };
      this.pending.set(id, {
        done, reject: fail,
        resolve: (r) => {
          done();
          if (r.status === 0 && r.op !== OP_PROTOCOL_ERROR && r.op === (OP[req.type] | REPLY_BIT)) resolve(r);
          else reject(statusError(r, req.type));
        },
      });
      this.transmit(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), SEND_RETRY_MIN_MS, id);
    });
  }

  /** The next request id (1 to 2^32 - 1, wrapping). */
  private allocId(): number {
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    return this.nextId;
  }

  /** Send a request datagram; the daemon's kernel queue may be full (EAGAIN): retry shortly. */
  private transmit(buf: Buffer, delay: number, id: number): void {
    if (!this.pending.has(id) || this.closed) return;
    const name = sendUnix(this.sock, buf, this.daemonPath);
    if (name === undefined) return;
    if (name === 'EAGAIN' || name === 'ENOBUFS') {
      setTimeout(() => this.transmit(buf, Math.min(delay * 2, SEND_RETRY_MAX_MS), id), delay);
      return;
    }
    const failure = this.reachError(name);
    this.pending.get(id)?.reject(failure);
    if (failure.code === 'ECONNREFUSED' && this.hello) this.lost(failure);
  }
}
