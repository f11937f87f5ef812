// The bridge protocol codec (docs/PROTOCOL.md): pure encode and decode of the datagrams that
// local processes and the daemon exchange over the unix socket. One request, reply or event per
// datagram, or (version 2) many of them in one BATCH container; big-endian; an 8-byte header
// (magic, version, op, request id). Decoding never throws: hostile bytes come back as a `bad`
// result that says which errno the daemon answers with.
import { ERROR_NUMBERS, errorCodeFromNumber, type ErrorCode } from '../api/errors.ts';
import type { Order, RingId } from '../driver/types.ts';
import { allocBytesToFill, bytePartsLength, concatBytes, copyInto, LastDecoded, rangeOf, readU32, viewOf, writeU16, writeU32, type ByteParts } from '../wire/bytes.ts';
import { Reader, WireError } from '../wire/reader.ts';
import { Writer } from '../wire/writer.ts';
import type {
  ChangeReason, LocalNode, Member, MemberChange, MemberIdentity, MemberInfo, MembershipEvent, MessageEvent, QuorumFlag, QuorumInfo, QuorumState, SocketEvent,
} from '../api/types.ts';

export type { QuorumInfo };

export const MAGIC = 0x4146; // "AF"
/** The version byte of single requests, replies and events (unchanged since version 1). */
export const VERSION = 1;
export const HEADER_BYTES = 8;
/** Version 2 adds BATCH containers both ways, the WRITABLE event and SEND's RESUME flag; a client
 *  says it speaks it by sending HELLO with version byte 2 (docs/PROTOCOL.md, section 9). */
export const VERSION_BATCH = 2;
/** Version 3 adds view ids and the quorum state to membership events (MEMBERSHIP_V3), the QUORUM
 *  event and request; a client says it speaks it with HELLO version byte 3 (docs/PROTOCOL.md, section 10).
 *  Everything of version 2 stays: BATCH containers keep version byte 2. */
export const VERSION_VIEWS = 3;
/** Version 4 adds two things a client says it speaks with HELLO version byte 4 (docs/PROTOCOL.md,
 *  section 11): who each member is (uid, gid, verified) in membership events (MEMBERSHIP_V4),
 *  and streamed large messages: a client may pipeline SEND_PART requests (parts of many messages
 *  in flight, no round trip per part); the send fence covers SEND_PART, and a part opening a
 *  message may carry RESUME. Everything of version 3 stays. */
export const VERSION_IDENTITIES = 4;
export const VERSION_STREAM = 4;
/** Version 5 adds one thing (docs/PROTOCOL.md, section 12): datagrams of up to LARGE_DATAGRAM_MAX
 *  bytes both ways, so a SEND or a MESSAGE carries up to that much, and SEND_PART and
 *  MESSAGE_PART parts are that large. A client says it speaks it with HELLO version byte 5 only
 *  when its socket receives such datagrams whole; a daemon whose sockets do not answers EPROTO
 *  (the client then says HELLO 4). Everything of version 4 stays; BATCH containers stay 64 KiB. */
export const VERSION_LARGE = 5;
/** The newest version this code speaks. */
export const VERSION_MAX = 5;
/** A container of many single datagrams (version 2 only; never nested). */
export const OP_BATCH = 0x46;
/** Container header: the 8-byte header and a u16 item count; each item: u16 length, then the datagram. */
export const BATCH_HEADER_BYTES = HEADER_BYTES + 2;
export const BATCH_ITEM_OVERHEAD = 2;
/** SEND flags (version 2): RESUME clears the daemon's send fence after EAGAIN (PROTOCOL.md section 9). */
export const SEND_RESUME = 0x01;
/**
 * The largest datagram either side sends. unix-dgram receives into a 64 KiB buffer and cuts
 * longer datagrams silently, so a datagram of 65536 bytes may have been longer: refused (EMSGSIZE).
 */
export const DATAGRAM_MAX = 65535;
/** Version 5: the largest datagram either side sends (192 KiB: a unix datagram must fit the
 *  sender's send buffer, 208 KiB by default on Linux, less 32 bytes). */
export const LARGE_DATAGRAM_MAX = 196_608;

/** The largest datagram a socket of `version` sends and takes. */
export function datagramMax(version: number): number {
  return version >= VERSION_LARGE ? LARGE_DATAGRAM_MAX : DATAGRAM_MAX;
}

/** Request ops; a reply carries the request's op with the high bit set. */
export const OP = {
  hello: 0x01, close: 0x02, bind: 0x03, unbind: 0x04, send: 0x05, members: 0x06,
  localNode: 0x07, stats: 0x08, sendPart: 0x09, quorum: 0x0a, memberInfo: 0x0b,
} as const;
export type RequestType = keyof typeof OP;
export const REPLY_BIT = 0x80;
/** Reply to a datagram whose op or version the daemon does not know. */
export const OP_PROTOCOL_ERROR = 0xff;
export const EVENT_OP = {
  message: 0x41, membership: 0x42, error: 0x43, messagePart: 0x44, writable: 0x45,
  /** Version 3: MEMBERSHIP with view id and quorum, and QUORUM. */
  membershipV3: 0x47, quorum: 0x48,
  /** Version 4: MEMBERSHIP_V3 with who each member is. */
  membershipV4: 0x49,
} as const;

/** Bytes before the payload: SEND (order, flags) and SEND_PART (order, flags, msg id, total, offset). */
export const SEND_HEADER_BYTES = HEADER_BYTES + 2;
export const SEND_PART_HEADER_BYTES = HEADER_BYTES + 14;
/** Largest payload one SEND carries; larger messages go as SEND_PART fragments. */
export const SEND_DATA_MAX = DATAGRAM_MAX - SEND_HEADER_BYTES;
export const SEND_PART_DATA_MAX = DATAGRAM_MAX - SEND_PART_HEADER_BYTES;

const ORDERS: readonly Order[] = ['fifo', 'agreed', 'safe'];
/** An order's wire code (its index in ORDERS; -1, written as 255, for no order), without
 *  indexOf's search on the per-message paths. */
function orderCode(o: Order): number {
  return o === 'agreed' ? 1 : o === 'safe' ? 2 : o === 'fifo' ? 0 : -1;
}
const REASONS: readonly ChangeReason[] = ['join', 'leave', 'nodedown', 'procdown', 'overrun'];
const KINDS = ['regular', 'transitional'] as const;
const REQUEST_TYPES = new Map<number, RequestType>(
  Object.entries(OP).map(([name, op]) => [op, name as RequestType]));
/** BIND flags. */
export const BIND_SELF_DELIVERY = 0x01;
const MEMBER_BYTES = 12;
const RING_ID_BYTES = 12;
/** Who a member is: uid, gid, flags (MEMBER_INFO, MEMBERSHIP_V4). */
const IDENTITY_BYTES = 9;
/** MEMBER_INFO's entry: member, uid, gid, flags. */
const MEMBER_INFO_BYTES = MEMBER_BYTES + IDENTITY_BYTES;
/** MEMBER_INFO flags: the member's daemon saw its process hold its socket. */
export const MEMBER_VERIFIED = 0x01;
/** MEMBER_INFO's uid and gid of a member whose node did not say who it is. */
export const UNKNOWN_ID = 0xffffffff;

export type Request =
  /** version: the header's version byte; 2 = this client reads BATCH containers and WRITABLE. */
  | { readonly type: 'hello'; readonly id: number; readonly pid: number; readonly version?: number }
  | { readonly type: 'close'; readonly id: number }
  | { readonly type: 'bind'; readonly id: number; readonly group: string; readonly selfDelivery: boolean }
  | { readonly type: 'unbind'; readonly id: number }
  | { readonly type: 'send'; readonly id: number; readonly order: Order; readonly data: Uint8Array; readonly resume?: boolean }
  | { readonly type: 'members'; readonly id: number }
  | { readonly type: 'localNode'; readonly id: number }
  | { readonly type: 'stats'; readonly id: number }
  /** Version 3: the quorum state and the configured nodes with their votes. */
  | { readonly type: 'quorum'; readonly id: number }
  /** The members of the socket's group with who they are (uid, gid; any version). */
  | { readonly type: 'memberInfo'; readonly id: number }
  /** One fragment of a message too large for one SEND; parts of a message go in offset order. */
  | {
    readonly type: 'sendPart'; readonly id: number; readonly order: Order; readonly msgId: number;
    readonly total: number; readonly offset: number; readonly data: Uint8Array;
    /** Version 4, on a part at offset 0: clears the send fence (as SEND's RESUME). */
    readonly resume?: boolean;
  };

/** One fragment of a message event too large for one datagram; fragments arrive consecutively. */
export interface MessagePart {
  readonly group: string;
  readonly sender: Member;
  readonly order: Order;
  readonly msgId: number;
  readonly total: number;
  readonly offset: number;
  readonly data: Uint8Array;
}

export interface HelloResult {
  readonly nodeId: number;
  readonly pid: number;
  readonly port: number;
  /** Largest payload SEND accepts through this daemon (EMSGSIZE beyond). */
  readonly messageSizeMax: number;
  readonly driver: string;
}

export type StatValue = number | string;

/** What a successful reply carries, by the op it answers. */
export type ReplyResult =
  | { readonly type: 'none' }
  | { readonly type: 'hello'; readonly hello: HelloResult }
  | { readonly type: 'members'; readonly group: string; readonly members: readonly Member[] }
  | { readonly type: 'localNode'; readonly node: LocalNode }
  | { readonly type: 'stats'; readonly stats: Readonly<Record<string, StatValue>> }
  | { readonly type: 'quorum'; readonly quorum: QuorumInfo }
  | { readonly type: 'memberInfo'; readonly group: string; readonly members: readonly MemberInfo[] };


export interface Reply {
  readonly type: 'reply';
  /** The op of the request answered, or OP_PROTOCOL_ERROR. */
  readonly op: number;
  readonly id: number;
  /** 0 = success, else an errno (core/api/errors.ts ERROR_NUMBERS). */
  readonly status: number;
  /** Only when status is 0. */
  readonly result: ReplyResult;
}

/** What the daemon makes of one datagram from a client. */
export type ClientDatagram =
  | { readonly type: 'request'; readonly request: Request }
  /** A BATCH container: each item is one single datagram, decoded on its own. */
  | { readonly type: 'batch'; readonly items: Uint8Array[] }
  /** Answer with `status` (EPROTO or EINVAL) to request `id`, reply op `op`. */
  | { readonly type: 'bad'; readonly id: number; readonly op: number; readonly status: ErrorCode; readonly reason: string }
  /** Not answerable (no header, or a reply/event sent to the daemon): drop and count. */
  | { readonly type: 'drop'; readonly reason: string };

/** What a client makes of one datagram from the daemon. */
export type DaemonDatagram =
  | { readonly type: 'reply'; readonly reply: Reply }
  | { readonly type: 'event'; readonly event: SocketEvent }
  | { readonly type: 'part'; readonly part: MessagePart }
  /** The daemon takes sends again after EAGAIN (version 2). */
  | { readonly type: 'writable' }
  | { readonly type: 'batch'; readonly items: Uint8Array[] }
  | { readonly type: 'bad'; readonly reason: string };

// ---------------------------------------------------------------- writing

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** The 8-byte header every datagram opens with. */
function header(w: Writer, op: number, id: number, version = VERSION): Writer {
  return w.u16(MAGIC).u8(version).u8(op).u32(id);
}

function ringId(w: Writer, r: RingId): Writer { return w.u32(r.rep).u64(r.seq); }

function text(s: string): Uint8Array {
  const b = utf8.encode(s);
  if (b.length > 0xffff) throw new RangeError('codec: string longer than 65535 bytes');
  return b;
}

export function encodeRequest(req: Request): Uint8Array {
  const op = OP[req.type];
  switch (req.type) {
    case 'hello': return header(Writer.fixed(HEADER_BYTES + 4), op, req.id, req.version ?? VERSION).u32(req.pid).done();
    case 'bind': {
      const g = text(req.group);
      return header(Writer.fixed(HEADER_BYTES + 1 + 2 + g.length), op, req.id)
        .u8(req.selfDelivery ? BIND_SELF_DELIVERY : 0).str16(g).done();
    }
    case 'send':
      return writeSend(new Uint8Array(SEND_HEADER_BYTES + req.data.length), 0, req.id, req.order, req.data, req.resume ?? false);
    case 'sendPart':
      return writeSendPart(new Uint8Array(SEND_PART_HEADER_BYTES + req.data.length), 0, req);
    case 'close': case 'unbind': case 'members': case 'localNode': case 'stats': case 'quorum': case 'memberInfo':
      return header(Writer.fixed(HEADER_BYTES), op, req.id).done();
  }
}

/** A SEND_PART datagram written at `at` of `into` (the client's scratch buffer); returns its bytes. */
export function writeSendPart(into: Uint8Array, at: number, req: Omit<Extract<Request, { type: 'sendPart' }>, 'type'>): Uint8Array {
  writeSendPartHeader(into, at, req);
  into.set(req.data, at + SEND_PART_HEADER_BYTES);
  return into.subarray(at, at + SEND_PART_HEADER_BYTES + req.data.length);
}

/** Only the header of that SEND_PART (for a send that gathers the header and the data); returns it. */
export function writeSendPartHeader(into: Uint8Array, at: number, req: Omit<Extract<Request, { type: 'sendPart' }>, 'type'>): Uint8Array {
  writeU16(into, at, MAGIC); into[at + 2] = VERSION; into[at + 3] = OP.sendPart; writeU32(into, at + 4, req.id);
  into[at + 8] = orderCode(req.order); into[at + 9] = req.resume ? SEND_RESUME : 0;
  writeU32(into, at + 10, req.msgId); writeU32(into, at + 14, req.total); writeU32(into, at + 18, req.offset);
  return into.subarray(at, at + SEND_PART_HEADER_BYTES);
}

/** A SEND request written at `at` of `into` (which must have room); returns its bytes. No allocation. */
export function writeSend(into: Uint8Array, at: number, id: number, order: Order, data: Uint8Array, resume: boolean): Uint8Array {
  return into.subarray(at, writeSendAt(into, at, id, order, data, resume));
}

/** The same SEND, with no view made of it (a client's pipeline writes one per message): returns
 *  where it ends. */
export function writeSendAt(into: Uint8Array, at: number, id: number, order: Order, data: Uint8Array, resume: boolean): number {
  writeSendHeaderAt(into, at, id, order, resume);
  copyInto(into, data, at + SEND_HEADER_BYTES);
  return at + SEND_HEADER_BYTES + data.length;
}

/** Only the header of that SEND; returns it. */
export function writeSendHeader(into: Uint8Array, at: number, id: number, order: Order, resume: boolean): Uint8Array {
  writeSendHeaderAt(into, at, id, order, resume);
  return into.subarray(at, at + SEND_HEADER_BYTES);
}

function writeSendHeaderAt(into: Uint8Array, at: number, id: number, order: Order, resume: boolean): void {
  writeU16(into, at, MAGIC); into[at + 2] = VERSION; into[at + 3] = OP.send; writeU32(into, at + 4, id);
  into[at + 8] = orderCode(order); into[at + 9] = resume ? SEND_RESUME : 0;
}

/** Write a BATCH container's header for `count` items at the start of `into`. */
export function writeBatchHeader(into: Uint8Array, count: number): void {
  writeU16(into, 0, MAGIC); into[2] = VERSION_BATCH; into[3] = OP_BATCH; writeU32(into, 4, 0); writeU16(into, 8, count);
}

/** Writes a BATCH container of `count` items (`item(i)`: each a single datagram) at the start of
 *  `into`, which must have room; returns the container, a view of `into`. */
export function writeBatch(into: Uint8Array, count: number, item: (i: number) => Uint8Array): Uint8Array {
  writeBatchHeader(into, count);
  let at = BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const b = item(i);
    into[at] = b.length >>> 8;
    into[at + 1] = b.length & 0xff;
    into.set(b, at + BATCH_ITEM_OVERHEAD);
    at += BATCH_ITEM_OVERHEAD + b.length;
  }
  return into.subarray(0, at);
}

/** A BATCH container of `items` (each a single datagram), for tests and examples. */
export function encodeBatch(items: readonly Uint8Array[]): Uint8Array {
  let size = BATCH_HEADER_BYTES;
  for (const it of items) size += BATCH_ITEM_OVERHEAD + it.length;
  return writeBatch(new Uint8Array(size), items.length, (i) => items[i]);
}

/** The WRITABLE event (version 2): the daemon takes sends again. */
export function encodeWritable(): Uint8Array {
  return header(Writer.fixed(HEADER_BYTES), EVENT_OP.writable, 0).done();
}

/** The bytes of a status-only reply. */
export const STATUS_REPLY_BYTES = HEADER_BYTES + 2;

/** A status-only reply, written straight into its bytes (the hot path: one per SEND). */
export function encodeStatusReply(op: number, id: number, status: number): Uint8Array {
  const b = allocBytesToFill(STATUS_REPLY_BYTES);
  writeStatusReplyAt(b, 0, op, id, status);
  return b;
}

/** A status-only reply written into `into` at `at` (STATUS_REPLY_BYTES, room checked by the caller). */
export function writeStatusReplyAt(into: Uint8Array, at: number, op: number, id: number, status: number): void {
  writeU16(into, at, MAGIC); into[at + 2] = VERSION; into[at + 3] = op; writeU32(into, at + 4, id); writeU16(into, at + 8, status);
}


/** Group names as UTF-8, remembered: every message event names its group (bounded). */
const groupBytes = new Map<string, Uint8Array>();
const GROUP_BYTES_CACHED_MAX = 1024;
let lastGroupText: { group: string; bytes: Uint8Array } = { group: '', bytes: new Uint8Array(0) };
function groupText(group: string): Uint8Array {
  if (group === lastGroupText.group) return lastGroupText.bytes; // a stream of one group's messages
  let b = groupBytes.get(group);
  if (b) {
    lastGroupText = { group, bytes: b };
    return b;
  }
  b = text(group);
  if (groupBytes.size >= GROUP_BYTES_CACHED_MAX) groupBytes.clear();
  groupBytes.set(group, b);
  lastGroupText = { group, bytes: b };
  return b;
}

/** A MESSAGE event written straight into its bytes (no Writer, no DataView). */
function encodeMessage(ev: MessageEvent, g: Uint8Array): Uint8Array {
  const b = allocBytesToFill(messageEventOverhead(g.length) + ev.data.length);
  b.set(ev.data, writeMessageHeader(b, ev.sender, ev.order, g, 0));
  return b;
}

/** The MESSAGE event's header into `b` at `start`; returns where the payload goes. */
function writeMessageHeader(b: Uint8Array, sender: Member, order: Order, g: Uint8Array, start: number): number {
  writeU16(b, start, MAGIC); b[start + 2] = VERSION; b[start + 3] = EVENT_OP.message; writeU32(b, start + 4, 0);
  writeU16(b, start + 8, g.length); copyInto(b, g, start + 10);
  const at = start + 10 + g.length;
  writeU32(b, at, sender.nodeId); writeU32(b, at + 4, sender.pid); writeU32(b, at + 8, sender.port);
  b[at + 12] = orderCode(order);
  return at + MEMBER_BYTES + 1;
}

/** The bytes of a MESSAGE event that goes as one datagram (its header and payload): the same in
 *  every version for a message below GATHER_BYTES_MIN. */
export function messageEventBytes(ev: MessageEvent): number {
  return messageBytesOf(ev.group, ev.data.length);
}

/** messageEventBytes of a message of `length` bytes to `group`. */
export function messageBytesOf(group: string, length: number): number {
  return messageEventOverhead(groupText(group).length) + length;
}

/** Writes a MESSAGE event (messageEventBytes of it) into `into` at `at`, which must have room:
 *  the payload is copied once, straight from where the driver delivered it. Returns the end. */
export function writeMessageAt(into: Uint8Array, at: number, ev: MessageEvent): number {
  return writeMessageOf(into, at, ev.group, ev.sender, ev.order, ev.data, 0, ev.data.length);
}

/** writeMessageAt of a message given by its fields, its payload `from[start]` up to `end`
 *  (messageBytesOf(group, end - start) bytes written). */
export function writeMessageOf(into: Uint8Array, at: number, group: string, sender: Member, order: Order,
  from: Uint8Array, start: number, end: number): number {
  const body = writeMessageHeader(into, sender, order, groupText(group), at);
  copyInto(into, rangeOf(from, start, end), body);
  return body + end - start;
}

/**
 * Version 5, a message of at least GATHER_BYTES_MIN: its datagrams (one MESSAGE, or MESSAGE_PART
 * parts of up to LARGE_DATAGRAM_MAX) each as its header and the payload's pieces, for a send that
 * gathers them: the payload is not copied (a datagram that would gather more than
 * GATHER_PARTS_MAX pieces has them joined). `payload`: the message's data, or the fragments it
 * arrived in. Undefined for a smaller message. The payload stays the caller's (see Outbox.event).
 */
export function gatheredMessage(ev: MessageEvent, msgId: number, payload: ByteParts = ev.data): Uint8Array[][] | undefined {
  const size = bytePartsLength(payload);
  if (size < GATHER_BYTES_MIN) return undefined;
  const g = groupText(ev.group);
  const pieces = payload instanceof Uint8Array ? [payload] : payload;
  const overhead = messageEventOverhead(g.length);
  if (overhead + size > LARGE_DATAGRAM_MAX) return messageParts(ev, g, msgId, LARGE_DATAGRAM_MAX, pieces, size);
  const b = allocBytesToFill(overhead);
  writeMessageHeader(b, ev.sender, ev.order, g, 0);
  return [gather(b, pieces)];
}

/** Pieces one gathered send takes at most, its header included (core/native's GATHER_MAX). */
export const GATHER_PARTS_MAX = 16;

/** A datagram as its header and the payload's pieces; the pieces joined when there are too many. */
function gather(header: Uint8Array, pieces: readonly Uint8Array[]): Uint8Array[] {
  return pieces.length < GATHER_PARTS_MAX ? [header, ...pieces] : [header, concatBytes(pieces)];
}

/** The bytes from `start` to `end` of the concatenation of `pieces`, as views of them. */
function slicePieces(pieces: readonly Uint8Array[], start: number, end: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of pieces) {
    const from = Math.max(start - at, 0), to = Math.min(end - at, p.length);
    if (from < to) out.push(from === 0 && to === p.length ? p : p.subarray(from, to));
    at += p.length;
    if (at >= end) break;
  }
  return out;
}

/** Below this a MESSAGE is copied whole into its datagram (it may join a BATCH container). */
export const GATHER_BYTES_MIN = 16 * 1024;

export function encodeReply(reply: Reply): Uint8Array {
  const head = HEADER_BYTES + 2;
  const r = reply.result;
  if (reply.status !== 0 || r.type === 'none') {
    return header(Writer.fixed(head), reply.op, reply.id).u16(reply.status).done();
  }
  switch (r.type) {
    case 'hello': {
      const d = text(r.hello.driver);
      return header(Writer.fixed(head + 16 + 2 + d.length), reply.op, reply.id).u16(0)
        .u32(r.hello.nodeId).u32(r.hello.pid).u32(r.hello.port).u32(r.hello.messageSizeMax).str16(d).done();
    }
    case 'members': {
      const g = text(r.group);
      const w = header(Writer.fixed(head + 2 + g.length + 4 + MEMBER_BYTES * r.members.length), reply.op, reply.id).u16(0).str16(g).u32(r.members.length);
      for (const m of r.members) w.member(m);
      return w.done();
    }
    case 'memberInfo': {
      const g = text(r.group);
      const w = header(Writer.fixed(head + 2 + g.length + 4 + MEMBER_INFO_BYTES * r.members.length), reply.op, reply.id).u16(0).str16(g).u32(r.members.length);
      for (const m of r.members) writeIdentity(w.member(m.member), m.identity);
      return w.done();
    }
    case 'localNode': return encodeLocalNode(reply, r.node);
    case 'stats': return encodeStats(reply, r.stats);
    case 'quorum': {
      const w = header(Writer.fixed(head + QUORUM_BYTES + 4 + 9 * r.quorum.nodes.length), reply.op, reply.id).u16(0);
      writeQuorum(w, r.quorum.state).u32(r.quorum.nodes.length);
      for (const n of r.quorum.nodes) w.u32(n.nodeId).u32(n.votes).u8(n.present ? 1 : 0);
      return w.done();
    }
  }
}

/** The quorum block: u16 flags (bit 0 quorate, then QUORUM_FLAGS from bit 1), votes, expected, quorum. */
const QUORUM_BYTES = 2 + 4 + 4 + 4;
const QUORUM_FLAGS: readonly QuorumFlag[] = ['disabled', 'two_node', 'wait_for_all', 'wait_for_all_pending', 'last_man_standing', 'auto_tie_breaker'];

function writeQuorum(w: Writer, q: QuorumState): Writer {
  let flags = q.quorate ? 1 : 0;
  for (const f of q.flags) flags |= 2 << QUORUM_FLAGS.indexOf(f);
  return w.u16(flags).u32(q.votes).u32(q.expected).u32(q.quorum);
}

function readQuorum(r: Reader): QuorumState {
  const bits = r.u16();
  if (bits >> (QUORUM_FLAGS.length + 1)) throw new WireError(`unknown quorum flags 0x${bits.toString(16)}`);
  const flags = QUORUM_FLAGS.filter((_, i) => bits & (2 << i));
  return { quorate: (bits & 1) === 1, votes: r.u32(), expected: r.u32(), quorum: r.u32(), flags };
}

function encodeLocalNode(reply: Reply, n: LocalNode): Uint8Array {
  const d = text(n.driver);
  const w = header(Writer.fixed(HEADER_BYTES + 2 + 4 + RING_ID_BYTES + 2 + d.length + 4 + 4 * n.members.length), reply.op, reply.id).u16(0).u32(n.nodeId);
  ringId(w, n.ringId).str16(d).u32(n.members.length);
  for (const id of n.members) w.u32(id);
  return w.done();
}

function encodeStats(reply: Reply, stats: Readonly<Record<string, StatValue>>): Uint8Array {
  const entries = Object.entries(stats).map(([k, v]) =>
    [text(k), typeof v === 'number' ? v : text(v)] as const);
  let size = HEADER_BYTES + 2 + 2;
  for (const [k, v] of entries) size += 2 + k.length + 1 + (typeof v === 'number' ? 8 : 2 + v.length);
  const w = header(Writer.fixed(size), reply.op, reply.id).u16(0).u16(entries.length);
  for (const [k, v] of entries) {
    w.str16(k);
    if (typeof v === 'number') w.u8(0).f64(v);
    else w.u8(1).str16(v);
  }
  return w.done();
}

/**
 * One event as a single datagram. `version` is the socket's protocol version: below 3, membership
 * events lose their view id and quorum (MEMBERSHIP) and QUORUM events are not sent (undefined);
 * below 4 they lose who the members are (MEMBERSHIP_V3).
 */
export function encodeEvent(ev: SocketEvent, version = VERSION_MAX): Uint8Array | undefined {
  switch (ev.type) {
    case 'message': return encodeMessage(ev, groupText(ev.group));
    case 'membership': return encodeMembership(ev, Math.min(version, VERSION_MAX));
    case 'quorum': {
      if (version < VERSION_VIEWS) return undefined;
      const g = text(ev.group);
      const w = header(Writer.fixed(HEADER_BYTES + 2 + g.length + RING_ID_BYTES + QUORUM_BYTES), EVENT_OP.quorum, 0).str16(g);
      return writeQuorum(ringId(w, ev.ringId), ev.quorum).done();
    }
    case 'error': {
      const m = text(ev.message);
      const n = ERROR_NUMBERS[ev.code as ErrorCode] ?? ERROR_NUMBERS.EPROTO;
      return header(Writer.fixed(HEADER_BYTES + 2 + 2 + m.length), EVENT_OP.error, 0).u16(n).str16(m).done();
    }
  }
}

/** An ERROR event (every version). */
export function encodeErrorEvent(code: ErrorCode, message: string): Uint8Array {
  const m = text(message);
  return header(Writer.fixed(HEADER_BYTES + 2 + 2 + m.length), EVENT_OP.error, 0).u16(ERROR_NUMBERS[code]).str16(m).done();
}

/** Bytes of a message event's header before the payload, for a group name of `groupBytes`. */
export function messageEventOverhead(groupBytes: number): number {
  return HEADER_BYTES + 2 + groupBytes + MEMBER_BYTES + 1;
}

/** A message event as datagrams: one MESSAGE, or MESSAGE_PART fragments when it does not fit. */
export function encodeMessageDatagrams(ev: MessageEvent, msgId: number, max = DATAGRAM_MAX): Uint8Array[] {
  const g = groupText(ev.group);
  if (messageEventOverhead(g.length) + ev.data.length <= max) return [encodeMessage(ev, g)];
  return messageParts(ev, g, msgId, max, [ev.data], ev.data.length).map((part) => concatBytes(part));
}

/** The MESSAGE_PART datagrams of a message of `total` bytes (the concatenation of `pieces`) that
 *  one datagram of `max` bytes cannot carry, each as its header and its slice of the payload
 *  (views of the pieces, not joined). */
function messageParts(ev: MessageEvent, g: Uint8Array, msgId: number, max: number, pieces: readonly Uint8Array[], total: number): Uint8Array[][] {
  const chunk = max - messageEventOverhead(g.length) - 12;
  const parts: Uint8Array[][] = [];
  for (let offset = 0; offset < total; offset += chunk) {
    const header = messagePartHeader(g, { sender: ev.sender, order: ev.order, msgId, total, offset });
    parts.push(gather(header, slicePieces(pieces, offset, Math.min(offset + chunk, total))));
  }
  return parts;
}

function messagePartHeader(g: Uint8Array, p: Omit<MessagePart, 'group' | 'data'>): Uint8Array {
  return header(Writer.fixed(messageEventOverhead(g.length) + 12), EVENT_OP.messagePart, 0).str16(g)
    .member(p.sender).u8(orderCode(p.order)).u32(p.msgId).u32(p.total).u32(p.offset).done();
}

export function encodeMessagePart(p: MessagePart): Uint8Array {
  return concatBytes([messagePartHeader(groupText(p.group), p), p.data]);
}

/** MEMBERSHIP (versions 1 and 2), MEMBERSHIP_V3 (with the view id and quorum block after the
 *  ring id; an event without them, from a driver layer that has none, gets view {ring, 0} and
 *  "quorate"), or MEMBERSHIP_V4 (and after the lists, who each member is: unknown without `identities`). */
function encodeMembership(ev: MembershipEvent, version: number): Uint8Array {
  const g = text(ev.group);
  const v3 = version >= VERSION_VIEWS, v4 = version >= VERSION_IDENTITIES;
  const size = HEADER_BYTES + 2 + g.length + 1 + RING_ID_BYTES + (v3 ? RING_ID_BYTES + 4 + QUORUM_BYTES : 0)
    + 4 + MEMBER_BYTES * ev.members.length + 4 + (MEMBER_BYTES + 1) * ev.joined.length + 4 + (MEMBER_BYTES + 1) * ev.left.length
    + (v4 ? 4 + IDENTITY_BYTES * ev.members.length : 0);
  const op = v4 ? EVENT_OP.membershipV4 : v3 ? EVENT_OP.membershipV3 : EVENT_OP.membership;
  const w = header(Writer.fixed(size), op, 0).str16(g).u8(KINDS.indexOf(ev.kind));
  ringId(w, ev.ringId);
  if (v3) {
    ringId(w, ev.viewId?.ringId ?? ev.ringId).u32(ev.viewId?.seq ?? 0);
    writeQuorum(w, ev.quorum ?? { quorate: true, votes: 0, expected: 0, quorum: 0, flags: ['disabled'] });
  }
  w.u32(ev.members.length);
  for (const m of ev.members) w.member(m);
  for (const list of [ev.joined, ev.left]) {
    w.u32(list.length);
    for (const c of list) w.member(c.member).u8(REASONS.indexOf(c.reason));
  }
  if (v4) {
    w.u32(ev.members.length);
    for (let i = 0; i < ev.members.length; i++) writeIdentity(w, ev.identities?.[i] ?? null);
  }
  return w.done();
}

/** Who a member is: uid, gid, flags (MEMBER_INFO's entry and MEMBERSHIP_V4's after the member). */
function writeIdentity(w: Writer, id: MemberIdentity | null | undefined): Writer {
  return w.u32(id ? id.uid : UNKNOWN_ID).u32(id ? id.gid : UNKNOWN_ID).u8(id?.verified ? MEMBER_VERIFIED : 0);
}

/** An identity as written by writeIdentity; null when its node did not say. `strict`: unknown flag bits are an error. */
function readIdentity(r: Reader, strict: boolean): MemberIdentity | null {
  const uid = r.u32(), gid = r.u32(), flags = r.u8();
  if (strict && flags & ~MEMBER_VERIFIED) throw new WireError(`unknown member flags 0x${flags.toString(16)}`);
  return uid !== UNKNOWN_ID || gid !== UNKNOWN_ID ? { uid, gid, verified: (flags & MEMBER_VERIFIED) !== 0 } : null;
}

// ---------------------------------------------------------------- reading

/** A stream of events of one group decodes its name once. */
const strings = new LastDecoded((b) => utf8Strict.decode(b));

/** The bridge's string: u16 length, UTF-8 (validated). */
function str(r: Reader): string {
  const n = r.u16();
  r.need(n);
  const at = r.at;
  r.at += n;
  try { return strings.getAt(r.bytes, at, n); } catch { throw new WireError('string is not valid UTF-8'); }
}

function readRingId(r: Reader): RingId { return { rep: r.u32(), seq: r.u64() }; }

function readOrder(r: Reader): Order { return pick(ORDERS, r.u8(), 'order'); }

function pick<T>(table: readonly T[], i: number, what: string): T {
  const v = table[i];
  if (v === undefined) throw new WireError(`unknown ${what} ${i}`);
  return v;
}

interface Header { readonly op: number; readonly version: number; readonly id: number }

/** The fast paths' header check, at `at`: the magic and a version this side speaks (anything
 *  else is left to the general path, which says what is wrong). */
function speaks(bytes: Uint8Array, at: number): boolean {
  return ((bytes[at] << 8) | bytes[at + 1]) === MAGIC && bytes[at + 2] >= VERSION && bytes[at + 2] <= VERSION_MAX;
}

function readHeader(bytes: Uint8Array): Header | string {
  if (bytes.length < HEADER_BYTES) return `datagram of ${bytes.length} bytes is shorter than the header`;
  const magic = (bytes[0] << 8) | bytes[1];
  if (magic !== MAGIC) return `bad magic 0x${magic.toString(16)}`;
  return { version: bytes[2], op: bytes[3], id: readU32(bytes, 4) };
}

/** Decode a datagram a client sent to the daemon (at most `max` bytes: datagramMax of the
 *  client's version). Never throws. */
export function decodeClientDatagram(bytes: Uint8Array, max = DATAGRAM_MAX): ClientDatagram {
  const send = readSend(bytes, max);
  if (send !== undefined) return send;
  const h = readHeader(bytes);
  if (typeof h === 'string') return { type: 'drop', reason: h };
  if (h.op === OP_BATCH && h.version === VERSION_BATCH) return readBatch(bytes) ?? { type: 'drop', reason: 'malformed BATCH container' };
  if (h.op & REPLY_BIT || (h.op & 0xc0) === 0x40) return { type: 'drop', reason: `op 0x${h.op.toString(16)} is not a request` };
  if (h.version < VERSION || h.version > VERSION_MAX) {
    return { type: 'bad', id: h.id, op: OP_PROTOCOL_ERROR, status: 'EPROTO', reason: `version ${h.version} (this daemon speaks ${VERSION} to ${VERSION_MAX})` };
  }
  const type = REQUEST_TYPES.get(h.op);
  if (type === undefined) return { type: 'bad', id: h.id, op: OP_PROTOCOL_ERROR, status: 'EPROTO', reason: `unknown op 0x${h.op.toString(16)}` };
  if (bytes.length > max) {
    return { type: 'bad', id: h.id, op: h.op | REPLY_BIT, status: 'EMSGSIZE', reason: `datagram of ${bytes.length} bytes (at most ${max})` };
  }
  try {
    const request = readRequest(type, h.id, new Reader(bytes, HEADER_BYTES));
    return { type: 'request', request: request.type === 'hello' && h.version !== VERSION ? { ...request, version: h.version } : request };
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    return { type: 'bad', id: h.id, op: h.op | REPLY_BIT, status: 'EINVAL', reason: `${type}: ${e.message}` };
  }
}

/** A well-formed SEND, read without a header object or a Reader (the daemon reads one per
 *  message); undefined for anything else, which the general path reads (and refuses, if it must). */
function readSend(bytes: Uint8Array, max: number): ClientDatagram | undefined {
  const request = readSendAt(bytes, 0, bytes.length, max);
  return request && { type: 'request', request };
}

/** A well-formed SEND of `n` bytes at `at` in `bytes` (a lone datagram, or a BATCH container's
 *  item where it lies); undefined for anything else (decodeClientItem). */
function readSendAt(bytes: Uint8Array, at: number, n: number, max: number): Extract<Request, { type: 'send' }> | undefined {
  const order = sendOrderAt(bytes, at, n, max);
  if (order === undefined) return undefined;
  const id = readU32(bytes, at + 4);
  const data = viewOf(bytes, at + SEND_HEADER_BYTES, at + n);
  return bytes[at + 9] ? { type: 'send', id, order, data, resume: true } : { type: 'send', id, order, data };
}

/** The order of a well-formed SEND of `n` bytes at `at`; undefined for anything else. */
function sendOrderAt(bytes: Uint8Array, at: number, n: number, max: number): Order | undefined {
  if (n < SEND_HEADER_BYTES || n > max || bytes[at + 3] !== OP.send || !speaks(bytes, at)) return undefined;
  return (bytes[at + 9] & ~SEND_RESUME) === 0 ? ORDERS[bytes[at + 8]] : undefined;
}

/** A BATCH item that is a well-formed SEND without RESUME (a pipelining client's usual item),
 *  read where it lies with no request object: its order, or undefined for anything else (read
 *  with decodeClientItem). Its id is sendIdAt(bytes, at), its payload from at + SEND_HEADER_BYTES
 *  to at + n. */
export function plainSendAt(bytes: Uint8Array, at: number, n: number): Order | undefined {
  const order = sendOrderAt(bytes, at, n, DATAGRAM_MAX);
  return order !== undefined && bytes[at + 9] === 0 ? order : undefined;
}

/** The request id of a request at `at`. */
export function sendIdAt(bytes: Uint8Array, at: number): number {
  return readU32(bytes, at + 4);
}

/** A BATCH container's item (visitBatch): a SEND read where it lies, anything else as
 *  decodeClientDatagram reads a datagram of its own. */
export function decodeClientItem(bytes: Uint8Array, at: number, n: number): ClientDatagram {
  const request = readSendAt(bytes, at, n, DATAGRAM_MAX);
  return request ? { type: 'request', request } : decodeClientDatagram(bytes.subarray(at, at + n));
}

/** A well-formed MESSAGE event of `n` bytes at `at` in `bytes`, read without a header object or
 *  a Reader (a client reads one per message, most of them BATCH items); undefined for anything
 *  else, which decodeDaemonDatagram reads (and refuses, if it must). */
export function readMessageAt(bytes: Uint8Array, at: number, n: number): MessageEvent | undefined {
  if (n < HEADER_BYTES + 2 || bytes[at + 3] !== EVENT_OP.message || !speaks(bytes, at)) return undefined;
  const g = (bytes[at + 8] << 8) | bytes[at + 9];
  const m = at + HEADER_BYTES + 2 + g;
  if (m + MEMBER_BYTES + 1 > at + n) return undefined;
  const order = ORDERS[bytes[m + MEMBER_BYTES]];
  if (order === undefined) return undefined;
  let group: string;
  try { group = strings.getAt(bytes, at + HEADER_BYTES + 2, g); } catch { return undefined; }
  const sender = { nodeId: readU32(bytes, m), pid: readU32(bytes, m + 4), port: readU32(bytes, m + 8) };
  return { type: 'message', group, sender, order, data: viewOf(bytes, m + MEMBER_BYTES + 1, at + n) };
}

/** A BATCH container's item count, after checking the container whole; -1 when it is malformed:
 *  lengths past the end, trailing bytes, an empty item list or a nested container. */
function batchCount(bytes: Uint8Array): number {
  if (bytes.length < BATCH_HEADER_BYTES || bytes.length > DATAGRAM_MAX) return -1;
  const count = (bytes[8] << 8) | bytes[9];
  let at = BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + BATCH_ITEM_OVERHEAD > bytes.length) return -1;
    const n = (bytes[at] << 8) | bytes[at + 1];
    at += BATCH_ITEM_OVERHEAD;
    if (n < HEADER_BYTES || at + n > bytes.length || bytes[at + 3] === OP_BATCH) return -1;
    at += n;
  }
  return count > 0 && at === bytes.length ? count : -1;
}

/** The items of a BATCH container (views into `bytes`, no copies), or undefined when it is
 *  malformed (batchCount). */
function readBatch(bytes: Uint8Array): { type: 'batch'; items: Uint8Array[] } | undefined {
  const items: Uint8Array[] = [];
  if (!visitBatch(bytes, (b, at, n) => { items.push(b.subarray(at, at + n)); })) return undefined;
  return { type: 'batch', items };
}

/** Whether `bytes` is a BATCH container by its header (its items not yet checked). */
export function isBatch(bytes: Uint8Array): boolean {
  return bytes.length >= HEADER_BYTES && bytes[3] === OP_BATCH && bytes[2] === VERSION_BATCH
    && ((bytes[0] << 8) | bytes[1]) === MAGIC;
}

/**
 * A BATCH container's items where they lie: `visit(bytes, at, n)` for each, with no view or list
 * made (the hot paths: a client's batch of SENDs, a daemon's batch of replies and events). The
 * container is checked whole first (batchCount); false, with nothing visited, when it is malformed.
 */
export function visitBatch(bytes: Uint8Array, visit: (bytes: Uint8Array, at: number, n: number) => void): boolean {
  const count = batchCount(bytes);
  if (count < 0) return false;
  let at = BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const n = (bytes[at] << 8) | bytes[at + 1];
    at += BATCH_ITEM_OVERHEAD;
    visit(bytes, at, n);
    at += n;
  }
  return true;
}

function readRequest(type: RequestType, id: number, r: Reader): Request {
  switch (type) {
    case 'hello': { const pid = r.u32(); r.end(); return { type, id, pid }; }
    case 'bind': {
      const flags = r.u8();
      if (flags & ~BIND_SELF_DELIVERY) throw new WireError(`unknown bind flags 0x${flags.toString(16)}`);
      const group = str(r);
      r.end();
      return { type, id, group, selfDelivery: (flags & BIND_SELF_DELIVERY) !== 0 };
    }
    case 'send': {
      const order = readOrder(r);
      const flags = r.u8();
      if (flags & ~SEND_RESUME) throw new WireError(`unknown send flags 0x${flags.toString(16)}`);
      return flags ? { type, id, order, data: r.rest(), resume: true } : { type, id, order, data: r.rest() };
    }
    case 'sendPart': {
      const order = readOrder(r);
      const flags = r.u8();
      if (flags & ~SEND_RESUME) throw new WireError(`unknown send flags 0x${flags.toString(16)}`);
      const msgId = r.u32(), total = r.u32(), offset = r.u32();
      const data = r.rest();
      if (total === 0 || offset + data.length > total) throw new WireError(`part [${offset}, ${offset + data.length}) outside a message of ${total} bytes`);
      // RESUME only opens a message (version 4; the server refuses it from older sockets).
      if (flags && offset !== 0) throw new WireError('RESUME on a part that does not open its message');
      return flags ? { type, id, order, msgId, total, offset, data, resume: true } : { type, id, order, msgId, total, offset, data };
    }
    case 'close': case 'unbind': case 'members': case 'localNode': case 'stats': case 'quorum': case 'memberInfo':
      r.end();
      return { type, id };
  }
}

/** Decode a datagram the daemon sent to a client. Never throws. */
export function decodeDaemonDatagram(bytes: Uint8Array): DaemonDatagram {
  // A status-only reply (one per SEND a client makes), read without a header object or a Reader.
  if (bytes.length === HEADER_BYTES + 2 && (bytes[3] & REPLY_BIT) !== 0 && speaks(bytes, 0)) {
    const status = (bytes[8] << 8) | bytes[9];
    const id = readU32(bytes, 4);
    if (status !== 0 || bytes[3] === OP_PROTOCOL_ERROR || NO_RESULT_OPS.has(bytes[3] & ~REPLY_BIT)) {
      return { type: 'reply', reply: { type: 'reply', op: bytes[3], id, status, result: NO_RESULT } };
    }
  }
  const h = readHeader(bytes);
  if (typeof h === 'string') return { type: 'bad', reason: h };
  if (h.op === OP_BATCH && h.version === VERSION_BATCH) return readBatch(bytes) ?? { type: 'bad', reason: 'malformed BATCH container' };
  if (h.version < VERSION || h.version > VERSION_MAX) return { type: 'bad', reason: `version ${h.version}` };
  try {
    const r = new Reader(bytes, HEADER_BYTES);
    if (h.op & REPLY_BIT) return { type: 'reply', reply: readReply(h, r) };
    if (h.op === EVENT_OP.writable) { r.end(); return { type: 'writable' }; }
    if (h.op === EVENT_OP.messagePart) return { type: 'part', part: readPart(r) };
    return { type: 'event', event: readEvent(h.op, r) };
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    return { type: 'bad', reason: `op 0x${h.op.toString(16)}: ${e.message}` };
  }
}

/** The result of a reply that has none (shared: nobody writes a decoded reply). */
const NO_RESULT: ReplyResult = { type: 'none' };

/** Request ops whose successful reply carries no result (readResult's last case). */
const NO_RESULT_OPS = new Set<number>([OP.close, OP.bind, OP.unbind, OP.send, OP.sendPart]);

function readReply(h: Header, r: Reader): Reply {
  const status = r.u16();
  const none = { type: 'reply', op: h.op, id: h.id, status, result: NO_RESULT } as const;
  if (status !== 0 || h.op === OP_PROTOCOL_ERROR) { r.end(); return none; }
  const result = readResult(REQUEST_TYPES.get(h.op & ~REPLY_BIT), r);
  r.end();
  return { ...none, result };
}

function readResult(type: RequestType | undefined, r: Reader): ReplyResult {
  switch (type) {
    case 'hello':
      return { type, hello: { nodeId: r.u32(), pid: r.u32(), port: r.u32(), messageSizeMax: r.u32(), driver: str(r) } };
    case 'members': {
      const group = str(r);
      const n = r.count32(MEMBER_BYTES);
      const members: Member[] = [];
      for (let i = 0; i < n; i++) members.push(r.member());
      return { type, group, members };
    }
    case 'memberInfo': {
      const group = str(r);
      const n = r.count32(MEMBER_INFO_BYTES);
      const members: MemberInfo[] = [];
      for (let i = 0; i < n; i++) {
        const member = r.member(), identity = readIdentity(r, true);
        members.push(identity ? { member, identity } : { member });
      }
      return { type, group, members };
    }
    case 'localNode': {
      const nodeId = r.u32(), ringId = readRingId(r), driver = str(r);
      const n = r.count32(4);
      const members: number[] = [];
      for (let i = 0; i < n; i++) members.push(r.u32());
      return { type, node: { nodeId, ringId, driver, members } };
    }
    case 'stats': return { type, stats: readStats(r) };
    case 'quorum': {
      const state = readQuorum(r);
      const n = r.count32(9);
      const nodes: QuorumInfo['nodes'][number][] = [];
      for (let i = 0; i < n; i++) nodes.push({ nodeId: r.u32(), votes: r.u32(), present: r.u8() === 1 });
      return { type, quorum: { state, nodes } };
    }
    case 'close': case 'bind': case 'unbind': case 'send': case 'sendPart': return { type: 'none' };
    case undefined: throw new WireError('reply to an unknown op');
  }
}

function readStats(r: Reader): Record<string, StatValue> {
  const stats: Record<string, StatValue> = {};
  const n = r.u16();
  for (let i = 0; i < n; i++) {
    const key = str(r);
    const kind = r.u8();
    if (kind === 0) stats[key] = r.f64();
    else if (kind === 1) stats[key] = str(r);
    else throw new WireError(`unknown stat value kind ${kind}`);
  }
  return stats;
}

function readEvent(op: number, r: Reader): SocketEvent {
  switch (op) {
    case EVENT_OP.message: {
      const ev: MessageEvent = { type: 'message', group: str(r), sender: r.member(), order: readOrder(r), data: r.rest() };
      return ev;
    }
    case EVENT_OP.membership: return readMembership(r, 2);
    case EVENT_OP.membershipV3: return readMembership(r, VERSION_VIEWS);
    case EVENT_OP.membershipV4: return readMembership(r, VERSION_IDENTITIES);
    case EVENT_OP.quorum: {
      const group = str(r), ring = readRingId(r), quorum = readQuorum(r);
      r.end();
      return { type: 'quorum', group, ringId: ring, quorum };
    }
    case EVENT_OP.error: {
      const n = r.u16();
      const message = str(r);
      r.end();
      return { type: 'error', code: errorCodeFromNumber(n) ?? `E${n}`, message };
    }
    default: throw new WireError('unknown event op');
  }
}

function readPart(r: Reader): MessagePart {
  const group = str(r), sender = r.member(), order = readOrder(r);
  const msgId = r.u32(), total = r.u32(), offset = r.u32();
  const data = r.rest();
  if (offset + data.length > total) throw new WireError('message part beyond its total');
  return { group, sender, order, msgId, total, offset, data };
}

function readMembership(r: Reader, version: number): MembershipEvent {
  const group = str(r);
  const kind = pick(KINDS, r.u8(), 'membership kind');
  const ringId = readRingId(r);
  const extra = version >= VERSION_VIEWS ? { viewId: { ringId: readRingId(r), seq: r.u32() }, quorum: readQuorum(r) } : {};
  const n = r.count32(MEMBER_BYTES);
  const members: Member[] = [];
  for (let i = 0; i < n; i++) members.push(r.member());
  const changes = (): MemberChange[] => {
    const list: MemberChange[] = [];
    const c = r.count32(MEMBER_BYTES + 1);
    for (let i = 0; i < c; i++) list.push({ member: r.member(), reason: pick(REASONS, r.u8(), 'reason') });
    return list;
  };
  const joined = changes();
  const left = changes();
  let identities: (MemberIdentity | null)[] | undefined;
  if (version >= VERSION_IDENTITIES) {
    if (r.count32(IDENTITY_BYTES) !== members.length) throw new WireError('member identities do not match the members');
    identities = members.map(() => readIdentity(r, false));
  }
  r.end();
  return { type: 'membership', group, kind, ringId, members, joined, left, ...extra, ...(identities ? { identities } : {}) };
}
