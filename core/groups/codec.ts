// The process-group wire format: what GroupService multicasts as driver payloads. Pure: bytes
// in, a typed message out. Decoding never throws on hostile bytes: it returns undefined and the
// caller counts the drop (a remote bug must never crash the daemon).
//
// Layout (big-endian). Every message opens with a 3-byte header:
//   u8 magic 0x47 ('G')   u8 version (GROUPS_WIRE_VERSION)   u8 type
// type 1 JOIN:     u16 nameLen, name (UTF-8), u32 pid, u32 port, identity
// type 2 LEAVE:    u16 nameLen, name, u32 pid, u32 port, u8 reason (1 leave, 2 procdown, 3 overrun)
// type 3 DATA:     u16 nameLen, name, u32 pid, u32 port, payload (the rest of the message)
// type 4 EXCHANGE: u32 ring rep, u64 ring seq, u8 flags (bit 0: last part; bit 1: the sender
//                  has seen every configured node together, for quorum's wait_for_all),
//                  u32 the sender's expected votes, u16 group count, then per group:
//                  u16 nameLen, name, u16 member count, member count x (u32 pid, u32 port, identity)
// type 5 EXPECTED: u32 ring rep, u64 ring seq, u32 expected votes (last_man_standing lowers
//                  expected votes on that ring when this is delivered)
// identity (9 bytes): u32 uid, u32 gid (0xFFFFFFFF both: unknown), u8 flags (bit 0: the member's
//                  node verified its pid with the kernel): who the member's process is, as its
//                  node established it (core/af/peercred.ts); the bridge's MEMBER_INFO reports it.
// Version 1 had no EXPECTED and no quorum fields in EXCHANGE; version 2 no identities. Messages
// of both still decode (members without identity).
// The member's node id is never on the wire: it is the driver's sender, so a node can only speak
// for its own members. The order of a DATA message is the order the driver delivered it in.
import type { RingId } from '../driver/types.ts';
import type { MemberIdentity } from '../api/types.ts';
import type { QuorumReport } from '../quorum/quorum.ts';
import { LastDecoded, readU32, viewOf } from '../wire/bytes.ts';
import { Reader, WireError } from '../wire/reader.ts';
import { Writer } from '../wire/writer.ts';

export const GROUPS_MAGIC = 0x47;
export const GROUPS_WIRE_VERSION = 3;
/** The longest group name the wire carries, whatever a node's groupNameMax says. */
export const NAME_WIRE_MAX = 4096;
const HEADER = 3;
const MEMBER_BYTES = 8;
const IDENTITY_BYTES = 9;
/** uid and gid of a member whose identity its node did not say (wire version 2 and older). */
export const UNKNOWN_ID = 0xffffffff;
/** Bytes a DATA message adds to the application payload, for a group name of `nameBytes`. */
export function dataOverhead(nameBytes: number): number {
  return HEADER + 2 + nameBytes + MEMBER_BYTES;
}

export type LeaveReason = 'leave' | 'procdown' | 'overrun';
const LEAVE_REASONS: readonly LeaveReason[] = ['leave', 'procdown', 'overrun'];
const enum Type { Join = 1, Leave = 2, Data = 3, Exchange = 4, Expected = 5 }

/** A member's pid and port on its node, and who it is (absent: unknown). */
export interface ReportedMember {
  readonly pid: number;
  readonly port: number;
  readonly identity?: MemberIdentity;
}

export interface ExchangeGroup {
  readonly group: string;
  readonly members: readonly ReportedMember[];
}

export type GroupMessage =
  | { readonly type: 'join'; readonly group: string; readonly pid: number; readonly port: number; readonly identity?: MemberIdentity }
  | { readonly type: 'leave'; readonly group: string; readonly pid: number; readonly port: number;
      readonly reason: LeaveReason }
  | { readonly type: 'data'; readonly group: string; readonly pid: number; readonly port: number;
      readonly data: Uint8Array }
  | { readonly type: 'exchange'; readonly ringId: RingId; readonly last: boolean;
      readonly groups: readonly ExchangeGroup[]; readonly quorum?: QuorumReport }
  | { readonly type: 'expected'; readonly ringId: RingId; readonly expected: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Group names: 1..NAME_WIRE_MAX bytes of UTF-8 without control characters. */
export function isValidGroupName(name: string): boolean {
  // eslint-disable-next-line no-control-regex
  return name.length > 0 && !/[\u0000-\u001f\u007f]/.test(name);
}

export function encodeJoin(group: string, pid: number, port: number, identity?: MemberIdentity): Uint8Array {
  const name = encoder.encode(group);
  const w = writeHeader(new Writer(new Uint8Array(HEADER + 2 + name.length + MEMBER_BYTES + IDENTITY_BYTES)), Type.Join);
  return writeIdentity(w.str16(name).u32(pid).u32(port), identity).done();
}

function writeIdentity(w: Writer, id: MemberIdentity | undefined): Writer {
  return id ? w.u32(id.uid).u32(id.gid).u8(id.verified ? 1 : 0) : w.u32(UNKNOWN_ID).u32(UNKNOWN_ID).u8(0);
}

function readIdentity(r: Reader): MemberIdentity | undefined {
  const uid = r.u32(), gid = r.u32(), flags = r.u8();
  if (flags & ~1) throw new Refused('value');
  return uid === UNKNOWN_ID && gid === UNKNOWN_ID ? undefined : { uid, gid, verified: (flags & 1) === 1 };
}

export function encodeLeave(group: string, pid: number, port: number, reason: LeaveReason): Uint8Array {
  return encodeMember(Type.Leave, group, pid, port, 1, reason);
}

function encodeMember(type: Type, group: string, pid: number, port: number, extra: number,
  reason?: LeaveReason): Uint8Array {
  const name = encoder.encode(group);
  const w = writeHeader(new Writer(new Uint8Array(HEADER + 2 + name.length + MEMBER_BYTES + extra)), type);
  w.str16(name).u32(pid).u32(port);
  if (extra) w.u8(LEAVE_REASONS.indexOf(reason ?? 'leave') + 1);
  return w.done();
}

export function encodeData(group: string, pid: number, port: number, data: Uint8Array): Uint8Array {
  const name = nameBytes(group);
  return writeData(new Uint8Array(dataOverhead(name.length) + data.length), name, pid, port, data);
}

/** Bytes of the DATA header dataMessage() puts in front of a message to `group`. */
export function dataHeaderBytes(group: string): number {
  return dataOverhead(nameBytes(group).length);
}

/**
 * The same message as encodeData, as parts for driver.multicast: a DATA header (dataHeader's, or
 * `header` when given: the same bytes, made once), then `data`'s bytes as they are. Nothing joins
 * them: the driver writes them into its frames.
 */
export function dataMessage(group: string, pid: number, port: number, data: Uint8Array | readonly Uint8Array[], header = dataHeader(group, pid, port)): Uint8Array[] {
  return data instanceof Uint8Array ? [header, data] : [header, ...data];
}

/** The DATA header of every message one socket (`pid`, `port`) sends to `group`: the same bytes
 *  each time, so a sender may make it once and hand the same array to every multicast (nobody
 *  writes a message's bytes once it is the driver's). In memory of its own, not a view of a
 *  shared slab (bytes.ts): kept for as long as the socket sends there, it would keep the slab. */
export function dataHeader(group: string, pid: number, port: number): Uint8Array {
  const name = nameBytes(group);
  return writeDataHeader(new Writer(new Uint8Array(dataOverhead(name.length))), name, pid, port).done();
}

let lastGroup: { group: string; bytes: Uint8Array } = { group: '', bytes: new Uint8Array(0) };
/** UTF-8 of a group name; a sender sends to one group over and over, so the last one is kept. */
function nameBytes(group: string): Uint8Array {
  if (group !== lastGroup.group) lastGroup = { group, bytes: encoder.encode(group) };
  return lastGroup.bytes;
}

function writeData(out: Uint8Array, name: Uint8Array, pid: number, port: number, data: Uint8Array): Uint8Array {
  return writeDataHeader(new Writer(out), name, pid, port).raw(data).done();
}

function writeDataHeader(w: Writer, name: Uint8Array, pid: number, port: number): Writer {
  return writeHeader(w, Type.Data).str16(name).u32(pid).u32(port);
}

/**
 * A node's exchange report, cut into parts of at most `partBytesMax` bytes each (one group's
 * member list may span parts: the receiver concatenates). The last part carries the last flag;
 * a node with no members sends one empty last part.
 */
export function encodeExchange(ringId: RingId, groups: readonly ExchangeGroup[],
  partBytesMax: number, quorum: QuorumReport): Uint8Array[] {
  const fixed = HEADER + EXCHANGE_FIXED;
  const parts: Uint8Array[] = [];
  let current: ExchangeGroup[] = [];
  let size = fixed;
  const flush = (last: boolean): void => {
    parts.push(encodeExchangePart(ringId, current, last, quorum));
    current = []; size = fixed;
  };
  const each = MEMBER_BYTES + IDENTITY_BYTES;
  for (const g of groups) {
    const nameBytes = encoder.encode(g.group).length + 4;
    let rest = g.members;
    while (rest.length > 0) {
      if (size + nameBytes + each > partBytesMax) flush(false);
      const room = Math.max(1, Math.floor((partBytesMax - size - nameBytes) / each));
      const take = Math.min(rest.length, room, 0xffff);
      current.push({ group: g.group, members: rest.slice(0, take) });
      size += nameBytes + take * each;
      rest = rest.slice(take);
    }
  }
  flush(true);
  return parts;
}

/** rep, seq, flags, expected votes, group count. */
const EXCHANGE_FIXED = 4 + 8 + 1 + 4 + 2;

function encodeExchangePart(ringId: RingId, groups: readonly ExchangeGroup[], last: boolean, quorum: QuorumReport): Uint8Array {
  const names = groups.map((g) => encoder.encode(g.group));
  let size = HEADER + EXCHANGE_FIXED;
  groups.forEach((g, i) => { size += 4 + names[i].length + g.members.length * (MEMBER_BYTES + IDENTITY_BYTES); });
  const w = writeHeader(new Writer(new Uint8Array(size)), Type.Exchange)
    .u32(ringId.rep).u64(ringId.seq).u8((last ? 1 : 0) | (quorum.allSeen ? 2 : 0)).u32(quorum.expected).u16(groups.length);
  groups.forEach((g, i) => {
    w.str16(names[i]).u16(g.members.length);
    for (const m of g.members) writeIdentity(w.u32(m.pid).u32(m.port), m.identity);
  });
  return w.done();
}

/** last_man_standing's proposal to lower expected votes on `ringId`. */
export function encodeExpected(ringId: RingId, expected: number): Uint8Array {
  return writeHeader(new Writer(new Uint8Array(HEADER + 16)), Type.Expected).u32(ringId.rep).u64(ringId.seq).u32(expected).done();
}

function writeHeader(w: Writer, type: Type): Writer {
  return w.u8(GROUPS_MAGIC).u8(GROUPS_WIRE_VERSION).u8(type);
}

/** Why a payload was dropped; `undefined` from decode comes with one of these in `why`. */
export type DecodeFailure = 'short' | 'magic' | 'version' | 'type' | 'name' | 'reason' | 'trailing' | 'value';

/** Valid group names: consecutive messages of one group skip UTF-8 decoding. */
const groupNames = new LastDecoded((raw) => {
  const s = decoder.decode(raw);
  if (!isValidGroupName(s)) throw new Error('not a valid group name');
  return s;
}, NAME_WIRE_MAX);


/** A decode failure other than running out of bytes or trailing ones. */
class Refused extends Error {
  constructor(readonly why: DecodeFailure) { super(why); }
}

/** A group name: 1..NAME_WIRE_MAX bytes of valid UTF-8 naming a valid group. */
function readName(r: Reader): string {
  const len = r.u16();
  if (len === 0 || len > NAME_WIRE_MAX) throw new Refused('name');
  r.need(len);
  const at = r.at;
  r.at += len;
  try { return groupNames.getAt(r.bytes, at, len); } catch { throw new Refused('name'); }
}

export type DecodeResult =
  | { readonly ok: true; readonly msg: GroupMessage }
  | { readonly ok: false; readonly why: DecodeFailure };

/** Where readDataHeaderAt puts a DATA message's header fields. */
export interface DataHeader {
  group: string;
  pid: number;
  port: number;
}

/**
 * The header of a well-formed DATA message at `bytes[start]` up to `end` (every node reads one
 * per message), read where it lies: no Reader, no view, no object. Its fields go into `into`;
 * returns where the payload starts (it runs to `end`), or -1 for anything else, which
 * decodeGroupMessage reads (and refuses, if it must).
 */
export function readDataHeaderAt(bytes: Uint8Array, start: number, end: number, into: DataHeader): number {
  if (end - start < HEADER + 2 || bytes[start] !== GROUPS_MAGIC || bytes[start + 2] !== Type.Data
    || bytes[start + 1] < 1 || bytes[start + 1] > GROUPS_WIRE_VERSION) return -1;
  const len = (bytes[start + 3] << 8) | bytes[start + 4];
  const m = start + HEADER + 2 + len;
  if (len === 0 || len > NAME_WIRE_MAX || m + MEMBER_BYTES > end) return -1;
  try { into.group = groupNames.getAt(bytes, start + HEADER + 2, len); } catch { return -1; }
  into.pid = readU32(bytes, m);
  into.port = readU32(bytes, m + 4);
  return m + MEMBER_BYTES;
}

const readHeader: DataHeader = { group: '', pid: 0, port: 0 };

/** A well-formed DATA message read straight from its bytes (readDataHeaderAt), as a message
 *  whose `data` is a view into `bytes`, as decodeGroupMessage's is. Undefined for anything else. */
export function readDataMessage(bytes: Uint8Array): Extract<GroupMessage, { type: 'data' }> | undefined {
  const at = readDataHeaderAt(bytes, 0, bytes.length, readHeader);
  if (at < 0) return undefined;
  return { type: 'data', group: readHeader.group, pid: readHeader.pid, port: readHeader.port, data: viewOf(bytes, at) };
}

/** Decodes one payload. DATA's `data` is a view into `bytes`: copy it to keep it. */
export function decodeGroupMessage(bytes: Uint8Array): DecodeResult {
  if (bytes.length < HEADER) return { ok: false, why: 'short' };
  if (bytes[0] !== GROUPS_MAGIC) return { ok: false, why: 'magic' };
  const version = bytes[1];
  if (version < 1 || version > GROUPS_WIRE_VERSION) return { ok: false, why: 'version' };
  const r = new Reader(bytes, HEADER);
  try {
    switch (bytes[2]) {
      case Type.Join: case Type.Leave: case Type.Data: return { ok: true, msg: readMemberMessage(r, bytes[2], version) };
      case Type.Exchange: return { ok: true, msg: readExchange(r, version) };
      case Type.Expected: {
        if (version === 1) return { ok: false, why: 'type' };
        const ringId = { rep: r.u32(), seq: r.u64() };
        const expected = r.u32();
        r.end();
        return { ok: true, msg: { type: 'expected', ringId, expected } };
      }
      default: return { ok: false, why: 'type' };
    }
  } catch (e) {
    if (e instanceof Refused) return { ok: false, why: e.why };
    if (e instanceof WireError) return { ok: false, why: e.kind === 'truncated' ? 'short' : e.kind === 'trailing' ? 'trailing' : 'value' };
    throw e;
  }
}

function readMemberMessage(r: Reader, type: Type, version: number): GroupMessage {
  const group = readName(r);
  const pid = r.u32();
  const port = r.u32();
  if (type === Type.Data) return { type: 'data', group, pid, port, data: r.rest() };
  if (type === Type.Join) {
    const identity = version >= 3 ? readIdentity(r) : undefined;
    r.end();
    return identity ? { type: 'join', group, pid, port, identity } : { type: 'join', group, pid, port };
  }
  const reason = LEAVE_REASONS[r.u8() - 1];
  if (reason === undefined) throw new Refused('reason');
  r.end();
  return { type: 'leave', group, pid, port, reason };
}

function readExchange(r: Reader, version: number): GroupMessage {
  const rep = r.u32();
  const seq = r.u64();
  const flags = r.u8();
  const quorum = version === 1 ? undefined : { allSeen: (flags & 2) !== 0, expected: r.u32() };
  const count = r.u16();
  const groups: ExchangeGroup[] = [];
  for (let i = 0; i < count; i++) {
    const group = readName(r);
    const n = r.u16();
    const ids = version >= 3;
    r.need(n * (MEMBER_BYTES + (ids ? IDENTITY_BYTES : 0)));
    const members: ReportedMember[] = [];
    for (let j = 0; j < n; j++) {
      const pid = r.u32(), port = r.u32();
      const identity = ids ? readIdentity(r) : undefined;
      members.push(identity ? { pid, port, identity } : { pid, port });
    }
    groups.push({ group, members });
  }
  r.end();
  return { type: 'exchange', ringId: { rep, seq }, last: (flags & 1) !== 0, groups, ...(quorum ? { quorum } : {}) };
}
