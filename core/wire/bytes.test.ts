// Proves allocBytes/copyBytes/allocBytesToFill: plain Uint8Arrays (slice copies), zeroed or equal
// to the source, independent of the source and of each other although small ones share a slab,
// and large ones in memory of their own; plainBytes: a Buffer's bytes as a plain Uint8Array over
// the same memory; viewOf and copyInto: what subarray and set do.
import { describe, expect, it } from 'vitest';
import { LastDecoded, allocBytes, allocBytesToFill, copyBytes, copyInto, plainBytes, viewOf } from './bytes.ts';

describe('allocBytes and copyBytes', () => {
  it('are plain, independent Uint8Arrays with the right contents', () => {
    const dirty = Buffer.allocUnsafe(64).fill(0xab); // leave garbage in the pool
    void dirty;
    const a = allocBytes(100);
    expect(Object.getPrototypeOf(a)).toBe(Uint8Array.prototype);
    expect(a.every((b) => b === 0)).toBe(true);
    const src = Uint8Array.from({ length: 50 }, (_, i) => i);
    const c = copyBytes(src.subarray(10));
    expect([...c]).toEqual([...src.subarray(10)]);
    src[10] = 99;
    expect(c[0]).toBe(10);
    const s = c.slice();
    s[0] = 7;
    expect(c[0]).toBe(10);
    a.fill(1);
    expect(c[0]).toBe(10);
    const v = new DataView(c.buffer, c.byteOffset, c.byteLength);
    expect(v.getUint8(1)).toBe(11);
  });

  it('zero what they hand out from a slab whose unused bytes are dirty', () => {
    // Start a fresh slab (the first array whose memory is another slab's), then dirty all of it
    // past that array: the bytes nobody holds, that the next arrays are taken from.
    const first = allocBytesToFill(8);
    let head = allocBytesToFill(8);
    while (head.buffer === first.buffer) head = allocBytesToFill(8);
    new Uint8Array(head.buffer, head.byteOffset + head.length).fill(0xee);
    for (const n of [1, 100, 1000, 4096]) {
      const z = allocBytes(n);
      expect(z.buffer).toBe(head.buffer); // the dirtied slab, not fresh memory
      expect(z.every((x) => x === 0)).toBe(true);
    }
    const unzeroed = allocBytesToFill(16);
    expect(unzeroed.buffer).toBe(head.buffer);
    expect(unzeroed.every((x) => x === 0xee)).toBe(true); // the dirt was there to be cleared
  });

  it('share a slab while they are small, never overlapping, each zeroed if asked, and get memory of their own when large', () => {
    const taken: Uint8Array[] = [];
    // Enough to cross from one slab to the next several times, in odd sizes.
    for (let i = 0; i < 400; i++) {
      const n = 1 + ((i * 37) % 700);
      const b = i % 3 === 0 ? allocBytes(n) : allocBytesToFill(n);
      expect(b.length).toBe(n);
      if (i % 3 === 0) expect(b.every((x) => x === 0)).toBe(true); // although its neighbours were filled
      expect(b.byteOffset % 8).toBe(0);
      b.fill(i & 0xff);
      taken.push(b);
    }
    taken.forEach((b, i) => expect(b.every((x) => x === (i & 0xff))).toBe(true)); // no write reached another
    const slabs = new Set(taken.map((b) => b.buffer));
    expect(slabs.size).toBeGreaterThan(1);
    expect(slabs.size).toBeLessThan(taken.length / 10);
    for (const s of slabs) expect(s.byteLength).toBe(32 * 1024);
    const big = allocBytes(4097);
    expect(big.buffer.byteLength).toBe(4097);
    expect(big.every((x) => x === 0)).toBe(true);
    expect(allocBytesToFill(65536).buffer.byteLength).toBe(65536);
    expect(copyBytes(new Uint8Array(5000).fill(3)).buffer.byteLength).toBe(5000);
  });

  it('LastDecoded decodes each input right, remembers only the last accepted one, and never refused bytes', () => {
    let calls = 0;
    const d = new LastDecoded((b) => { calls++; if (b[0] === 0) throw new Error('refused'); return String.fromCharCode(...b); }, 3);
    const enc = (t: string): Uint8Array => Uint8Array.from(t, (c) => c.charCodeAt(0));
    expect(['ab', 'ab', 'ac', 'ab'].map((t) => d.get(enc(t)))).toEqual(['ab', 'ab', 'ac', 'ab']);
    expect(calls).toBe(3); // the second 'ab' came from memory
    expect(() => d.get(Uint8Array.of(0, 1))).toThrow('refused');
    expect(() => d.get(Uint8Array.of(0, 1))).toThrow('refused');
    expect(d.get(enc('abcd'))).toBe('abcd');
    expect(d.get(enc('abcd'))).toBe('abcd');
    expect(calls).toBe(7); // refused and over-long inputs are decoded every time
    // getAt: the same, for bytes inside a larger array, compared where they are.
    const frame = enc('xxabyyabzzacab');
    calls = 0;
    expect([2, 6, 10, 12].map((at) => d.getAt(frame, at, 2))).toEqual(['ab', 'ab', 'ac', 'ab']);
    expect(calls).toBe(2); // 'ab' twice from memory (the over-long 'abcd' was not kept), then 'ac' and 'ab' decoded
    expect(d.getAt(frame, 12, 2)).toBe('ab');
    expect(d.getAt(frame, 11, 2)).toBe('ca'); // the same length, other bytes: decoded
    expect(d.getAt(frame, 12, 1)).toBe('a'); // a prefix of the last input is not the last input
    expect(calls).toBe(4);
    expect(() => d.getAt(Uint8Array.of(9, 0, 1), 1, 2)).toThrow('refused');
  });
});

describe('plainBytes', () => {
  it('views a Buffer as a plain Uint8Array over the same memory, whose views are plain too', () => {
    const b = Buffer.from('--hello--').subarray(2, 7);
    const p = plainBytes(b);
    expect(Object.getPrototypeOf(p)).toBe(Uint8Array.prototype);
    expect(Object.getPrototypeOf(p.subarray(1))).toBe(Uint8Array.prototype);
    expect(Buffer.from(p).toString()).toBe('hello');
    p[0] = 0x48; // the same memory
    expect(b.toString()).toBe('Hello');
    const u = new Uint8Array(3);
    expect(plainBytes(u)).toBe(u);
  });
});

describe('viewOf and copyInto', () => {
  it('are subarray and set: views of the same memory (of a Buffer, a Buffer), to the end without an end; copies at an offset', () => {
    const u = Uint8Array.of(1, 2, 3, 4, 5);
    const v = viewOf(u, 1, 3);
    expect([...v]).toEqual([2, 3]);
    expect(Object.getPrototypeOf(v)).toBe(Uint8Array.prototype);
    v[0] = 9;
    expect(u[1]).toBe(9); // the same memory
    expect([...viewOf(u, 3)]).toEqual([4, 5]);
    expect(Buffer.isBuffer(viewOf(Buffer.from('hello'), 1, 3))).toBe(true);
    expect(viewOf(Buffer.from('hello'), 1, 3).toString()).toBe('el');
    const into = new Uint8Array(6);
    copyInto(into, Uint8Array.of(7, 8), 3);
    expect([...into]).toEqual([0, 0, 0, 7, 8, 0]);
    expect(() => copyInto(into, Uint8Array.of(1, 2), 5)).toThrow(RangeError);
  });
});
