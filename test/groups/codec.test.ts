// The groups wire format: every message round-trips, exchange reports split into parts within the size bound, and no truncation or corruption throws.
import { describe, expect, it } from 'vitest';
import {
  dataHeader, dataOverhead, decodeGroupMessage, encodeData, encodeExchange, encodeExpected, dataMessage, encodeJoin, encodeLeave, readDataMessage, type ExchangeGroup,
} from '../../core/groups/codec.ts';
import { concatBytes } from '../../core/wire/bytes.ts';

const Q = { allSeen: false, expected: 3 };

describe('groups codec', () => {
  it('round-trips join, leave (each reason), data and exchange', () => {
    expect(decodeGroupMessage(encodeJoin('grüppe', 4_000_000_000, 7))).toEqual({ ok: true, msg: { type: 'join', group: 'grüppe', pid: 4_000_000_000, port: 7 } });
    for (const reason of ['leave', 'procdown', 'overrun'] as const) {
      expect(decodeGroupMessage(encodeLeave('g', 1, 2, reason))).toEqual({ ok: true, msg: { type: 'leave', group: 'g', pid: 1, port: 2, reason } });
    }
    const data = encodeData('g', 1, 2, Uint8Array.of(9, 8, 7));
    expect(data.length).toBe(dataOverhead(1) + 3);
    const d = decodeGroupMessage(data);
    expect(d.ok && d.msg.type === 'data' && [...d.msg.data]).toEqual([9, 8, 7]);
    const big = concatBytes(dataMessage('grüppe', 0xffffffff, 0x80000001, [Uint8Array.of(1), Uint8Array.of(2)]));
    expect([...big]).toEqual([...encodeData('grüppe', 0xffffffff, 0x80000001, Uint8Array.of(1, 2))]);
    expect(decodeGroupMessage(big)).toEqual({ ok: true, msg: { type: 'data', group: 'grüppe', pid: 0xffffffff, port: 0x80000001, data: Uint8Array.of(1, 2) } });
    // One header made once, for every message of one socket to one group: the same bytes.
    const header = dataHeader('grüppe', 0xffffffff, 0x80000001);
    for (const payload of [Uint8Array.of(1, 2), Uint8Array.of(3)]) {
      expect([...concatBytes(dataMessage('grüppe', 0xffffffff, 0x80000001, payload, header))]).toEqual([...encodeData('grüppe', 0xffffffff, 0x80000001, payload)]);
    }
    const ex = encodeExchange({ rep: 3, seq: 2 ** 40 + 5 }, [{ group: 'a', members: [{ pid: 1, port: 1 }] }], 1000, { allSeen: true, expected: 5 });
    expect(ex).toHaveLength(1);
    expect(decodeGroupMessage(ex[0])).toEqual({ ok: true, msg: {
      type: 'exchange', ringId: { rep: 3, seq: 2 ** 40 + 5 }, last: true, groups: [{ group: 'a', members: [{ pid: 1, port: 1 }] }],
      quorum: { allSeen: true, expected: 5 },
    } });
    expect(decodeGroupMessage(encodeExpected({ rep: 2, seq: 7 }, 3))).toEqual({ ok: true, msg: { type: 'expected', ringId: { rep: 2, seq: 7 }, expected: 3 } });
  });

  it('carries who each member is in joins and reports, and still decodes version-2 ones without it', () => {
    const alice = { uid: 1000, gid: 100, verified: true };
    expect(decodeGroupMessage(encodeJoin('g', 7, 1, alice))).toEqual({ ok: true, msg: { type: 'join', group: 'g', pid: 7, port: 1, identity: alice } });
    const members = [{ pid: 7, port: 1, identity: { uid: 0, gid: 0, verified: false } }, { pid: 8, port: 2 }];
    const [ex] = encodeExchange({ rep: 1, seq: 2 }, [{ group: 'g', members }], 1000, Q);
    const d = decodeGroupMessage(ex);
    expect(d.ok && d.msg.type === 'exchange' && d.msg.groups).toEqual([{ group: 'g', members }]);
    // Version 2: JOIN "g" pid 7 port 1, and a report of one member 7/1, as older nodes send them.
    expect(decodeGroupMessage(Uint8Array.of(0x47, 2, 1, 0, 1, 0x67, 0, 0, 0, 7, 0, 0, 0, 1))).toEqual({ ok: true, msg: { type: 'join', group: 'g', pid: 7, port: 1 } });
    const v2 = Uint8Array.of(0x47, 2, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 3, 0, 1, 0, 1, 0x67, 0, 1, 0, 0, 0, 7, 0, 0, 0, 1);
    expect(decodeGroupMessage(v2)).toEqual({ ok: true, msg: {
      type: 'exchange', ringId: { rep: 1, seq: 2 }, last: true, groups: [{ group: 'g', members: [{ pid: 7, port: 1 }] }], quorum: { allSeen: false, expected: 3 },
    } });
    const bad = encodeJoin('g', 7, 1, alice);
    bad[bad.length - 1] = 2; // an unknown identity flag
    expect(decodeGroupMessage(bad)).toEqual({ ok: false, why: 'value' });
  });

  it('still decodes version-1 exchange reports (no quorum fields)', () => {
    const v1 = Uint8Array.of(0x47, 1, 4, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0);
    expect(decodeGroupMessage(v1)).toEqual({ ok: true, msg: { type: 'exchange', ringId: { rep: 3, seq: 9 }, last: true, groups: [] } });
    expect(decodeGroupMessage(Uint8Array.of(0x47, 1, 5, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1))).toEqual({ ok: false, why: 'type' });
  });

  it('cuts a large report into parts no bigger than the bound, the last one flagged', () => {
    const groups: ExchangeGroup[] = ['alpha', 'beta', 'gamma'].map((group, g) => ({
      group, members: Array.from({ length: 50 + g * 30 }, (_, i) => ({ pid: 1000 + i, port: g })),
    }));
    const parts = encodeExchange({ rep: 1, seq: 1 }, groups, 200, Q);
    expect(parts.length).toBeGreaterThan(5);
    const back = new Map<string, { pid: number; port: number }[]>();
    parts.forEach((p, i) => {
      expect(p.length).toBeLessThanOrEqual(200);
      const r = decodeGroupMessage(p);
      if (!r.ok || r.msg.type !== 'exchange') throw new Error('part did not decode');
      expect(r.msg.last).toBe(i === parts.length - 1);
      for (const g of r.msg.groups) back.set(g.group, [...(back.get(g.group) ?? []), ...g.members]);
    });
    expect([...back].map(([group, members]) => ({ group, members }))).toEqual(groups);
    expect(encodeExchange({ rep: 1, seq: 1 }, [], 200, Q)).toHaveLength(1);
  });

  it('never throws on truncated or corrupted bytes', () => {
    const samples = [
      encodeJoin('group', 1, 2), encodeLeave('group', 1, 2, 'overrun'), encodeData('group', 1, 2, new Uint8Array(5)),
      ...encodeExchange({ rep: 1, seq: 1 }, [{ group: 'g', members: [{ pid: 1, port: 2 }, { pid: 3, port: 4 }] }], 1000, Q),
      encodeExpected({ rep: 1, seq: 1 }, 2),
    ];
    let seed = 99;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed % n; };
    for (const s of samples) {
      for (let cut = 0; cut < s.length; cut++) {
        const r = decodeGroupMessage(s.subarray(0, cut));
        // A cut DATA message past its header is a valid message with a shorter payload.
        if (r.ok) expect(r.msg.type).toBe('data');
      }
      for (let i = 0; i < 300; i++) {
        const b = s.slice();
        b[rnd(b.length)] = rnd(256);
        expect(() => decodeGroupMessage(b)).not.toThrow();
      }
    }
    expect(decodeGroupMessage(Uint8Array.of(0x47, 1, 1, 0, 2, 0xff, 0xfe, 0, 0, 0, 1, 0, 0, 0, 1))).toEqual({ ok: false, why: 'name' });
    expect(readDataMessage(Uint8Array.of(0x47, 1, 3, 0, 2, 0xff, 0xfe, 0, 0, 0, 1, 0, 0, 0, 1))).toBeUndefined(); // the same name in a DATA
  });

  it('reads DATA straight from its bytes exactly as the general decoder does, and nothing else', () => {
    const seed = Number(process.env.GROUPS_CODEC_SEED ?? Date.now() % 1_000_000); // replay: GROUPS_CODEC_SEED=n
    console.log(`groups DATA fuzz seed ${seed} (replay with GROUPS_CODEC_SEED=${seed})`);
    let st = seed >>> 0;
    const rnd = (n: number): number => { st = (Math.imul(st, 1664525) + 1013904223) >>> 0; return st % n; };
    const samples = [
      encodeData('g', 1, 2, Uint8Array.of(9, 8, 7)), encodeData('grüppe', 0xffffffff, 0x80000001, new Uint8Array(0)),
      encodeData('x'.repeat(300), 7, 7, new Uint8Array(40).fill(3)),
      encodeJoin('g', 1, 2), encodeLeave('g', 1, 2, 'leave'), encodeExpected({ rep: 1, seq: 1 }, 2),
      ...encodeExchange({ rep: 1, seq: 1 }, [{ group: 'g', members: [{ pid: 1, port: 2 }] }], 1000, Q),
    ];
    const same = (b: Uint8Array) => {
      const fast = readDataMessage(b), general = decodeGroupMessage(b);
      if (fast !== undefined) expect(general).toEqual({ ok: true, msg: fast });
      else expect(general.ok && general.msg.type === 'data').toBe(false);
    };
    for (const s of samples) {
      for (let cut = 0; cut <= s.length; cut++) same(s.subarray(0, cut));
      for (let i = 0; i < 500; i++) {
        const b = s.slice();
        for (let k = 1 + rnd(2); k > 0; k--) b[rnd(Math.min(b.length, 12))] = rnd(4) === 0 ? rnd(256) : rnd(8);
        same(b);
      }
    }
    // Versions 1 and 2 carry DATA alike.
    for (const v of [1, 2]) { const b = encodeData('g', 1, 2, Uint8Array.of(1)); b[1] = v; same(b); expect(readDataMessage(b)).toBeDefined(); }
    // Refused by both: a name that is valid UTF-8 but not a group name (a control character), and
    // a name longer than the wire carries (4097 bytes, all there).
    const control = encodeData('g', 1, 2, Uint8Array.of(1)); control[5] = 0x07;
    same(control);
    expect(readDataMessage(control)).toBeUndefined();
    const long = new Uint8Array(5 + 4097 + 8 + 1).fill(0x61);
    long.set([0x47, 3, 3, 0x10, 0x01]); // magic, version, DATA, name length 4097
    same(long);
    expect(readDataMessage(long)).toBeUndefined();
    expect(readDataMessage(encodeData('x'.repeat(4096), 1, 2, Uint8Array.of(1)))).toMatchObject({ group: 'x'.repeat(4096) });
    expect(decodeGroupMessage(new Uint8Array([...encodeJoin('g', 1, 1), 0]))).toEqual({ ok: false, why: 'trailing' });
  });
});
