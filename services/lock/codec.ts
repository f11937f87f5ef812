// The lock service's wire format: requests and state snapshots carried as group messages.
// Binary, versioned, no JSON on the wire (docs/ARCHITECTURE.md, "Performance principles"). Pure: no I/O.
//
// Request:  u8 version=1 | u8 type (1 lock, 2 trylock, 3 unlock) | u8 mode (0 shared,
//           1 exclusive) | u32 requestId | u8 nameLen | name (UTF-8)
//           For unlock, requestId names the lock or trylock request it releases or cancels.
// Snapshot: u8 version=1 | u8 type=4 | joiner (u32 nodeId, u32 pid, u32 port) | u32 afterEvents
//           | u16 memberCount | members[] | u16 lockCount | locks[]
//   member:  u32 nodeId | u32 pid | u32 port | u8 flags (1 pending, 2 fencing: a departed
//            member whose holds wait for FENCED) | if pending: u32 eventsSinceJoin
//            | u16 olderCount | u16 olderIndex[]
//   lock:    u8 nameLen | name | u16 holderCount | entry[] | u16 waiterCount | entry[]
//   entry:   u16 memberIndex | u32 requestId | u8 mode
// Fenced:   u8 version=1 | u8 type=5 | member (u32 nodeId, u32 pid, u32 port): the departed
//           member can no longer act (it was fenced, or the fencing delay passed): release its holds.
import { ClusterError } from '../../core/api/errors.ts';
import type { Member } from '../../core/api/types.ts';
import { Reader, WireError } from '../../core/wire/reader.ts';
import { Writer } from '../../core/wire/writer.ts';

export type LockMode = 'shared' | 'exclusive';
export type LockOp = 'lock' | 'trylock' | 'unlock';

/** Longest lock name in UTF-8 bytes: keeps a full snapshot inside one message. */
export const LOCK_NAME_BYTES_MAX = 128;
const VERSION = 1;
const OPS: readonly LockOp[] = ['lock', 'trylock', 'unlock'];
const TYPE_SNAPSHOT = 4;
const TYPE_FENCED = 5;

export interface LockRequest {
  readonly type: 'request';
  readonly op: LockOp;
  readonly name: string;
  readonly mode: LockMode;
  readonly requestId: number;
}

export interface SnapshotEntry {
  readonly member: number; // index into SnapshotState.members
  readonly requestId: number;
  readonly mode: LockMode;
}

export interface SnapshotMember {
  readonly member: Member;
  /** A departed member whose holds wait for FENCED (not a member of the group any more). */
  readonly fencing?: boolean;
  /** Absent: the member holds the table. Present: it still waits for a snapshot. */
  readonly pending?: { readonly eventsSinceJoin: number; readonly older: readonly number[] };
}

export interface SnapshotState {
  readonly members: readonly SnapshotMember[];
  readonly locks: readonly { readonly name: string; readonly holders: readonly SnapshotEntry[]; readonly waiters: readonly SnapshotEntry[] }[];
}

export interface LockSnapshot {
  readonly type: 'snapshot';
  readonly joiner: Member;
  /** The state is as of this many group events after the joiner's own join event. */
  readonly afterEvents: number;
  readonly state: SnapshotState;
}

export interface LockFenced {
  readonly type: 'fenced';
  readonly member: Member;
}

export type LockMessage = LockRequest | LockSnapshot | LockFenced;

export function encodeFenced(member: Member): Uint8Array {
  return Writer.fixed(2 + 12).u8(VERSION).u8(TYPE_FENCED).member(member).done();
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Checks a lock name a user gave; EINVAL with what to do. */
export function lockNameBytes(name: string): Uint8Array {
  const bytes = encoder.encode(name);
  if (bytes.length === 0 || bytes.length > LOCK_NAME_BYTES_MAX) {
    throw new ClusterError('EINVAL', `lock name "${name.slice(0, 40)}" is ${bytes.length} bytes; use 1 to ${LOCK_NAME_BYTES_MAX} bytes of UTF-8`);
  }
  return bytes;
}

export function encodeRequest(req: Omit<LockRequest, 'type'>): Uint8Array {
  const name = lockNameBytes(req.name);
  return Writer.fixed(8 + name.length).u8(VERSION).u8(OPS.indexOf(req.op) + 1).u8(req.mode === 'exclusive' ? 1 : 0)
    .u32(req.requestId).u8(name.length).raw(name).done();
}

function writeEntries(w: Writer, entries: readonly SnapshotEntry[]): void {
  w.u16(entries.length);
  for (const e of entries) {
    w.u16(e.member);
    w.u32(e.requestId);
    w.u8(e.mode === 'exclusive' ? 1 : 0);
  }
}

export function encodeSnapshot(snap: Omit<LockSnapshot, 'type'>): Uint8Array {
  const w = Writer.growable(); // snapshots are rare: not on the request path
  w.u8(VERSION);
  w.u8(TYPE_SNAPSHOT);
  w.member(snap.joiner);
  w.u32(snap.afterEvents);
  w.u16(snap.state.members.length);
  for (const m of snap.state.members) {
    w.member(m.member);
    w.u8((m.pending ? 1 : 0) | (m.fencing ? 2 : 0));
    if (!m.pending) continue;
    w.u32(m.pending.eventsSinceJoin);
    w.u16(m.pending.older.length);
    for (const i of m.pending.older) w.u16(i);
  }
  w.u16(snap.state.locks.length);
  for (const l of snap.state.locks) {
    const name = lockNameBytes(l.name);
    w.u8(name.length);
    w.raw(name);
    writeEntries(w, l.holders);
    writeEntries(w, l.waiters);
  }
  return w.done();
}

/** Thrown inside the decoder for a value out of range; decodeLockMessage turns it into undefined. */
class Malformed extends Error {}

function readName(r: Reader): string {
  const n = r.u8();
  if (n === 0 || n > LOCK_NAME_BYTES_MAX) throw new Malformed();
  return decoder.decode(r.raw(n));
}

function readMode(r: Reader): LockMode {
  const m = r.u8();
  if (m > 1) throw new Malformed();
  return m === 1 ? 'exclusive' : 'shared';
}

function readEntries(r: Reader, memberCount: number): SnapshotEntry[] {
  const n = r.u16();
  const out: SnapshotEntry[] = [];
  for (let i = 0; i < n; i++) {
    const member = r.u16();
    if (member >= memberCount) throw new Malformed();
    out.push({ member, requestId: r.u32(), mode: readMode(r) });
  }
  return out;
}

function readSnapshot(r: Reader): LockSnapshot {
  const joiner = r.member();
  const afterEvents = r.u32();
  const memberCount = r.u16();
  const members: SnapshotMember[] = [];
  for (let i = 0; i < memberCount; i++) {
    const member = r.member();
    const flags = r.u8();
    if (flags > 3 || flags === 3) throw new Malformed();
    if (flags === 2) { members.push({ member, fencing: true }); continue; }
    if (flags === 0) { members.push({ member }); continue; }
    const eventsSinceJoin = r.u32();
    const older: number[] = [];
    for (let n = r.u16(), j = 0; j < n; j++) {
      const idx = r.u16();
      if (idx >= memberCount) throw new Malformed();
      older.push(idx);
    }
    members.push({ member, pending: { eventsSinceJoin, older } });
  }
  const locks: SnapshotState['locks'][number][] = [];
  for (let n = r.u16(), i = 0; i < n; i++) {
    locks.push({ name: readName(r), holders: readEntries(r, memberCount), waiters: readEntries(r, memberCount) });
  }
  return { type: 'snapshot', joiner, afterEvents, state: { members, locks } };
}

/** Decodes a group message; undefined when it is not a well-formed lock message. */
export function decodeLockMessage(data: Uint8Array): LockMessage | undefined {
  try {
    const r = new Reader(data);
    if (r.u8() !== VERSION) return undefined;
    const type = r.u8();
    let msg: LockMessage;
    if (type === TYPE_SNAPSHOT) {
      msg = readSnapshot(r);
    } else if (type === TYPE_FENCED) {
      msg = { type: 'fenced', member: r.member() };
    } else {
      const op = OPS[type - 1];
      if (op === undefined) return undefined;
      const mode = readMode(r);
      msg = { type: 'request', op, mode, requestId: r.u32(), name: readName(r) };
    }
    r.end();
    return msg;
  } catch (e) {
    if (e instanceof Malformed || e instanceof WireError || e instanceof TypeError) return undefined;
    throw e;
  }
}
