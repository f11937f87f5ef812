// The AF bridge as a state machine: the socket table and the bridge protocol, with no socket,
// timer or clock of its own (the shell, core/af/bridge.ts, binds it to the unix socket; the
// simulator to in-memory channels). Datagrams come in with the path they came from
// (datagram()), time passes (tick()), and everything goes out through the host: replies and
// events through one channel per client, opened at HELLO, each behind a bounded receive queue
// (outbox.ts). Every datagram is decoded by the pure codec; malformed ones get EPROTO/EINVAL or
// are dropped and counted; none changes another socket's state (docs/ARCHITECTURE.md, "The bridge").
//
// FLOW CONTROL, from the driver to the client's send window (one description, here):
// 1. The driver's send queue is bounded; multicast() throws EAGAIN when full and calls writable()
//    at its low mark (core/driver/packing.ts: closed after a refusal until half empty).
// 2. The group layer passes EAGAIN up, and also refuses data while its own control messages
//    (joins, leaves, reports) wait, so data never overtakes its sender's join; it calls
//    onWritable once both are clear (core/groups/service.ts).
// 3. Here: a version-2 socket refused EAGAIN is FENCED (every later SEND answered EAGAIN until one
//    carries RESUME), so pipelined sends cannot overtake the refused one; it is told WRITABLE once
//    when (2) says so. A large message's first part is refused while its socket waits.
// 4. The client (sockapi/client.ts) keeps a window of sends in flight; on EAGAIN it stops, waits
//    for every reply and for WRITABLE, then resends the refused ones in order, the first with RESUME.
// The other direction is bounded per client by its receive queue (outbox.ts): a client that
// does not read is removed from its group (overrun) and told ENOBUFS.
import { ClusterError, ERROR_NUMBERS, eagain, isClusterError, type ErrorCode } from '../api/errors.ts';
import type { LogLevel, Order } from '../driver/types.ts';
import { formatRingId } from '../driver/types.ts';
import type { LocalNode, Member, MemberIdentity, MemberInfo, SocketEvent } from '../api/types.ts';
import {
  DATAGRAM_MAX, GATHER_BYTES_MIN, OP_PROTOCOL_ERROR, SEND_HEADER_BYTES, messageBytesOf, plainSendAt, sendIdAt, messageEventBytes, datagramMax, decodeClientDatagram, decodeClientItem, isBatch, visitBatch, gatheredMessage, encodeErrorEvent, encodeEvent, encodeMessageDatagrams, encodeReply,
  encodeStatusReply, encodeWritable, OP, REPLY_BIT, VERSION_BATCH, VERSION_IDENTITIES, VERSION_LARGE, VERSION_STREAM, VERSION_VIEWS,
  type ClientDatagram, type QuorumInfo, type ReplyResult, type Request, type StatValue,
} from './codec.ts';
import { CONTAINER_ITEM_MAX, Outbox, type ClientChannel } from './outbox.ts';
import { eventParts } from '../groups/service.ts';
import { dataHeaderBytes } from '../groups/codec.ts';
import { copyBytes, viewOf, type ByteParts } from '../wire/bytes.ts';
import { dropParts, hold } from '../wire/lease.ts';
import type { AccessPolicy } from './access.ts';

/** sun_path holds 108 bytes with the terminating NUL. */
export const UNIX_PATH_MAX = 107;

/** Where the service hands a local endpoint its events (core/groups' EndpointSink). */
export interface EndpointSink {
  event(ev: SocketEvent): boolean;
  messageAt?(group: string, sender: Member, order: Order, from: Uint8Array, start: number, end: number): boolean | undefined;
  overrun(): void;
}

/** What the bridge needs of a GroupService endpoint (core/groups' LocalEndpoint). */
export interface BridgeEndpoint {
  readonly member: Member;
  bind(group: string, opts?: { selfDelivery?: boolean }): void;
  unbind(): void;
  send(data: Uint8Array | readonly Uint8Array[], order: Order): void;
  members(): Member[];
  /** The members with who they are (MEMBER_INFO). */
  memberInfo(): MemberInfo[];
  close(reason?: 'leave' | 'procdown'): void;
}

/** What the bridge needs of the GroupService. */
export interface BridgeGroups {
  open(local: { pid: number; port: number; identity?: MemberIdentity }, sink: EndpointSink): BridgeEndpoint;
  processDown(pid: number): void;
  localNode(): LocalNode;
  quorumInfo(): QuorumInfo;
  stats(): Readonly<Record<string, number>>;
  /** Every group this node knows, with its members (for the live views). */
  groups?(): { group: string; members: readonly Member[] }[];
  /** Time passed (about once a second): last_man_standing's window. */
  tick?(): void;
}

/** Groups listed by name in a STATS reply at most (it must fit one datagram). */
export const STATS_GROUPS_MAX = 32;

export type BridgeLog = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** Everything the bridge needs from outside: clock, deferral, channels to clients, processes. */
export interface BridgeHost {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Run `fn` once the current burst of work is over (setImmediate in the shell). */
  defer(fn: () => void): void;
  /** A channel to the client socket bound at `path`, or the errno name when it cannot be reached.
   *  `onWritable` is called when a channel that answered 'again' takes datagrams again. `large`:
   *  the channel must send datagrams of up to LARGE_DATAGRAM_MAX (version 5), else EMSGSIZE. */
  connect(path: string, onWritable: () => void, large: boolean): ClientChannel | string;
  /** Best effort, to a path without a channel (a refused HELLO, a request before HELLO). */
  sendTo(path: string, bytes: Uint8Array, onFailed: () => void): void;
  /** Is this process alive? (kill(pid, 0) in the shell) */
  processAlive(pid: number): boolean;
  /** The shell's sockets send and receive datagrams of up to LARGE_DATAGRAM_MAX whole (the
   *  native sockets): HELLO may say version 5. */
  readonly largeDatagrams?: boolean;
  /** Is the client's socket file still at its path (a client that closed without CLOSE)?
   *  `file`: the identity's token: the same file, not another one bound there since. */
  clientExists(path: string, file?: string): boolean;
  /** Who the client bound at `path` is, by the kernel's word, given the pid its HELLO claims;
   *  or the errno to refuse the HELLO with (ESRCH: no such process; EACCES: the kernel's
   *  records contradict the claim; ENOENT: no socket file at the path). The shell reads the
   *  socket file and /proc (core/af/peercred.ts); the simulator knows its clients. */
  identify(path: string, claimedPid: number): ClientIdentity | ErrorCode;
}

/** A client's identity as the daemon established it at HELLO (docs/PROTOCOL.md, HELLO). */
export interface ClientIdentity {
  /** The process that holds the socket: the pid HELLO claimed, once checked. */
  readonly pid: number;
  /** Owner and group of the client's socket file: the user whose process bound it. */
  readonly uid: number;
  readonly gid: number;
  /** The groups the client counts as a member of in access rules: `gid` and the process's
   *  supplementary groups. */
  readonly groups: readonly number[];
  /** true: the kernel shows the process holds the socket; false: the daemon could not look
   *  (another user's process, a daemon that is not root) and only checked the process's user. */
  readonly verified: boolean;
  /** Opaque: which file was at the path (so another file bound there later is not this client). */
  readonly file?: string;
}

export interface BridgeOptions {
  readonly nodeId: number;
  readonly driver: string;
  readonly groups: BridgeGroups;
  /** The runtime's counters, flat, with their own prefixes (driver.*, transport.*, ...). */
  readonly runtimeStats: () => Readonly<Record<string, StatValue>>;
  readonly limits: { readonly socketsMax: number; readonly recvQueueMax: number; readonly recvQueueBytesMax: number; readonly recvStallMs: number };
  /** Largest SEND payload, told to clients in the HELLO reply. */
  readonly messageSizeMax: number;
  /** The driver's Driver.multicastCopiesUpTo: a message (with its group header) of at most this
   *  many bytes is copied into the driver's frames before multicast() returns, so its payload is
   *  handed on as a view of the client's datagram, with no kept copy. Absent: always kept(). */
  readonly multicastCopiesUpTo?: number;
  /** The driver's Driver.multicastHolds: it holds whatever it keeps of a message, so a client's
   *  datagram may be released once the bridge and the driver let go of it (the shell does, with
   *  the datagrams the native helper reads: core/wire/lease.ts). */
  readonly multicastHolds?: boolean;
  readonly log: BridgeLog;
  /** A half-sent message that gets no part for this long is dropped (default PARTIAL_IDLE_MS). */
  readonly partialIdleMs?: number;
  /** Who may join, send to and receive from which groups ([access]; absent: everyone everything). */
  readonly access?: AccessPolicy;
}

/** A message arriving in SEND_PART fragments: the parts so far, each copied, assembled at the
 *  last one. It is charged for what has arrived (PARTIAL_OVERHEAD plus the bytes), never for the
 *  total it announces, so a first part of 1 byte claiming 1 MiB costs 1 byte and the overhead. */
interface Partial {
  readonly order: Order;
  readonly total: number;
  readonly chunks: Uint8Array[];
  received: number;
  /** host.now() at its last part. */
  lastPartAt: number;
}

interface Client {
  readonly path: string;
  readonly pid: number;
  readonly ident: ClientIdentity;
  readonly port: number;
  readonly outbox: Outbox;
  readonly endpoint: BridgeEndpoint;
  readonly partials: Map<number, Partial>;
  /** The largest datagram it sends and takes: 64 KiB, or LARGE_DATAGRAM_MAX from version 5. */
  readonly datagramMax: number;
  /** Bytes its half-sent messages are charged (partialCharge). */
  partialBytes: number;
  group?: string;
  /** Version 2: after a SEND answered EAGAIN, every SEND is answered EAGAIN until one carries
   *  RESUME, so pipelined sends cannot overtake the one refused (PROTOCOL.md, section 9). */
  fenced: boolean;
  /** Version 2: the last part of a message was refused EAGAIN; until WRITABLE is sent, a first
   *  part is refused at once, so a retrying client does not send, and the daemon gather and
   *  encode, a whole large message only to be refused again. */
  partsBlocked: boolean;
  /** Version 4: SEND_PART is pipelined; the fence covers every SEND and every part that opens a
   *  message, and is set by a refused part as by a refused SEND (PROTOCOL.md, section 11). */
  readonly stream: boolean;
  /** Removed from its group for falling behind: requests on the group are answered ENOBUFS (not
   *  ENOTCONN) until it binds again, so the reply itself says why (PROTOCOL.md, SEND). */
  evicted: boolean;
  /** What the access rules allowed it in the group of its last bind. */
  maySend: boolean;
  mayReceive: boolean;
  /** No longer in the socket table (closed, gone, or replaced by a new HELLO at its path). */
  removed: boolean;
}

const NONE: ReplyResult = { type: 'none' };

/** A request other than SEND the send fence refuses: (version 4) a part opening a message
 *  without RESUME. (A SEND without RESUME: sendRequest.) */
function fencedOut(c: Client, req: Request): boolean {
  return req.type === 'sendPart' && c.stream && req.offset === 0 && !req.resume;
}

/** Messages a socket may have half-sent at once. */
export const PARTIALS_PER_SOCKET_MAX = 16;
const MiB = 1024 * 1024;
/** Half-sent messages of the whole node: at least this many bytes (more when messages may be larger). */
export const PARTIAL_BYTES_MIN = 64 * MiB;
/** One user's half-sent messages get at most this share of the node's bytes. */
export const PARTIAL_USER_SHARE = 4;
/** What a half-sent message costs beyond its bytes (its record, its first part's copy). */
export const PARTIAL_OVERHEAD = 1024;

/** The byte bounds on half-sent messages (docs/PROTOCOL.md, SEND_PART), from the largest message
 *  M: the node holds max(64 MiB, 8 M); one user (by uid, over all its sockets) a quarter of that;
 *  one socket 4 M or the user's bound, whichever is less. Each is at least 2 M, so every user can
 *  always send a largest message, and one user cannot take the node's room from the others. */
export function partialLimits(messageSizeMax: number): { readonly node: number; readonly user: number; readonly socket: number } {
  const node = Math.max(PARTIAL_BYTES_MIN, 8 * messageSizeMax);
  const user = Math.floor(node / PARTIAL_USER_SHARE);
  return { node, user, socket: Math.min(user, 4 * messageSizeMax) };
}
/** The node's bound with the default message_size_max (1 MiB). */
export const PARTIAL_BYTES_MAX = partialLimits(MiB).node;
/** A client that gives up on a message half-way (its send aborted or timed out) never sends the
 *  rest: after this long without a part the daemon drops it, so it stops counting against the limits. */
export const PARTIAL_IDLE_MS = 30_000;

const COUNTERS = [
  'datagramsIn', 'dropped', 'badRequests', 'repliesDropped', 'eventsDropped', 'overruns', 'procdowns',
  'socketsOpened', 'socketsClosed', 'helloRefused', 'batchesIn', 'requestsIn', 'writableSent',
  'sendsRefused', 'partialsExpired', 'partialsRefused', 'identityRefused', 'pidUnverified', 'accessDenied',
] as const;

export class BridgeCore {
  private readonly clients = new Map<string, Client>();
  private readonly nextPort = new Map<number, number>();
  private readonly counters: Record<(typeof COUNTERS)[number], number> = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as never;
  /** The last event encoded, for every local member at once: per protocol version class (older than 3, 3, 4, 5). */
  private lastEvent?: SocketEvent;
  private readonly lastBytes: (ByteParts[] | undefined)[] = [undefined, undefined, undefined, undefined];
  private nextMsgId = 0;
  /** Bytes half-sent messages are charged: the node's, and per user (uid). */
  private partialBytes = 0;
  private partialCount = 0;
  private readonly userPartialBytes = new Map<number, number>();
  private readonly partialMax: ReturnType<typeof partialLimits>;
  /** Version-2 sockets answered EAGAIN: each gets one WRITABLE event when the service may take sends again. */
  private readonly waiting = new Set<Client>();
  private readonly writableBytes = encodeWritable();
  private closed = false;
  /** A client socket came out too small for version 5 (logged once: it holds for every client). */
  private warnedSmallSendBuffer = false;

  constructor(private readonly opts: BridgeOptions, private readonly host: BridgeHost) {
    this.partialMax = partialLimits(opts.messageSizeMax);
  }

  /** Stop: every client socket is told and closed (its members leave). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const bye = encodeErrorEvent('ECONNREFUSED', 'the daemon is stopping; this socket is closed');
    for (const c of [...this.clients.values()]) {
      c.outbox.force(bye); // best effort: a client whose queue is full learns it from its keepalive
      this.remove(c, 'leave');
    }
  }

  stats(): Record<string, number> {
    let depth = 0, depthMax = 0, bytes = 0, congestions = 0, datagramsOut = 0, batchesOut = 0;
    for (const c of this.clients.values()) {
      depth += c.outbox.depth;
      depthMax = Math.max(depthMax, c.outbox.depth);
      bytes += c.outbox.queuedBytes;
      congestions += c.outbox.congestions;
      datagramsOut += c.outbox.datagrams;
      batchesOut += c.outbox.batches;
    }
    return {
      ...this.counters, sockets: this.clients.size, queueDepth: depth, queueDepthMax: depthMax, queueBytes: bytes, congestions,
      datagramsOut, batchesOut,
      partials: this.partialCount, partialBytes: this.partialBytes, partialBytesMax: this.partialMax.node,
      partialBytesUserMax: this.partialMax.user, partialBytesSocketMax: this.partialMax.socket,
    };
  }

  /** The service may take sends again (GroupService onWritable): wake the sockets that were refused. */
  writable(): void {
    if (this.waiting.size === 0) return;
    for (const c of this.waiting) {
      // Past the limits: one small event, and a socket whose queue is full must not wait forever.
      c.outbox.force(this.writableBytes);
      c.partsBlocked = false;
      this.counters.writableSent++;
    }
    this.waiting.clear();
  }

  /** Everything the STATS request answers: node, bridge, groups and the runtime's counters. */
  allStats(): Record<string, StatValue> {
    const node = this.opts.groups.localNode();
    const out: Record<string, StatValue> = {
      'node.id': this.opts.nodeId, 'node.driver': this.opts.driver, 'node.ringId': formatRingId(node.ringId),
      'node.members': node.members.join(','),
    };
    const q = node.quorum;
    if (q) {
      Object.assign(out, { 'quorum.quorate': q.quorate ? 1 : 0, 'quorum.votes': q.votes, 'quorum.expected': q.expected, 'quorum.quorum': q.quorum });
      out['quorum.flags'] = q.flags.join(',');
    }
    for (const [k, v] of Object.entries(this.stats())) out[`bridge.${k}`] = v;
    for (const [k, v] of Object.entries(this.opts.groups.stats())) out[`groups.${k}`] = v;
    Object.assign(out, this.opts.runtimeStats());
    for (const g of this.opts.groups.groups?.().slice(0, STATS_GROUPS_MAX) ?? []) {
      const shown = g.members.slice(0, 8).map((m) => `${m.nodeId}/${m.pid}/${m.port}`);
      if (g.members.length > shown.length) shown.push(`+${g.members.length - shown.length} more`);
      out[`group.${g.group}`] = shown.join(' ');
    }
    return out;
  }

  /** One datagram from the client socket at `path` (null or '' for an unbound sender). `buf`
   *  becomes the bridge's: it may keep views into it (a large message's parts, and every SEND's
   *  payload, which goes on to the driver's send queue as it is), so the caller never changes or
   *  reuses it afterwards. */
  datagram(buf: Uint8Array, path: string | null): void {
    if (this.closed) return;
    this.counters.datagramsIn++;
    if (!isBatch(buf)) {
      this.single(decodeClientDatagram(buf, path === null ? DATAGRAM_MAX : this.clients.get(path)?.datagramMax ?? DATAGRAM_MAX), path);
      return;
    }
    // The container's items are read where they lie (no view of each, no list of them). It is
    // counted before them (a STATS among them sees it), and uncounted if it visits nothing.
    // A plain SEND among them goes on with no request object (sendItem), for the client at
    // `path` as the general path would look it up.
    this.counters.batchesIn++;
    let c = path ? this.clients.get(path) : undefined;
    if (!visitBatch(buf, (b, at, n) => {
      if (c?.removed) c = this.clients.get(c.path);
      if (c === undefined || !this.sendItem(c, b, at, n)) this.single(decodeClientItem(b, at, n), path);
    })) {
      this.counters.batchesIn--;
      this.single({ type: 'drop', reason: 'malformed BATCH container' }, path);
    }
  }

  private single(d: ClientDatagram, path: string | null): void {
    if (d.type === 'batch') {
      // Only a container's items could get here, and visitBatch refuses nested containers.
      this.counters.dropped++;
      return;
    }
    this.counters.requestsIn++;
    if (path === null || path === '' || d.type === 'drop') {
      this.counters.dropped++;
      return;
    }
    if (d.type === 'bad') {
      this.counters.badRequests++;
      this.opts.log('debug', 'bad request', { path, reason: d.reason });
      this.answer(path, d.op, d.id, d.status, { type: 'none' });
      return;
    }
    try {
      this.request(path, d.request);
    } catch (e) {
      this.failed(path, d.request.type, d.request.id, e);
    }
  }

  /** A bug below (an assertion): answer, log, keep serving everyone else. */
  private failed(path: string, type: Request['type'], id: number, e: unknown): void {
    this.opts.log('error', 'request failed', { path, op: type, err: String(e) });
    this.answer(path, OP[type] | REPLY_BIT, id, 'EPROTO', { type: 'none' });
  }

  /** A BATCH item of client `c` that is a plain SEND (plainSendAt), read where it lies: what
   *  single() and request() do with it, with no request object. False for any other item. */
  private sendItem(c: Client, b: Uint8Array, at: number, n: number): boolean {
    const order = plainSendAt(b, at, n);
    if (order === undefined) return false;
    this.counters.requestsIn++;
    const id = sendIdAt(b, at);
    try {
      this.sendRequest(c, id, order, viewOf(b, at + SEND_HEADER_BYTES, at + n), false);
    } catch (e) {
      this.failed(c.path, 'send', id, e);
    }
    return true;
  }

  /** A SEND of client `c` (request()'s, or a BATCH item's read where it lies): answered. */
  private sendRequest(c: Client, id: number, order: Order, data: Uint8Array, resume: boolean): void {
    const op = OP.send | REPLY_BIT;
    if (c.evicted) return this.answer(c.path, op, id, 'ENOBUFS', NONE, c);
    if (c.fenced && !resume) {
      // The fence (PROTOCOL.md section 9), answered without an exception: this is a hot path
      // while a pipelining client's window drains after EAGAIN.
      this.waiting.add(c);
      this.counters.sendsRefused++;
      return this.answer(c.path, op, id, 'EAGAIN', NONE, c);
    }
    try {
      if (!c.maySend && c.group !== undefined) this.deny(c, 'send', c.group);
      if (data.length > this.opts.messageSizeMax) {
        throw new ClusterError('EMSGSIZE', `message of ${data.length} bytes is over ${this.opts.messageSizeMax}`);
      }
      if (resume) c.fenced = false; // a fenced send without RESUME was answered above
      this.sendWhole(c, this.keep(c, data), order, 'fenced');
    } catch (e) {
      if (!isClusterError(e)) throw e;
      if (e.code === 'EAGAIN') {
        if (c.outbox.batch) this.waiting.add(c);
        this.counters.sendsRefused++;
      }
      return this.answer(c.path, op, id, e.code as ErrorCode, NONE, c);
    }
    this.answer(c.path, op, id, undefined, NONE, c);
  }

  private request(path: string, req: Request): void {
    // A SEND's op without a keyed lookup (OP[...] with a name that varies is a hash lookup in V8).
    const op = (req.type === 'send' ? OP.send : OP[req.type]) | REPLY_BIT;
    if (req.type === 'hello') {
      if ((req.version ?? 1) >= VERSION_LARGE && !this.host.largeDatagrams) {
        return this.refuseLarge(path, req.id);
      }
      return this.hello(path, req.pid, req.id, req.version ?? 1);
    }
    const c = this.clients.get(path);
    if (!c) {
      this.counters.badRequests++;
      return this.answer(path, op, req.id, 'EPROTO', { type: 'none' });
    }
    if (req.type === 'send') return this.sendRequest(c, req.id, req.order, req.data, req.resume === true);
    if (c.evicted && (req.type === 'sendPart' || req.type === 'unbind' || req.type === 'members' || req.type === 'memberInfo')) {
      return this.answer(path, op, req.id, 'ENOBUFS', NONE, c);
    }
    if (req.type === 'sendPart' && req.resume && !c.stream) {
      this.counters.badRequests++;
      return this.answer(path, op, req.id, 'EINVAL', NONE, c); // RESUME on a part is version 4's
    }
    if (c.fenced && fencedOut(c, req)) {
      // The fence (PROTOCOL.md section 9), answered without an exception: this is a hot path
      // while a pipelining client's window drains after EAGAIN.
      this.waiting.add(c);
      this.counters.sendsRefused++;
      return this.answer(path, op, req.id, 'EAGAIN', NONE, c);
    }
    if (req.type === 'sendPart' && req.offset === 0 && c.partsBlocked) {
      this.waiting.add(c);
      return this.answer(path, op, req.id, 'EAGAIN', NONE, c);
    }
    let result: ReplyResult;
    try {
      result = this.perform(c, req);
    } catch (e) {
      if (!isClusterError(e)) throw e;
      if (e.code === 'EAGAIN' && c.outbox.batch) this.waiting.add(c);
      // Version 4: a refused part (its message dropped) fences the socket as a refused SEND does.
      if (e.code === 'EAGAIN' && req.type === 'sendPart' && c.stream) c.fenced = true;
      return this.answer(path, op, req.id, e.code as ErrorCode, NONE, c);
    }
    this.answer(path, op, req.id, undefined, result, c);
    if (req.type === 'close') this.remove(c, 'leave');
  }

  private perform(c: Client, req: Exclude<Request, { type: 'hello' | 'send' }>): ReplyResult {
    switch (req.type) {
      case 'close': return NONE;
      case 'bind': {
        const may = this.opts.access?.decide(req.group, c.ident);
        if (may && !may.join) this.deny(c, 'join', req.group);
        c.endpoint.bind(req.group, { selfDelivery: req.selfDelivery });
        c.group = req.group;
        c.evicted = false;
        c.maySend = may?.send ?? true;
        c.mayReceive = may?.receive ?? true;
        return NONE;
      }
      case 'unbind':
        c.endpoint.unbind();
        c.group = undefined;
        return NONE;
      case 'sendPart':
        if (!c.maySend && c.group !== undefined) this.deny(c, 'send', c.group);
        this.sendPart(c, req);
        return NONE;
      case 'members': {
        const members = c.endpoint.members();
        return { type: 'members', group: c.group ?? '', members };
      }
      case 'memberInfo': return { type: 'memberInfo', group: c.group ?? '', members: c.endpoint.memberInfo() };
      case 'localNode': return { type: 'localNode', node: this.opts.groups.localNode() };
      case 'stats': return { type: 'stats', stats: this.allStats() };
      case 'quorum': return { type: 'quorum', quorum: this.opts.groups.quorumInfo() };
    }
  }

  /** Refuses a request the access rules do not allow (EACCES), counted and logged. */
  private deny(c: Client, what: 'join' | 'send', group: string): never {
    this.counters.accessDenied++;
    this.opts.log('info', `access denied: ${what}`, { path: c.path, pid: c.pid, uid: c.ident.uid, group, rule: this.opts.access?.ruleFor(group)?.name });
    throw new ClusterError('EACCES', `user ${c.ident.uid} may not ${what === 'join' ? 'bind to' : 'send to'} group "${group}" on this node ([access] rules)`);
  }

  /** A whole SEND's payload as it is handed on: a view of the client's datagram when the driver
   *  copies the message before multicast() returns (it keeps nothing, so no datagram is kept
   *  alive by it), else kept(). Without the copy, one sender at 1300 B delivered 14% more
   *  (docs/BENCH.md). */
  private keep(c: Client, data: Uint8Array): Uint8Array {
    const max = this.opts.multicastCopiesUpTo;
    return max !== undefined && c.group !== undefined && data.length + dataHeaderBytes(c.group) <= max ? data : kept(data);
  }

  /** A whole message to the client's group. When the group layer refuses it (EAGAIN) a version-2
   *  client is blocked (`block`: its sends fenced, or its next large message's first part) until WRITABLE. */
  private sendWhole(c: Client, data: Uint8Array | readonly Uint8Array[], order: Order, block: 'fenced' | 'partsBlocked'): void {
    try {
      c.endpoint.send(data, order);
    } catch (e) {
      if (isClusterError(e, 'EAGAIN') && c.outbox.batch) c[block] = true;
      throw e;
    }
  }

  /** Collect a fragment; the last one sends the whole message. Any error drops the message: the client starts over. */
  private sendPart(c: Client, req: Extract<Request, { type: 'sendPart' }>): void {
    let p = c.partials.get(req.msgId);
    if (req.offset === 0) {
      if (req.resume) c.fenced = false; // request() answered a fenced first part without RESUME already
      if (p) this.dropPartial(c, req.msgId);
      if (req.total > this.opts.messageSizeMax) {
        throw new ClusterError('EMSGSIZE', `message of ${req.total} bytes is over ${this.opts.messageSizeMax}`);
      }
      if (c.group === undefined) throw new ClusterError('ENOTCONN', 'this socket is not bound to a group; bind it before sending');
      // A whole message in one part needs no keeping.
      if (req.data.length === req.total) return this.sendWhole(c, this.keep(c, req.data), req.order, 'partsBlocked');
      if (c.partials.size >= PARTIALS_PER_SOCKET_MAX) {
        this.counters.partialsRefused++;
        throw eagain(`${PARTIALS_PER_SOCKET_MAX} messages of this socket are half-sent; finish some, then retry`);
      }
      p = { order: req.order, total: req.total, chunks: [], received: 0, lastPartAt: this.host.now() };
      this.charge(c, PARTIAL_OVERHEAD + req.data.length);
      c.partials.set(req.msgId, p);
      this.partialCount++;
    } else {
      if (!p || p.order !== req.order || p.total !== req.total) {
        if (p) this.dropPartial(c, req.msgId);
        throw new ClusterError('EINVAL', `part of message ${req.msgId} does not continue it; send parts in offset order, starting at 0`);
      }
      if (req.offset !== p.received) {
        this.dropPartial(c, req.msgId);
        throw new ClusterError('EINVAL', `part at ${req.offset} of message ${req.msgId}: expected offset ${p.received}`);
      }
      try {
        this.charge(c, req.data.length);
      } catch (e) {
        this.dropPartial(c, req.msgId);
        throw e;
      }
    }
    const chunk = kept(req.data);
    p.chunks.push(chunk);
    hold(chunk); // a view of this datagram, kept for the next parts (core/wire/lease.ts)
    p.received += chunk.length;
    p.lastPartAt = this.host.now();
    if (p.received < p.total) return;
    this.dropPartial(c, req.msgId, false);
    // The parts as they are: they go on to the driver behind the group layer's header, and its
    // frames are written from them (Driver.multicast), which holds what it keeps of them.
    try {
      this.sendWhole(c, p.chunks, p.order, 'partsBlocked');
    } finally {
      dropParts(p.chunks);
    }
  }

  /** Charges `bytes` more of half-sent messages to the socket, its user and the node, or
   *  refuses (EAGAIN) when one of the three bounds (partialLimits) would be passed. */
  private charge(c: Client, bytes: number): void {
    const uid = c.ident.uid;
    const user = this.userPartialBytes.get(uid) ?? 0;
    const max = this.partialMax;
    if (c.partialBytes + bytes > max.socket || user + bytes > max.user || this.partialBytes + bytes > max.node) {
      this.counters.partialsRefused++;
      const which = c.partialBytes + bytes > max.socket ? `this socket's ${max.socket}` : user + bytes > max.user ? `your user's ${max.user}` : `the node's ${max.node}`;
      throw eagain(`half-sent messages would pass ${which} bytes; finish or abandon some, then retry`);
    }
    c.partialBytes += bytes;
    this.userPartialBytes.set(uid, user + bytes);
    this.partialBytes += bytes;
  }

  /** Forgets a half-sent message, and lets go of its chunks unless `letGo` is false (its caller
   *  hands them on first). */
  private dropPartial(c: Client, msgId: number, letGo = true): void {
    const p = c.partials.get(msgId);
    if (!p) return;
    c.partials.delete(msgId);
    if (letGo) dropParts(p.chunks);
    this.partialCount--;
    const bytes = PARTIAL_OVERHEAD + p.received;
    c.partialBytes -= bytes;
    this.partialBytes -= bytes;
    const user = (this.userPartialBytes.get(c.ident.uid) ?? 0) - bytes;
    if (user > 0) this.userPartialBytes.set(c.ident.uid, user); else this.userPartialBytes.delete(c.ident.uid);
  }

  private hello(path: string, pid: number, id: number, version: number): void {
    const op = OP.hello | REPLY_BIT;
    const early = this.helloCheck(path, pid);
    const ident = early ?? this.host.identify(path, pid);
    const old = this.clients.get(path);
    // A retried hello: the same identity, if the same process still holds the same file.
    if (old && typeof ident !== 'string' && sameIdentity(old.ident, ident)) return this.helloReply(old, id);
    if (old) this.remove(old, 'procdown'); // the path now belongs to another process (or file)
    if (typeof ident === 'string' || this.clients.size >= this.opts.limits.socketsMax) {
      const code = typeof ident === 'string' ? ident : 'EMFILE';
      this.counters.helloRefused++;
      if (code === 'EACCES') this.counters.identityRefused++;
      this.opts.log('info', 'hello refused', { path, pid, code });
      return this.answer(path, op, id, code, { type: 'none' });
    }
    const holder: { outbox?: Outbox } = {};
    const conn = this.host.connect(path, () => holder.outbox?.writable(), version >= VERSION_LARGE);
    if (conn === 'EMSGSIZE' && version >= VERSION_LARGE) {
      // This socket's send buffer came out smaller than the main socket's (net.core.wmem_max
      // lowered since the start): as for a daemon that cannot take version 5. Said once: it
      // holds for every client until wmem_max is raised.
      if (!this.warnedSmallSendBuffer) {
        this.warnedSmallSendBuffer = true;
        this.opts.log('warn', 'a client socket cannot send version 5 datagrams (its send buffer is under 196640 bytes: net.core.wmem_max was lowered); clients get version 4', { path, pid });
      }
      return this.refuseLarge(path, id);
    }
    if (typeof conn === 'string') {
      this.counters.helloRefused++;
      this.opts.log('warn', 'cannot reach client socket', { path, pid, err: conn });
      return;
    }
    let c: Client;
    try {
      c = this.admit(path, ident, conn, version);
      holder.outbox = c.outbox;
    } catch (e) {
      conn.close();
      if (!isClusterError(e)) throw e;
      this.counters.helloRefused++;
      return this.answer(path, op, id, e.code as ErrorCode, { type: 'none' });
    }
    if (!ident.verified) this.counters.pidUnverified++;
    this.opts.log('debug', 'socket opened', { path, pid, port: c.port, uid: ident.uid, gid: ident.gid, verified: ident.verified });
    this.helloReply(c, id);
  }

  /** What HELLO refuses before asking the host who the client is. */
  private helloCheck(path: string, pid: number): ErrorCode | undefined {
    if (pid < 1 || pid > 0x7fffffff) return 'EINVAL';
    if (Buffer.byteLength(path) > UNIX_PATH_MAX) return 'ENAMETOOLONG';
    return undefined;
  }

  private admit(path: string, ident: ClientIdentity, conn: ClientChannel, version: number): Client {
    const pid = ident.pid;
    const port = this.nextPort.get(pid) ?? 1;
    this.nextPort.set(pid, port + 1);
    const holder: { client?: Client } = {};
    const outbox = new Outbox(conn, { eventsMax: this.opts.limits.recvQueueMax, bytesMax: this.opts.limits.recvQueueBytesMax, stallMs: this.opts.limits.recvStallMs }, {
      now: () => this.host.now(),
      // Later, not now: this can run inside the GroupService's delivery to this very endpoint.
      gone: (errno) => { this.host.defer(() => { if (holder.client) this.gone(holder.client, errno); }); },
      dropped: () => { this.counters.eventsDropped++; },
      defer: (fn) => this.host.defer(fn),
    }, version >= VERSION_BATCH);
    // Throws (EMFILE, EADDRINUSE) before anything is in the table.
    const identity: MemberIdentity = { uid: ident.uid, gid: ident.gid, verified: ident.verified };
    const event = (ev: SocketEvent): boolean => {
      if (ev.type === 'message') {
        if (holder.client?.mayReceive === false) return true; // [access] receive
        // A small message to a client that takes containers is written straight into one.
        if (outbox.batch && eventParts(ev) === undefined && ev.data.length < GATHER_BYTES_MIN) {
          const size = messageEventBytes(ev);
          if (size <= CONTAINER_ITEM_MAX) return outbox.message(ev, size);
        }
      }
      const bytes = this.encodeShared(ev, version);
      return bytes.length === 0 || outbox.event(bytes); // an event this version does not carry is skipped
    };
    const endpoint = this.opts.groups.open({ pid, port, identity }, {
      event,
      // A small message to a client that takes containers, from where it lies in the driver's
      // frame: no event object, no view of the payload unless it must wait. Any other goes
      // through event(), one event shared by every local client (encodeShared).
      messageAt: (group, sender, order, from, start, end) => {
        if (holder.client?.mayReceive === false) return true; // [access] receive
        if (!outbox.batch || end - start >= GATHER_BYTES_MIN) return undefined;
        const size = messageBytesOf(group, end - start);
        return size <= CONTAINER_ITEM_MAX ? outbox.messageOf(group, sender, order, from, start, end, size) : undefined;
      },
      overrun: () => { if (holder.client) this.overrun(holder.client); },
    });
    const c: Client = { path, pid, ident, port, outbox, endpoint, partials: new Map(), partialBytes: 0, fenced: false, partsBlocked: false, stream: version >= VERSION_STREAM, evicted: false,
      datagramMax: datagramMax(version),
      maySend: true, mayReceive: true, removed: false,
    };
    holder.client = c;
    this.clients.set(path, c);
    this.counters.socketsOpened++;
    return c;
  }

  private helloReply(c: Client, id: number): void {
    this.answer(c.path, OP.hello | REPLY_BIT, id, undefined, {
      type: 'hello',
      hello: { nodeId: this.opts.nodeId, pid: c.pid, port: c.port, messageSizeMax: this.opts.messageSizeMax, driver: this.opts.driver },
    });
  }

  /** The service removed this socket from its group: its queue overflowed. Tell it ENOBUFS. */
  private overrun(c: Client): void {
    this.counters.overruns++;
    this.opts.log('warn', 'socket overrun: removed from its group', { path: c.path, pid: c.pid, port: c.port, group: c.group });
    c.group = undefined;
    c.evicted = true;
    const why = c.outbox.refusedFor === 'stalled'
      ? `it read nothing for ${this.opts.limits.recvStallMs} ms while its receive queue was over its bound`
      : 'its receive queue reached twice its bound';
    c.outbox.force(encodeErrorEvent('ENOBUFS',
      `this socket fell behind (${why}) and was removed from its group; read faster, then bind again`));
  }

  /** Message events go to every local member: encode once for all of them. */
  private encodeShared(ev: SocketEvent, version: number): ByteParts[] {
    if (ev !== this.lastEvent) {
      this.lastEvent = ev;
      const l = this.lastBytes; // not fill(): a call into C++ per event
      l[0] = l[1] = l[2] = l[3] = undefined;
      if (ev.type === 'message') this.nextMsgId = (this.nextMsgId + 1) >>> 0;
    }
    const cls = version >= VERSION_LARGE ? 3 : version >= VERSION_IDENTITIES ? 2 : version >= VERSION_VIEWS ? 1 : 0;
    let bytes = this.lastBytes[cls];
    if (bytes === undefined) {
      if (ev.type === 'message') {
        // Version 5: a large message gathered behind its header (the payload is not copied; its
        // parts, if any, larger). Any other is the same bytes in every version: one MESSAGE
        // (every message gatheredMessage leaves fits 64 KiB), or version 4's parts.
        // eventParts: the fragments a message arrived in, when the group layer is core/groups'
        // (another BridgeGroups implementation's messages go as one array).
        const gathered = cls === 3 ? gatheredMessage(ev, this.nextMsgId, eventParts(ev)) : undefined;
        bytes = gathered ?? singleDatagrams(this.lastBytes) ?? encodeMessageDatagrams(ev, this.nextMsgId);
      } else {
        const one = encodeEvent(ev, version);
        bytes = one ? [one] : [];
      }
      this.lastBytes[cls] = bytes;
    }
    return bytes;
  }

  /** `client`: the socket table's entry for `path` when the caller has it (a request's). Had it
   *  been removed meanwhile, its outbox is closed and takes the reply as nothing, as the main
   *  socket's best effort would to a client that is gone. */
  private answer(path: string, op: number, id: number, code: ErrorCode | undefined, result: ReplyResult, client?: Client): void {
    const status = code ? ERROR_NUMBERS[code] : 0;
    const c = client ?? this.clients.get(path);
    if (c && result.type === 'none') { // the hot path: one per SEND, not encoded until it goes out
      if (!c.outbox.status(op, id, status)) this.counters.repliesDropped++;
      return;
    }
    const bytes = result.type === 'none' ? encodeStatusReply(op, id, status) : encodeReply({ type: 'reply', op, id, status, result });
    if (c) {
      if (!c.outbox.reply(bytes)) this.counters.repliesDropped++;
      return;
    }
    // No socket table entry (refused hello, request before hello): best effort from the main socket.
    this.answerFromMain(path, bytes);
  }

  /** HELLO 5 where this daemon's sockets cannot carry its datagrams: answered as a version it
   *  does not know, so the client says HELLO 4. Sent from the main socket: an entry still at this
   *  path may be a dead client's, connected to its file. */
  private refuseLarge(path: string, id: number): void {
    this.counters.badRequests++;
    this.answerFromMain(path, encodeStatusReply(OP_PROTOCOL_ERROR, id, ERROR_NUMBERS.EPROTO));
  }

  /** A reply sent from the main socket, past any socket table entry at `path`. */
  private answerFromMain(path: string, bytes: Uint8Array): void {
    this.host.sendTo(path, bytes, () => { this.counters.repliesDropped++; });
  }

  /** Sending to a client failed because its socket is gone. */
  private gone(c: Client, errno: string): void {
    if (this.clients.get(c.path) !== c) return;
    this.opts.log('info', 'client socket gone', { path: c.path, pid: c.pid, errno });
    if (this.host.processAlive(c.pid)) this.remove(c, 'procdown');
    else this.processDown(c.pid);
  }

  /** Time passed (about once a second): last_man_standing's window, half-sent messages that
   *  expired, clients whose process died or whose socket file is gone (closed without CLOSE). */
  tick(): void {
    if (this.closed) return;
    this.opts.groups.tick?.();
    this.expirePartials();
    const pids = new Set([...this.clients.values()].map((c) => c.pid));
    for (const pid of pids) if (!this.host.processAlive(pid)) this.processDown(pid);
    for (const c of [...this.clients.values()]) {
      if (!this.host.clientExists(c.path, c.ident.file)) {
        this.opts.log('info', 'client socket file gone without CLOSE: procdown', { path: c.path, pid: c.pid });
        this.remove(c, 'procdown');
      }
    }
  }

  private expirePartials(): void {
    if (this.partialBytes === 0) return;
    const before = this.host.now() - (this.opts.partialIdleMs ?? PARTIAL_IDLE_MS);
    for (const c of this.clients.values()) {
      for (const [msgId, p] of c.partials) {
        if (p.lastPartAt >= before) continue;
        this.dropPartial(c, msgId);
        this.counters.partialsExpired++;
      }
    }
  }

  private processDown(pid: number): void {
    this.counters.procdowns++;
    this.opts.log('info', 'client process died without closing: procdown', { pid });
    for (const c of [...this.clients.values()]) {
      if (c.pid !== pid) continue;
      this.clients.delete(c.path);
      c.removed = true;
      this.waiting.delete(c);
      for (const id of [...c.partials.keys()]) this.dropPartial(c, id);
      c.outbox.close();
      this.counters.socketsClosed++;
    }
    this.nextPort.delete(pid);
    this.opts.groups.processDown(pid);
  }

  private remove(c: Client, reason: 'leave' | 'procdown'): void {
    if (this.clients.get(c.path) !== c) return;
    this.clients.delete(c.path);
    c.removed = true;
    this.waiting.delete(c);
    for (const id of [...c.partials.keys()]) this.dropPartial(c, id);
    this.counters.socketsClosed++;
    try { c.endpoint.close(reason); } catch (e) { this.opts.log('warn', 'endpoint close failed', { path: c.path, err: String(e) }); }
    c.outbox.close();
  }
}

function sameIdentity(a: ClientIdentity, b: ClientIdentity): boolean {
  return a.pid === b.pid && a.uid === b.uid && a.gid === b.gid && a.file === b.file;
}

/**
 * A message's bytes as the bridge keeps them (a half-sent message's parts) and hands them on (the
 * driver holds them until they are in frames; BridgeCore.keep skips this for a SEND the driver
 * copies before multicast() returns). The datagram's buffer is the bridge's to keep (the
 * host never reuses it): bytes that fill at least half of it stay a view, with no copy; fewer (a
 * small send in a container of others, or beside filler) are copied, so that what a queued message
 * keeps alive is at most twice its size, or one 32 KiB slab, whatever a client packs around it
 * (a copy of up to 4 KiB comes from core/wire's shared slab: a fresh store for each cost 4% of a
 * sending daemon at 1300 bytes).
 */
function kept(data: Uint8Array): Uint8Array {
  return data.byteLength * 2 >= data.buffer.byteLength ? data : copyBytes(data);
}

/** The first of an event's encodings that is all single arrays (no datagram given as parts): the
 *  same bytes serve every version that takes them. A loop, not find() and every() with closures:
 *  this runs for every message event. */
function singleDatagrams(encodings: readonly (ByteParts[] | undefined)[]): ByteParts[] | undefined {
  next: for (const e of encodings) {
    if (e === undefined) continue;
    for (const d of e) if (!(d instanceof Uint8Array)) continue next;
    return e;
  }
  return undefined;
}
