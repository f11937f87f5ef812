// Wire codec of the totem driver (docs/TOTEM.md, "Messages"). Every datagram opens with 8 bytes:
//   u8  version (WIRE_VERSION)   u8 type   u16 reserved (0)   u32 sender node id
// then, by type (ring ids are u32 rep + u48 seq; sequence numbers are u48, big-endian):
//   token:        ring, u48 tokenSeq, u48 seq, u48 aru, u32 aruAddr, u32 fcc, u32 backlog,
//                 u8 flags (1 retransFlag, 2 install, 4 held: the representative held this
//                 token since its previous visit, or a node parked it; 8 parks: a node parks
//                 the token after its lone messages; an older decoder ignores 4 and 8), u16 rtr count,
//                 u48 rtr seqs
//   mcast:        ring, u48 seq, u32 origin, u8 flags (1 safe, 2 encapsulated),
//                 [encapsulated: old ring, u48 old seq, u32 old origin, u8 old flags (1 safe)],
//                 u32 frame length, frame bytes (core/driver/packing.ts)
//   join:         u48 ringSeqHigh, u32 joinSeq (per sender, grows), ring (the sender's current
//                 ring), u16 proc count, u32 ids,
//                 u16 failed count, u32 ids
//   commit:       ring (the new ring), u16 hops, u16 member count, per member: u32 id, old ring,
//                 u48 aru, u48 highSeq, u48 highDelivered, u48 safeLine, u8 flags (1 filled)
//   merge detect: ring          hold cancel: ring
// Decoding never throws: a malformed datagram decodes to { error } and the driver counts it.
import { assert } from '../../core/api/errors.ts';
import type { RingId } from '../../core/driver/types.ts';
import { Reader, WireError } from '../../core/wire/reader.ts';
import { Writer } from '../../core/wire/writer.ts';

export const WIRE_VERSION = 1;
export const HEADER_BYTES = 8;
const RING_BYTES = 10;
export const SEQ_MAX = 2 ** 48 - 1;
/** Bytes an MCAST adds around its frame, and what the recovery wrapper adds on top. */
export const MCAST_HEADER_BYTES = HEADER_BYTES + RING_BYTES + 6 + 4 + 1 + 4;
export const ENCAP_HEADER_BYTES = RING_BYTES + 6 + 4 + 1;
export const COMMIT_MEMBER_BYTES = 4 + RING_BYTES + 4 * 6 + 1;
export const COMMIT_FIXED_BYTES = HEADER_BYTES + RING_BYTES + 4;
/** Node ids in a join's process or failed set; a join must fit one datagram. */
export const SET_MAX = 1024;

const TYPE = { token: 1, mcast: 2, join: 3, commit: 4, merge: 5, holdCancel: 6 } as const;

export interface TokenMsg {
  readonly type: 'token';
  readonly sender: number;
  ring: RingId;
  tokenSeq: number;
  seq: number;
  aru: number;
  aruAddr: number;
  fcc: number;
  backlog: number;
  retransFlag: boolean;
  install: boolean;
  /** The representative held the token on this rotation: it does not measure the ring's speed. */
  held?: boolean;
  /** A node parks the token after its lone messages (TotemOptions.parkMs): a node that wants the
   *  token while it is away sends a hold cancel at once. Set by the node that parks, cleared by it
   *  four visits after its last park; a node of an earlier version drops it (the nodes after it
   *  then wait out a run of parks). */
  parks?: boolean;
  rtr: number[];
}

export interface EncapInfo {
  readonly ring: RingId;
  readonly seq: number;
  readonly origin: number;
  readonly safe: boolean;
}

export interface McastMsg {
  readonly type: 'mcast';
  readonly sender: number;
  readonly ring: RingId;
  readonly seq: number;
  readonly origin: number;
  readonly safe: boolean;
  readonly encap?: EncapInfo;
  readonly frame: Uint8Array;
}

export interface JoinMsg {
  readonly type: 'join';
  readonly sender: number;
  readonly ringSeqHigh: number;
  /** Grows with every join a driver instance sends: (ringSeqHigh, joinSeq) orders a sender's joins. */
  readonly joinSeq: number;
  readonly ring: RingId;
  readonly proc: readonly number[];
  readonly failed: readonly number[];
}

export interface CommitEntry {
  readonly id: number;
  oldRing: RingId;
  aru: number;
  highSeq: number;
  highDelivered: number;
  safeLine: number;
  filled: boolean;
}

export interface CommitMsg {
  readonly type: 'commit';
  readonly sender: number;
  readonly ring: RingId;
  hops: number;
  readonly members: CommitEntry[];
}

export interface MergeDetectMsg { readonly type: 'merge'; readonly sender: number; readonly ring: RingId }
export interface HoldCancelMsg { readonly type: 'holdCancel'; readonly sender: number; readonly ring: RingId }

export type TotemMsg = TokenMsg | McastMsg | JoinMsg | CommitMsg | MergeDetectMsg | HoldCancelMsg;

// ---- writing ------------------------------------------------------------------------------

function writeRing(w: Writer, r: RingId): Writer { return w.u32(r.rep).u48(r.seq); }

function writeHeader(w: Writer, type: number, sender: number): Writer {
  return w.u8(WIRE_VERSION).u8(type).u16(0).u32(sender);
}

export function encode(m: TotemMsg): Uint8Array {
  switch (m.type) {
    case 'token': return encodeToken(m);
    case 'mcast': return encodeMcast(m);
    case 'join': return encodeJoin(m);
    case 'commit': return encodeCommit(m);
    case 'merge':
    case 'holdCancel': {
      const w = Writer.fixed(HEADER_BYTES + RING_BYTES);
      writeHeader(w, TYPE[m.type], m.sender);
      writeRing(w, m.ring);
      return w.done();
    }
  }
}

function encodeToken(m: TokenMsg): Uint8Array {
  const w = Writer.fixed(HEADER_BYTES + RING_BYTES + 6 * 3 + 4 * 3 + 1 + 2 + 6 * m.rtr.length);
  writeHeader(w, TYPE.token, m.sender);
  writeRing(w, m.ring);
  w.u48(m.tokenSeq); w.u48(m.seq); w.u48(m.aru);
  w.u32(m.aruAddr); w.u32(m.fcc); w.u32(m.backlog);
  w.u8((m.retransFlag ? 1 : 0) | (m.install ? 2 : 0) | (m.held ? 4 : 0) | (m.parks ? 8 : 0));
  w.u16(m.rtr.length);
  for (const s of m.rtr) w.u48(s);
  return w.done();
}

function encodeMcast(m: McastMsg): Uint8Array {
  return writeMcastHeader(Writer.fixed(MCAST_HEADER_BYTES + (m.encap ? ENCAP_HEADER_BYTES : 0) + m.frame.length), m)
    .raw(m.frame).done();
}

/**
 * An MCAST of a frame this node packed with MCAST_HEADER_BYTES of unwritten room in front of it
 * (PackerOptions.headroom): the header is written into that room and the frame stays where it
 * is. The datagram returned is a view of the frame's buffer. Never for an encapsulated message.
 */
export function encodeMcastAroundFrame(m: McastMsg): Uint8Array {
  assert(m.encap === undefined, 'an encapsulated MCAST has a longer header than the room left');
  const f = m.frame;
  const datagram = new Uint8Array(f.buffer, f.byteOffset - MCAST_HEADER_BYTES, MCAST_HEADER_BYTES + f.length);
  const w = writeMcastHeader(new Writer(datagram), m);
  assert(w.at === MCAST_HEADER_BYTES, 'the MCAST header fills the room in front of the frame');
  return datagram;
}

/** Everything of an MCAST up to its frame. */
function writeMcastHeader(w: Writer, m: McastMsg): Writer {
  writeHeader(w, TYPE.mcast, m.sender);
  writeRing(w, m.ring);
  w.u48(m.seq);
  w.u32(m.origin);
  w.u8((m.safe ? 1 : 0) | (m.encap ? 2 : 0));
  if (m.encap) {
    writeRing(w, m.encap.ring); w.u48(m.encap.seq); w.u32(m.encap.origin); w.u8(m.encap.safe ? 1 : 0);
  }
  return w.u32(m.frame.length);
}

function encodeJoin(m: JoinMsg): Uint8Array {
  const w = Writer.fixed(HEADER_BYTES + 6 + 4 + RING_BYTES + 4 + 4 * (m.proc.length + m.failed.length));
  writeHeader(w, TYPE.join, m.sender);
  w.u48(m.ringSeqHigh);
  w.u32(m.joinSeq);
  writeRing(w, m.ring);
  w.u16(m.proc.length);
  for (const id of m.proc) w.u32(id);
  w.u16(m.failed.length);
  for (const id of m.failed) w.u32(id);
  return w.done();
}

function encodeCommit(m: CommitMsg): Uint8Array {
  const w = Writer.fixed(COMMIT_FIXED_BYTES + COMMIT_MEMBER_BYTES * m.members.length);
  writeHeader(w, TYPE.commit, m.sender);
  writeRing(w, m.ring);
  w.u16(m.hops);
  w.u16(m.members.length);
  for (const e of m.members) {
    w.u32(e.id); writeRing(w, e.oldRing);
    w.u48(e.aru); w.u48(e.highSeq); w.u48(e.highDelivered); w.u48(e.safeLine);
    w.u8(e.filled ? 1 : 0);
  }
  return w.done();
}

// ---- reading ------------------------------------------------------------------------------

function readRing(r: Reader): RingId { const rep = r.u32(); return { rep, seq: r.u48() }; }

/** A u16-counted list of u32 node ids, refused above `max` entries. */
function readIds(r: Reader, max: number): number[] {
  const n = r.u16();
  if (n > max) throw new WireError(`list of ${n} entries over the limit of ${max}`);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(r.u32());
  return out;
}

export interface DecodeLimits {
  /** Entries in a token's rtr list. */
  readonly rtrMax: number;
  /** Members in a commit token, ids in a join's sets. */
  readonly membersMax: number;
}

export type Decoded = { readonly msg: TotemMsg } | { readonly error: string };

/** Never throws: malformed input yields { error }. */
export function decode(bytes: Uint8Array, limits: DecodeLimits): Decoded {
  try {
    const r = new Reader(bytes);
    const version = r.u8();
    if (version !== WIRE_VERSION) return { error: `version ${version}, expected ${WIRE_VERSION}` };
    const type = r.u8();
    r.u16();
    const sender = r.u32();
    const msg = decodeBody(r, type, sender, limits);
    if (typeof msg === 'string') return { error: msg };
    r.end();
    return { msg };
  } catch (e) {
    return { error: e instanceof WireError ? e.message : `undecodable: ${String(e)}` };
  }
}

function decodeBody(r: Reader, type: number, sender: number, limits: DecodeLimits): TotemMsg | string {
  switch (type) {
    case TYPE.token: return decodeToken(r, sender, limits);
    case TYPE.mcast: return decodeMcast(r, sender);
    case TYPE.join: {
      const ringSeqHigh = r.u48();
      const joinSeq = r.u32();
      const ring = readRing(r);
      const proc = readIds(r, Math.min(SET_MAX, limits.membersMax));
      const failed = readIds(r, Math.min(SET_MAX, limits.membersMax));
      if (!sortedUnique(proc) || !sortedUnique(failed)) return 'join sets not sorted and unique';
      return { type: 'join', sender, ringSeqHigh, joinSeq, ring, proc, failed };
    }
    case TYPE.commit: return decodeCommit(r, sender, limits);
    case TYPE.merge: return { type: 'merge', sender, ring: readRing(r) };
    case TYPE.holdCancel: return { type: 'holdCancel', sender, ring: readRing(r) };
    default: return `unknown type ${type}`;
  }
}

function decodeToken(r: Reader, sender: number, limits: DecodeLimits): TokenMsg | string {
  const ring = readRing(r);
  const tokenSeq = r.u48(); const seq = r.u48(); const aru = r.u48();
  const aruAddr = r.u32(); const fcc = r.u32(); const backlog = r.u32();
  const flags = r.u8();
  const n = r.u16();
  if (n > limits.rtrMax) return `rtr list of ${n} entries over the limit of ${limits.rtrMax}`;
  const rtr: number[] = [];
  for (let i = 0; i < n; i++) rtr.push(r.u48());
  if (aru > seq) return `token aru ${aru} above seq ${seq}`;
  return {
    type: 'token', sender, ring, tokenSeq, seq, aru, aruAddr, fcc, backlog,
    retransFlag: (flags & 1) !== 0, install: (flags & 2) !== 0, ...((flags & 4) !== 0 ? { held: true } : {}), parks: (flags & 8) !== 0, rtr,
  };
}

function decodeMcast(r: Reader, sender: number): McastMsg | string {
  const ring = readRing(r);
  const seq = r.u48();
  const origin = r.u32();
  const flags = r.u8();
  if (seq === 0) return 'mcast with seq 0';
  let encap: EncapInfo | undefined;
  if (flags & 2) {
    const oring = readRing(r); const oseq = r.u48(); const oorigin = r.u32(); const oflags = r.u8();
    if (oseq === 0) return 'encapsulated mcast with seq 0';
    encap = { ring: oring, seq: oseq, origin: oorigin, safe: (oflags & 1) !== 0 };
  }
  const frame = r.raw(r.u32());
  if (frame.length === 0) return 'mcast without a frame';
  return { type: 'mcast', sender, ring, seq, origin, safe: (flags & 1) !== 0, encap, frame };
}

function decodeCommit(r: Reader, sender: number, limits: DecodeLimits): CommitMsg | string {
  const ring = readRing(r);
  const hops = r.u16();
  const n = r.u16();
  if (n === 0 || n > limits.membersMax) return `commit token with ${n} members`;
  const members: CommitEntry[] = [];
  for (let i = 0; i < n; i++) {
    const id = r.u32(); const oldRing = readRing(r);
    const aru = r.u48(); const highSeq = r.u48(); const highDelivered = r.u48(); const safeLine = r.u48();
    const filled = (r.u8() & 1) !== 0;
    members.push({ id, oldRing, aru, highSeq, highDelivered, safeLine, filled });
  }
  if (!sortedUnique(members.map((e) => e.id))) return 'commit members not sorted and unique';
  if (hops > 2 * n) return `commit token hops ${hops} beyond two rotations of ${n}`;
  return { type: 'commit', sender, ring, hops, members };
}

function sortedUnique(ids: readonly number[]): boolean {
  for (let i = 1; i < ids.length; i++) if (ids[i] <= ids[i - 1]) return false;
  return true;
}
