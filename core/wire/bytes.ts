// Byte arrays for the per-message paths. A fresh `new Uint8Array(n)` or `.slice()` of a frame
// gets its own zeroed backing store that the garbage collector tracks apart: about 1 to 2 us for
// 100 to 1400 bytes on the project's machine, several times per message. These take the next
// bytes of a shared slab instead and return a plain Uint8Array view of them, so `slice()` on the
// result still copies and code never meets Buffer's own semantics. (Node's Buffer.allocUnsafe
// does the same from an 8 KiB pool, but each of its slices is a Buffer, whose `.buffer` is a call
// into C++ and whose view is a second array; and at a few hundred messages per pool it makes a
// new pool, with malloc and free behind it, every few messages.)
// The view's `.buffer` is the slab: build DataViews with byteOffset and byteLength.
// Pure (memory only), so the protocol cores may use it.

/** Bytes of one slab, and the largest array taken from one (larger ones get their own). A slab
 *  lives while any array taken from it does: 32 KiB at most, as much as a received datagram's
 *  views keep of it. */
import { own } from './lease.ts';

const SLAB_BYTES = 32 * 1024;
const SLAB_TAKE_MAX = 4 * 1024;
let slab = new ArrayBuffer(0);
let slabAt = 0;

/** `n` bytes NOT zeroed (a fresh slab is Node's uninitialised memory). */
function take(n: number): Uint8Array {
  if (n > SLAB_TAKE_MAX) return allocApartToFill(n);
  if (slabAt + n > slab.byteLength) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES).buffer as ArrayBuffer;
    slabAt = 0;
  }
  const out = new Uint8Array(slab, slabAt, n);
  slabAt = (slabAt + n + 7) & ~7; // 8-byte aligned, as Node's pool
  return out;
}

/** Bytes as one array, or as parts whose concatenation they are, passed on without joining them. */
export type ByteParts = Uint8Array | readonly Uint8Array[];

/** `n` zeroed bytes (zeroed: nothing of an earlier message can leak into a frame). */
export function allocBytes(n: number): Uint8Array {
  return take(n).fill(0);
}

/** `n` bytes NOT zeroed, for a caller that writes every one of them before anything reads them
 *  (a fixed Writer, which done() checks, or a frame whose size is the sum of what is written):
 *  zeroing a 64 KiB frame first costs as much as filling it. */
export function allocBytesToFill(n: number): Uint8Array {
  return take(n);
}

/** `n` bytes NOT zeroed, with memory of their own, never a slab's: for an array kept long (a slab
 *  lives while any array taken from it does). */
export function allocApartToFill(n: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** allocApartToFill, owned (core/wire/lease.ts): released once its holders let go, at any size. */
export function allocOwned(n: number): Uint8Array {
  const out = allocApartToFill(n);
  own(out);
  return out;
}

/** As allocBytesToFill, for bytes that may be released once their holders let go (a frame
 *  handed to a ring log, a client's container): those with memory of their own (over the slab's
 *  largest take) are owned (core/wire/lease.ts); smaller ones share a slab, left to V8. */
export function allocOwnedToFill(n: number): Uint8Array {
  return n <= SLAB_TAKE_MAX ? take(n) : allocOwned(n);
}

// Uint8Array's subarray and set, called through the functions themselves: in optimized code,
// `b.subarray(...)` and `into.set(...)` look the method up with a generic property load each
// time (V8 does not fold the typed array prototype's lookup), a few nanoseconds per call on the
// per-message paths; viewOf and copyInto (inlined) call the builtin directly.
const { subarray: subarrayFn, set: setFn } = Uint8Array.prototype;

/** `b.subarray(start, end)`: a view of the same memory (of a Buffer, a Buffer). */
export function viewOf(b: Uint8Array, start: number, end?: number): Uint8Array {
  return subarrayFn.call(b, start, end);
}

/** `b` from `start` up to `end`: `b` itself when that is all of it, else a view (viewOf). */
export function rangeOf(b: Uint8Array, start: number, end: number): Uint8Array {
  return start === 0 && end === b.length ? b : viewOf(b, start, end);
}

/** `into.set(src, at)`: copies `src` into `into` at `at`. */
export function copyInto(into: Uint8Array, src: Uint8Array, at: number): void {
  setFn.call(into, src, at);
}

/** The same bytes as a plain Uint8Array (no copy). A received datagram arrives as a Buffer, and
 *  every view of a Buffer (subarray) is a Buffer too, built through Node's own subarray; a plain
 *  array's views are the engine's, and cheaper: the message path makes several per message. */
export function plainBytes(b: Uint8Array): Uint8Array {
  return Buffer.isBuffer(b) ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : b;
}

/** A copy of `src` that owns its bytes. */
export function copyBytes(src: Uint8Array): Uint8Array {
  const out = take(src.length);
  out.set(src);
  return out;
}

/** Big-endian integers at `at` of a plain array or a Buffer, by hand: no DataView (and for a
 *  Buffer no call into C++ for its .buffer) per datagram. Typed-array stores keep the low 8 bits:
 *  no masks needed. */
export function readU32(b: Uint8Array, at: number): number {
  return b[at] * 0x1000000 + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
}

export function writeU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v;
}

export function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** How many bytes `b` holds, whole or in parts. */
export function bytePartsLength(b: ByteParts): number {
  if (b instanceof Uint8Array) return b.length;
  let n = 0;
  for (const p of b) n += p.length;
  return n;
}

/** The concatenation of `parts`, in bytes of its own. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = allocBytesToFill(bytePartsLength(parts));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Equal lengths and bytes (false for two empty arrays: nothing to remember there). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length || a.length === 0) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A decoder that remembers the last bytes it decoded and their text: a stream of messages of
 * one group decodes the group's name once. `decode` throws on bytes it refuses (nothing is
 * remembered then); inputs longer than `maxBytes` are decoded but not remembered.
 */
export class LastDecoded {
  private bytes = new Uint8Array(0);
  private text = '';
  constructor(private readonly decode: (bytes: Uint8Array) => string, private readonly maxBytes = 255) {}

  get(bytes: Uint8Array): string {
    if (sameBytes(bytes, this.bytes)) return this.text;
    const text = this.decode(bytes);
    // new Uint8Array(), not slice(): a Buffer's slice() is a view, which kept its whole datagram.
    if (bytes.length <= this.maxBytes) { this.bytes = new Uint8Array(bytes); this.text = text; }
    return text;
  }

  /** get() of the `len` bytes of `src` from `at` (within it): compared where they are, so the
   *  usual case, the last input again, makes no view of them. */
  getAt(src: Uint8Array, at: number, len: number): string {
    const last = this.bytes;
    if (len === last.length && len > 0) {
      let i = 0;
      while (i < len && src[at + i] === last[i]) i++;
      if (i === len) return this.text;
    }
    return this.get(src.subarray(at, at + len));
  }
}
