// Buffers whose memory goes back the moment their last holder lets go, not when V8 next
// collects them. Under load the daemon turns over hundreds of MB/s of datagrams and frames; a
// frame lives until every member holds it, long enough to be promoted, and its bytes (outside
// V8's heap) waited for a full collection: tens of MB of dead frames set the daemon's peak
// (docs/BENCH.md). Here their holders are counted and the last one out releases the memory.
//
// The rules, per ArrayBuffer (a view's `.buffer`):
// - own(): whoever made the memory says it is no one else's (a datagram the native helper read,
//   a frame the send queue cut into bytes of its own). Memory never owned is never released.
// - anchor(): the holder that makes release worth it takes it (totem's ring log); memory that
//   was never anchored is left to the collector, whatever else held and let go of it (a driver
//   that keeps its frames without counting them, like cman's, is safe so).
// - hold() / drop(): anyone that keeps a view past the call that gave it (the reassembler's
//   fragments, a slow client's queue, a datagram waiting for room in the send buffer) holds it,
//   and drops it when done. The drop that leaves an anchored buffer with no holder releases it.
// A view kept without hold() would read a released buffer: released memory is detached (every
// view of it then has length 0) by the daemon's releaser, and filled with a pattern by the
// simulator's (checkers see the bytes change). Nothing happens until a releaser is set: other
// hosts (the embedded runtime, tests) keep V8's lifetimes.
// Pure (memory only): the protocol cores may call it.

/** What a registered buffer's entry holds: holders * 2, plus 1 once anchored; PINNED: owned
 *  twice (shared), never released. */
const PINNED = -1;

let holders = new WeakMap<ArrayBuffer, number>();
let releaser: ((memory: ArrayBuffer) => void) | undefined;

export interface LeaseCounters {
  /** Buffers released, and their bytes. */
  released: number;
  releasedBytes: number;
  /** Memory owned a second time (two owners claimed it): never released. */
  pinned: number;
  /** drop() without a matching hold(): a bug; the buffer is pinned, not released. */
  unbalanced: number;
}

export const leaseCounters: LeaseCounters = { released: 0, releasedBytes: 0, pinned: 0, unbalanced: 0 };

/** Starts (or, with undefined, stops) releasing: `release` frees the memory now. Entries made
 *  before are forgotten. */
export function setReleaser(release: ((memory: ArrayBuffer) => void) | undefined): void {
  releaser = release;
  holders = new WeakMap();
  leaseCounters.released = leaseCounters.releasedBytes = leaseCounters.pinned = leaseCounters.unbalanced = 0;
}

/** A releaser is set. */
export function releasing(): boolean {
  return releaser !== undefined;
}

/** `b`'s memory (its whole ArrayBuffer) is no one else's. Ignored unless `b` spans all of it:
 *  an array cut from a shared slab or pool (core/wire/bytes.ts, Node's Buffer pool) never does. */
export function own(b: Uint8Array): void {
  if (releaser === undefined) return;
  const memory = b.buffer as ArrayBuffer;
  if (b.byteOffset !== 0 || b.byteLength !== memory.byteLength) return;
  if (holders.get(memory) === undefined) { holders.set(memory, 0); return; }
  holders.set(memory, PINNED);
  leaseCounters.pinned++;
}

/** The anchoring holder keeps `b` (a hold that also makes its memory releasable). */
export function anchor(b: Uint8Array): void {
  if (releaser === undefined) return;
  const memory = b.buffer as ArrayBuffer;
  const n = holders.get(memory);
  if (n !== undefined && n !== PINNED) holders.set(memory, (n + 2) | 1);
}

/** Someone keeps a view of `b` past the call that gave it. */
export function hold(b: Uint8Array): void {
  if (releaser === undefined) return;
  const memory = b.buffer as ArrayBuffer;
  const n = holders.get(memory);
  if (n !== undefined && n !== PINNED) holders.set(memory, n + 2);
}

/** The holder of a view of `b` is done with it (after hold() or anchor()). */
export function drop(b: Uint8Array): void {
  if (releaser === undefined) return;
  const memory = b.buffer as ArrayBuffer;
  const n = holders.get(memory);
  if (n === undefined || n === PINNED) return;
  if (n < 2) {
    holders.set(memory, PINNED);
    leaseCounters.unbalanced++;
    return;
  }
  if (n >= 4 || (n & 1) === 0) { holders.set(memory, n - 2); return; }
  holders.delete(memory);
  leaseCounters.released++;
  leaseCounters.releasedBytes += memory.byteLength;
  releaser(memory);
}

/** hold() each part. */
export function holdParts(parts: Uint8Array | readonly Uint8Array[]): void {
  if (releaser === undefined) return;
  if (parts instanceof Uint8Array) hold(parts); else for (const p of parts) hold(p);
}

/** drop() each part. */
export function dropParts(parts: Uint8Array | readonly Uint8Array[]): void {
  if (releaser === undefined) return;
  if (parts instanceof Uint8Array) drop(parts); else for (const p of parts) drop(p);
}

/** The releaser of a simulation or a test: the memory is overwritten with 0xdb, so a view read
 *  after its release reads bytes that are not the message's (a checker of payloads sees it). */
export function poisonRelease(memory: ArrayBuffer): void {
  new Uint8Array(memory).fill(0xdb);
}
