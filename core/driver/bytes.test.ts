// Proves allocBytes/copyBytes: plain Uint8Arrays (slice copies), zeroed or equal to the source,
// independent of the source and of each other although they share Node's pool.
import { describe, expect, it } from 'vitest';
import { allocBytes, copyBytes } from './bytes.ts';

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
});
