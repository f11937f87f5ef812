// Byte arrays for the per-message paths. A fresh `new Uint8Array(n)` or `.slice()` of a frame
// gets its own zeroed backing store that the garbage collector tracks apart: about 1 to 2 us for
// 100 to 1400 bytes on the project's machine, several times per message. These take a slice of
// Node's shared allocation pool instead (a quarter of the cost) and return a plain Uint8Array
// view, so `slice()` on the result still copies and code never meets Buffer's own semantics.
// The view's `.buffer` is the shared pool: build DataViews with byteOffset and byteLength.
// Pure (memory only), so the protocol cores may use it.

/** `n` zeroed bytes (zeroed: nothing of an earlier message can leak into a frame). */
/** Bytes as one array, or as parts whose concatenation they are, passed on without joining them. */
export type ByteParts = Uint8Array | readonly Uint8Array[];

export function allocBytes(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(n).fill(0);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** `n` bytes NOT zeroed, for a caller that writes every one of them before anything reads them
 *  (a fixed Writer, which done() checks, or a frame whose size is the sum of what is written):
 *  zeroing a 64 KiB frame first costs as much as filling it. */
export function allocBytesToFill(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** The same bytes as a plain Uint8Array (no copy). A received datagram arrives as a Buffer, and
 *  every view of a Buffer (subarray) is a Buffer too, built through Node's own subarray; a plain
 *  array's views are the engine's, and cheaper: the message path makes several per message. */
export function plainBytes(b: Uint8Array): Uint8Array {
  return Buffer.isBuffer(b) ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : b;
}

/** A copy of `src` that owns its bytes. */
export function copyBytes(src: Uint8Array): Uint8Array {
  const b = Buffer.allocUnsafe(src.length);
  b.set(src);
  return new Uint8Array(b.buffer, b.byteOffset, src.length);
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
    if (bytes.length <= this.maxBytes) { this.bytes = bytes.slice(); this.text = text; }
    return text;
  }
}
