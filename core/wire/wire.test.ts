// Proves the shared wire toolkit: writer and reader agree on every width, refuse what they must
// (truncation, trailing bytes, values past 2^53, overrunning a fixed array), and FNV-1a matches
// its published test vectors.
import { describe, expect, it } from 'vitest';
import { Reader, WireError } from './reader.ts';
import { Writer } from './writer.ts';
import { fnv1a } from './hash.ts';
import { compareMembers, memberKey } from './member.ts';

describe('core/wire', () => {
  it('round-trips every width, big-endian', () => {
    const w = Writer.fixed(1 + 2 + 4 + 6 + 8 + 8 + 2 + 3 + 12);
    w.u8(0xab).u16(0xbeef).u32(0xdeadbeef).u48(2 ** 48 - 1).u64(2 ** 53 - 1).f64(-1.5).str16(new Uint8Array([1, 2, 3]))
      .member({ nodeId: 7, pid: 0xffffffff, port: 1 });
    const bytes = w.done();
    expect([...bytes.subarray(0, 7)]).toEqual([0xab, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef]);
    const r = new Reader(bytes);
    expect([r.u8(), r.u16(), r.u32(), r.u48(), r.u64(), r.f64()]).toEqual([0xab, 0xbeef, 0xdeadbeef, 2 ** 48 - 1, 2 ** 53 - 1, -1.5]);
    expect([...r.raw(r.u16())]).toEqual([1, 2, 3]);
    expect(r.member()).toEqual({ nodeId: 7, pid: 0xffffffff, port: 1 });
    expect(() => r.end()).not.toThrow();
  });

  it('says why it refuses input', () => {
    const kind = (f: () => unknown): string => { try { f(); return 'none'; } catch (e) { return (e as WireError).kind; } };
    expect(kind(() => new Reader(new Uint8Array(3)).u32())).toBe('truncated');
    expect(kind(() => new Reader(new Uint8Array(3)).end())).toBe('trailing');
    expect(kind(() => new Reader(new Uint8Array([0, 0x20, 0, 0, 0, 0, 0, 0])).u64())).toBe('invalid');
    expect(kind(() => new Reader(new Uint8Array([0, 0, 0, 9, 1, 2])).count32(1))).toBe('truncated');
  });

  it('a fixed writer refuses to overrun or underfill; a growable one grows', () => {
    expect(() => Writer.fixed(3).u32(1)).toThrow(RangeError);
    expect(() => Writer.fixed(4).u16(1).done()).toThrow(/wrote 2 of 4/);
    const g = Writer.growable(2);
    for (let i = 0; i < 100; i++) g.u32(i);
    const out = g.done();
    expect(out.length).toBe(400);
    expect(new Reader(out, 396).u32()).toBe(99);
  });

  it('writes a header into room reserved in front of a payload, without touching the payload', () => {
    const buf = new Uint8Array(6);
    buf.set([9, 9], 4);
    new Writer(buf).u32(0x01020304);
    expect([...buf]).toEqual([1, 2, 3, 4, 9, 9]);
  });

  it('FNV-1a matches the reference vectors', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(fnv1a(new TextEncoder().encode('foobar'))).toBe(0xbf9cf968);
  });

  it('member keys and order', () => {
    expect(memberKey({ nodeId: 1, pid: 2, port: 3 })).toBe('1/2/3');
    const sorted = [{ nodeId: 2, pid: 1, port: 1 }, { nodeId: 1, pid: 5, port: 2 }, { nodeId: 1, pid: 5, port: 1 }].sort(compareMembers);
    expect(sorted.map(memberKey)).toEqual(['1/5/1', '1/5/2', '2/1/1']);
  });
});
