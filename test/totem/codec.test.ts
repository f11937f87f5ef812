// Proves the totem wire codec round-trips every message type and drops malformed input (never throws).
import { describe, expect, test } from 'vitest';
import { decode, encode, type TotemMsg } from '../../drivers/totem/codec.ts';

const limits = { rtrMax: 30, membersMax: 32 };
const ring = { rep: 3, seq: 2 ** 40 + 7 };
const samples: TotemMsg[] = [
  { type: 'token', sender: 1, ring, tokenSeq: 99, seq: 1234, aru: 1200, aruAddr: 2, fcc: 17, backlog: 4,
    retransFlag: true, install: false, parks: false, rtr: [1201, 1205, 2 ** 47] },
  { type: 'mcast', sender: 2, ring, seq: 5, origin: 4, safe: true, frame: new Uint8Array([1, 2, 3]) },
  { type: 'mcast', sender: 2, ring, seq: 6, origin: 2, safe: false,
    encap: { ring: { rep: 1, seq: 8 }, seq: 77, origin: 9, safe: true }, frame: new Uint8Array([9]) },
  { type: 'join', sender: 7, ringSeqHigh: 44, joinSeq: 3, ring, proc: [1, 2, 7], failed: [2] },
  { type: 'commit', sender: 1, ring, hops: 3, members: [
    { id: 1, oldRing: { rep: 1, seq: 4 }, aru: 10, highSeq: 12, highDelivered: 9, safeLine: 8, filled: true },
    { id: 5, oldRing: { rep: 0, seq: 0 }, aru: 0, highSeq: 0, highDelivered: 0, safeLine: 0, filled: false }] },
  { type: 'merge', sender: 4, ring },
  { type: 'holdCancel', sender: 4, ring },
  { type: 'token', sender: 1, ring, tokenSeq: 100, seq: 1234, aru: 1234, aruAddr: 0, fcc: 0, backlog: 0,
    retransFlag: false, install: false, held: true, parks: false, rtr: [] },
  { type: 'token', sender: 2, ring, tokenSeq: 101, seq: 1240, aru: 1240, aruAddr: 0, fcc: 6, backlog: 0,
    retransFlag: false, install: false, held: true, parks: true, rtr: [] },
];

describe('totem codec', () => {
  test('round trip', () => {
    for (const m of samples) {
      const d = decode(encode(m), limits);
      expect('msg' in d ? d.msg : d).toEqual(m);
    }
  });

  test('the token\'s flags: an older encoder\'s token (no parks bit) decodes with parks false', () => {
    const t = samples[8] as Extract<TotemMsg, { type: 'token' }>;
    const b = encode(t);
    const flagsAt = b.length - 2 - 1; // u8 flags, then the u16 rtr count (no entries)
    expect(b[flagsAt]).toBe(4 | 8);
    b[flagsAt] = 4;
    const d = decode(b, limits);
    expect('msg' in d && d.msg.type === 'token' && d.msg.parks).toBe(false);
  });

  test('malformed input is reported, never thrown', () => {
    const bad: Uint8Array[] = [new Uint8Array(0), new Uint8Array([2, 1, 0, 0, 0, 0, 0, 1]), new Uint8Array([1, 99, 0, 0, 0, 0, 0, 1])];
    for (const m of samples) {
      const b = encode(m);
      for (let cut = 0; cut < b.length - 1; cut++) bad.push(b.subarray(0, cut));
      const extra = new Uint8Array(b.length + 1);
      extra.set(b);
      bad.push(extra);
    }
    // an rtr list over the limit, unsorted join sets, a commit with hops beyond two rotations
    bad.push(encode({ ...(samples[0] as Extract<TotemMsg, { type: 'token' }>), rtr: Array.from({ length: 31 }, (_, i) => i) }));
    bad.push(encode({ type: 'join', sender: 7, ringSeqHigh: 1, joinSeq: 0, ring, proc: [2, 1], failed: [] }));
    bad.push(encode({ ...(samples[4] as Extract<TotemMsg, { type: 'commit' }>), hops: 5 }));
    for (const b of bad) {
      const d = decode(b, limits);
      expect('error' in d, `decoded ${Buffer.from(b).toString('hex')}`).toBe(true);
    }
  });

  test('random bytes never throw', () => {
    let x = 12345;
    for (let i = 0; i < 3000; i++) {
      const n = (x = (x * 1103515245 + 12345) >>> 0) % 80;
      const b = new Uint8Array(n);
      for (let j = 0; j < n; j++) b[j] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
      if (n > 1) { b[0] = 1; b[1] = 1 + (i % 6); }
      expect(() => decode(b, limits)).not.toThrow();
    }
  });
});
