// Wire codec of the cman driver's datagrams. Every datagram opens with the same 8 bytes:
//   u8  version (WIRE_VERSION)
//   u8  type    (1 data, 2 ack, 3 heartbeat, 4 leave)
//   u8  flags   (data: bit 0 = a resend)
//   u8  reserved (0)
//   u32 incarnation of the sending node (grows at every start; tells a restarted node apart)
// then, by type (sequence numbers are u48: u16 high, u32 low, big-endian):
//   data:      u48 seq, u48 low (the sender holds no frame below it), frame bytes (packing.ts)
//   ack:       u32 incarnation of the node acked, u48 cumulative (every seq <= it is held),
//              u16 bitmap bytes, bitmap (bit i of byte j = seq cumulative + 2 + 8j + i held)
//   heartbeat: u48 next seq (the next frame's seq), u48 low, u48 epoch (the sender's ring seq:
//              grows with each of its configurations), u32 hash of the configured node list,
//              u16 digest bytes, digest: one nibble per configured node in ascending id order
//              (high nibble first): 0 = not in the sender's membership, 1..15 = how many times
//              the sender has added that node, modulo 15 (it changes at every drop and re-add)
//   leave:     nothing more
// Parsing never throws: a malformed datagram decodes to undefined with the reason.

import { assert } from '../../core/api/errors.ts';
import { fnvStep, FNV_OFFSET } from '../../core/wire/hash.ts';
import { Reader } from '../../core/wire/reader.ts';
import { Writer } from '../../core/wire/writer.ts';

export const WIRE_VERSION = 2;
export const HEADER_BYTES = 8;
const SEQ_BYTES = 6;
export const DATA_HEADER_BYTES = HEADER_BYTES + 2 * SEQ_BYTES;
export const ACK_FIXED_BYTES = HEADER_BYTES + 4 + SEQ_BYTES + 2;
export const HEARTBEAT_FIXED_BYTES = HEADER_BYTES + 3 * SEQ_BYTES + 4 + 2;
/** Digest entries cycle through 1..15; 0 means "not a member". */
export const DIGEST_TOKEN_MAX = 15;
export const LEAVE_BYTES = HEADER_BYTES;
/** Sequence numbers live in 48 bits: at a million frames a second that lasts nine years. */
export const SEQ_MAX = 2 ** 48 - 1;
export const FLAG_RESEND = 1;

const enum Type { Data = 1, Ack = 2, Heartbeat = 3, Leave = 4 }

export interface DataMsg {
  readonly type: 'data';
  readonly incarnation: number;
  readonly resend: boolean;
  readonly seq: number;
  readonly low: number;
  readonly frame: Uint8Array;
}

export interface AckMsg {
  readonly type: 'ack';
  readonly incarnation: number;
  /** The incarnation of the sender whose frames are acknowledged. */
  readonly ackedIncarnation: number;
  readonly cumulative: number;
  /** Selective acks above cumulative + 1 (which is missing by definition). */
  readonly bitmap: Uint8Array;
}

export interface HeartbeatMsg {
  readonly type: 'heartbeat';
  readonly incarnation: number;
  readonly nextSeq: number;
  readonly low: number;
  /** The sender's ring seq when it sent this: a later digest has a higher epoch. */
  readonly epoch: number;
  /** Hash of the configured node list the digest is indexed by (nodeListHash). */
  readonly listHash: number;
  /** Nibble per configured node (digestToken reads one). */
  readonly digest: Uint8Array;
}

export interface LeaveMsg {
  readonly type: 'leave';
  readonly incarnation: number;
}

export type CmanMsg = DataMsg | AckMsg | HeartbeatMsg | LeaveMsg;

export type Decoded = { ok: true; msg: CmanMsg } | { ok: false; reason: string };

function header(size: number, type: Type, flags: number, incarnation: number): Writer {
  return writeHeader(Writer.fixed(size), type, flags, incarnation);
}

function writeHeader(w: Writer, type: Type, flags: number, incarnation: number): Writer {
  return w.u8(WIRE_VERSION).u8(type).u8(flags).u8(0).u32(incarnation);
}

export function encodeData(m: Omit<DataMsg, 'type'>): Uint8Array {
  return header(DATA_HEADER_BYTES + m.frame.length, Type.Data, m.resend ? FLAG_RESEND : 0, m.incarnation)
    .u48(m.seq).u48(m.low).raw(m.frame).done();
}

/**
 * A DATA datagram of a frame this node packed with DATA_HEADER_BYTES of unwritten room in front
 * of it (PackerOptions.headroom): the header goes into that room, the frame stays where it is,
 * and the datagram returned is a view of the frame's buffer. Once per frame: a resend copies.
 */
export function encodeDataAroundFrame(m: Omit<DataMsg, 'type'>): Uint8Array {
  const f = m.frame;
  const datagram = new Uint8Array(f.buffer, f.byteOffset - DATA_HEADER_BYTES, DATA_HEADER_BYTES + f.length);
  const w = writeHeader(new Writer(datagram), Type.Data, m.resend ? FLAG_RESEND : 0, m.incarnation).u48(m.seq).u48(m.low);
  assert(w.at === DATA_HEADER_BYTES, 'the DATA header fills the room in front of the frame');
  return datagram;
}

export function encodeAck(m: Omit<AckMsg, 'type'>): Uint8Array {
  return header(ACK_FIXED_BYTES + m.bitmap.length, Type.Ack, 0, m.incarnation)
    .u32(m.ackedIncarnation).u48(m.cumulative).u16(m.bitmap.length).raw(m.bitmap).done();
}

export function encodeHeartbeat(m: Omit<HeartbeatMsg, 'type'>): Uint8Array {
  return header(HEARTBEAT_FIXED_BYTES + m.digest.length, Type.Heartbeat, 0, m.incarnation)
    .u48(m.nextSeq).u48(m.low).u48(m.epoch).u32(m.listHash).u16(m.digest.length).raw(m.digest).done();
}

/** FNV-1a over the sorted node ids: peers index digests alike only if their lists match. */
export function nodeListHash(sortedIds: readonly number[]): number {
  let h = FNV_OFFSET;
  for (const id of sortedIds) for (let shift = 24; shift >= 0; shift -= 8) h = fnvStep(h, (id >>> shift) & 0xff);
  return h;
}

/** A digest of `count` nibbles: token(i) for the i-th configured node. */
export function makeDigest(count: number, token: (index: number) => number): Uint8Array {
  const out = new Uint8Array((count + 1) >> 1);
  for (let i = 0; i < count; i++) out[i >> 1] |= (token(i) & 0xf) << (i & 1 ? 0 : 4);
  return out;
}

/** The nibble at `index`; 0 when the digest is too short to hold it. */
export function digestToken(digest: Uint8Array, index: number): number {
  if (index < 0 || (index >> 1) >= digest.length) return 0;
  return (digest[index >> 1] >> (index & 1 ? 0 : 4)) & 0xf;
}

export function encodeLeave(m: Omit<LeaveMsg, 'type'>): Uint8Array {
  return header(LEAVE_BYTES, Type.Leave, 0, m.incarnation).done();
}

const fail = (reason: string): Decoded => ({ ok: false, reason });

export function decode(bytes: Uint8Array): Decoded {
  if (bytes.length < HEADER_BYTES) return fail(`${bytes.length} bytes is shorter than the header`);
  if (bytes[0] !== WIRE_VERSION) return fail(`version ${bytes[0]}, expected ${WIRE_VERSION}`);
  if (bytes[3] !== 0) return fail('reserved byte is not zero');
  const r = new Reader(bytes, 4);
  const incarnation = r.u32();
  if (incarnation === 0) return fail('incarnation 0');
  const flags = bytes[2];
  switch (bytes[1]) {
    case Type.Data: return decodeData(r, incarnation, flags);
    case Type.Ack: return flags === 0 ? decodeAck(r, incarnation) : fail('ack with flags');
    case Type.Heartbeat: return flags === 0 ? decodeHeartbeat(r, incarnation) : fail('heartbeat with flags');
    case Type.Leave:
      if (flags !== 0 || bytes.length !== LEAVE_BYTES) return fail('leave of wrong length or with flags');
      return { ok: true, msg: { type: 'leave', incarnation } };
    default: return fail(`unknown type ${bytes[1]}`);
  }
}

// The length checks come first, so the reads below never run out of bytes.
function decodeData(r: Reader, incarnation: number, flags: number): Decoded {
  if (r.left <= 2 * SEQ_BYTES) return fail('data without a frame');
  if ((flags & ~FLAG_RESEND) !== 0) return fail(`unknown data flags ${flags}`);
  const seq = r.u48();
  const low = r.u48();
  if (seq === 0 || low === 0 || low > seq) return fail(`data seq ${seq} with low ${low}`);
  return { ok: true, msg: { type: 'data', incarnation, resend: (flags & FLAG_RESEND) !== 0, seq, low, frame: r.rest() } };
}

function decodeAck(r: Reader, incarnation: number): Decoded {
  if (r.left < ACK_FIXED_BYTES - HEADER_BYTES) return fail('ack shorter than its fixed part');
  const ackedIncarnation = r.u32();
  const cumulative = r.u48();
  const bitmapBytes = r.u16();
  if (r.left !== bitmapBytes) return fail('ack bitmap length does not match');
  if (ackedIncarnation === 0) return fail('ack of incarnation 0');
  return { ok: true, msg: { type: 'ack', incarnation, ackedIncarnation, cumulative, bitmap: r.rest() } };
}

function decodeHeartbeat(r: Reader, incarnation: number): Decoded {
  if (r.left < HEARTBEAT_FIXED_BYTES - HEADER_BYTES) return fail('heartbeat shorter than its fixed part');
  const nextSeq = r.u48();
  const low = r.u48();
  if (low === 0 || low > nextSeq) return fail(`heartbeat next seq ${nextSeq} with low ${low}`);
  const epoch = r.u48();
  const listHash = r.u32();
  const digestBytes = r.u16();
  if (r.left !== digestBytes) return fail('heartbeat digest length does not match');
  return { ok: true, msg: { type: 'heartbeat', incarnation, nextSeq, low, epoch, listHash, digest: r.rest() } };
}

/** Seqs acknowledged by a bitmap (above cumulative + 1), ascending. */
export function bitmapSeqs(cumulative: number, bitmap: Uint8Array): number[] {
  const out: number[] = [];
  for (let j = 0; j < bitmap.length; j++) {
    const b = bitmap[j];
    if (b === 0) continue;
    for (let i = 0; i < 8; i++) if (b & (1 << i)) out.push(cumulative + 2 + 8 * j + i);
  }
  return out;
}

/** The bitmap for the held seqs above cumulative + 1 (held must be > cumulative + 1). */
export function makeBitmap(cumulative: number, heldSeqs: Iterable<number>): Uint8Array {
  const held = [...heldSeqs]; // walked twice: an iterator would be spent by the first pass
  let top = -1;
  for (const s of held) top = Math.max(top, s - cumulative - 2);
  const out = new Uint8Array(top < 0 ? 0 : (top >> 3) + 1);
  for (const s of held) {
    const bit = s - cumulative - 2;
    if (bit >= 0) out[bit >> 3] |= 1 << (bit & 7);
  }
  return out;
}
