// Proves the bridge codec round-trips every request, reply and event (version-2 HELLO, RESUME, BATCH containers, WRITABLE; version-3 views, quorum; MEMBER_INFO; version-4 RESUME on a first part), and that hostile bytes (random, truncated, wrong version, unknown op) never throw but come back as drop/bad with the right errno.
import { describe, expect, it } from 'vitest';
import {
  DATAGRAM_MAX, GATHER_BYTES_MIN, LARGE_DATAGRAM_MAX, decodeClientDatagram, decodeClientItem, decodeDaemonDatagram, encodeBatch, encodeEvent, encodeMessageDatagrams,
  encodeReply, encodeRequest, gatheredMessage, isBatch, readMessageAt, visitBatch,
  encodeStatusReply, encodeWritable, OP, OP_PROTOCOL_ERROR, REPLY_BIT, type Reply, type Request,
} from './codec.ts';
import type { MembershipEvent, QuorumState, SocketEvent } from '../api/types.ts';

const requests: Request[] = [
  { type: 'hello', id: 1, pid: 4242 },
  { type: 'hello', id: 1, pid: 4242, version: 2 },
  { type: 'send', id: 12, order: 'agreed', data: new Uint8Array([1, 2]), resume: true },
  { type: 'close', id: 2 },
  { type: 'bind', id: 3, group: 'ørders', selfDelivery: true },
  { type: 'bind', id: 4, group: 'g', selfDelivery: false },
  { type: 'unbind', id: 5 },
  { type: 'send', id: 6, order: 'safe', data: new Uint8Array([1, 2, 3]) },
  { type: 'send', id: 7, order: 'fifo', data: new Uint8Array(0) },
  { type: 'members', id: 8 },
  { type: 'localNode', id: 9 },
  { type: 'stats', id: 0xffffffff },
  { type: 'quorum', id: 13 },
  { type: 'memberInfo', id: 14 },
  { type: 'hello', id: 1, pid: 4242, version: 3 },
  { type: 'sendPart', id: 11, order: 'agreed', msgId: 3, total: 10, offset: 4, data: new Uint8Array([5, 6, 7]) },
  { type: 'sendPart', id: 13, order: 'agreed', msgId: 4, total: 10, offset: 0, data: new Uint8Array([5, 6, 7]), resume: true },
  { type: 'hello', id: 1, pid: 4242, version: 4 },
];

const a = { nodeId: 1, pid: 100, port: 1 };
const b = { nodeId: 2, pid: 200, port: 7 };
const replies: Reply[] = [
  { type: 'reply', op: OP.hello | REPLY_BIT, id: 1, status: 0, result: { type: 'hello', hello: { nodeId: 3, pid: 9, port: 2, messageSizeMax: 65000, driver: 'totem' } } },
  { type: 'reply', op: OP.bind | REPLY_BIT, id: 2, status: 98, result: { type: 'none' } },
  { type: 'reply', op: OP.send | REPLY_BIT, id: 3, status: 0, result: { type: 'none' } },
  { type: 'reply', op: OP.members | REPLY_BIT, id: 4, status: 0, result: { type: 'members', group: 'g', members: [a, b] } },
  { type: 'reply', op: OP.localNode | REPLY_BIT, id: 5, status: 0, result: { type: 'localNode', node: { nodeId: 2, driver: 'cman', ringId: { rep: 1, seq: 2 ** 40 }, members: [1, 2, 3] } } },
  { type: 'reply', op: OP.stats | REPLY_BIT, id: 6, status: 0, result: { type: 'stats', stats: { 'driver.sent': 12, 'driver.ring': '1.4', x: 0.5 } } },
  { type: 'reply', op: OP_PROTOCOL_ERROR, id: 7, status: 71, result: { type: 'none' } },
  { type: 'reply', op: OP.quorum | REPLY_BIT, id: 8, status: 0, result: { type: 'quorum', quorum: {
    state: { quorate: false, votes: 1, expected: 3, quorum: 2, flags: ['wait_for_all', 'auto_tie_breaker'] },
    nodes: [{ nodeId: 1, votes: 1, present: true }, { nodeId: 2, votes: 2, present: false }],
  } } },
  { type: 'reply', op: OP.memberInfo | REPLY_BIT, id: 9, status: 0, result: { type: 'memberInfo', group: 'g', members: [
    { member: a, identity: { uid: 0, gid: 0, verified: true } }, { member: b, identity: { uid: 65534, gid: 100, verified: false } }, { member: { ...b, port: 8 } },
  ] } },
];

const quorum: QuorumState = { quorate: true, votes: 2, expected: 3, quorum: 2, flags: ['last_man_standing'] };
/** Version-3 events: membership with view id and quorum, and the QUORUM event. */
const eventsV3: SocketEvent[] = [
  { type: 'membership', group: 'g', kind: 'transitional', ringId: { rep: 2, seq: 12 }, members: [a], joined: [], left: [{ member: b, reason: 'nodedown' }],
    viewId: { ringId: { rep: 1, seq: 8 }, seq: 4 }, quorum: { ...quorum, flags: [...quorum.flags] } },
  { type: 'quorum', group: 'g', ringId: { rep: 2, seq: 12 }, quorum: { quorate: false, votes: 1, expected: 2, quorum: 2, flags: ['disabled', 'two_node'] } },
];

/** Version-4 events: membership with who the members are. */
const eventsV4: SocketEvent[] = [
  { type: 'membership', group: 'g', kind: 'regular', ringId: { rep: 1, seq: 8 }, members: [a, b], joined: [{ member: b, reason: 'join' }], left: [],
    viewId: { ringId: { rep: 1, seq: 8 }, seq: 2 }, quorum: { ...quorum, flags: [] },
    identities: [{ uid: 1000, gid: 100, verified: true }, null] },
];

const events: SocketEvent[] = [
  { type: 'message', group: 'g', sender: a, order: 'agreed', data: new Uint8Array([9, 8]) },
  { type: 'membership', group: 'g', kind: 'regular', ringId: { rep: 1, seq: 8 }, members: [a, b], joined: [{ member: b, reason: 'join' }], left: [{ member: { nodeId: 3, pid: 1, port: 1 }, reason: 'overrun' }] },
  { type: 'membership', group: 'g', kind: 'transitional', ringId: { rep: 2, seq: 9 }, members: [], joined: [], left: [] },
  { type: 'error', code: 'ENOBUFS', message: 'fell behind' },
];

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

describe('bridge codec', () => {
  it('round-trips every request', () => {
    for (const req of requests) expect(decodeClientDatagram(encodeRequest(req))).toEqual({ type: 'request', request: req });
  });
  it('round-trips every reply', () => {
    for (const r of replies) expect(decodeDaemonDatagram(encodeReply(r))).toEqual({ type: 'reply', reply: r });
  });
  it('round-trips every event', () => {
    for (const ev of events) expect(decodeDaemonDatagram(encodeEvent(ev, 2)!)).toEqual({ type: 'event', event: ev });
    for (const ev of eventsV3) expect(decodeDaemonDatagram(encodeEvent(ev, 3)!)).toEqual({ type: 'event', event: ev });
    for (const ev of eventsV4) expect(decodeDaemonDatagram(encodeEvent(ev, 4)!)).toEqual({ type: 'event', event: ev });
  });
  it('version 4: who each member is, unknown where the event does not say; refused when the counts differ', () => {
    const [withIds] = eventsV4;
    expect(encodeEvent(withIds, 4)![3]).toBe(0x49);
    // Version 3 gets the same event without identities.
    const { identities: _, ...v3 } = withIds as MembershipEvent;
    expect(decodeDaemonDatagram(encodeEvent(withIds, 3)!)).toEqual({ type: 'event', event: v3 });
    // An event with no identities (a layer that has none) says "unknown" for every member.
    expect(decodeDaemonDatagram(encodeEvent(v3, 4)!)).toEqual({ type: 'event', event: { ...v3, identities: [null, null] } });
    const bytes = encodeEvent(withIds, 4)!;
    const count = bytes.length - 4 - 2 * 9;
    const wrong = bytes.slice(); wrong[count + 3] = 3;
    expect(decodeDaemonDatagram(wrong)).toMatchObject({ type: 'bad' });
  });
  it('gives older sockets what their version carries: MEMBERSHIP without view and quorum, no QUORUM event', () => {
    const [membership, quorumEvent] = eventsV3;
    expect(decodeDaemonDatagram(encodeEvent(membership, 2)!)).toEqual({ type: 'event', event: {
      type: 'membership', group: 'g', kind: 'transitional', ringId: { rep: 2, seq: 12 }, members: [a], joined: [], left: [{ member: b, reason: 'nodedown' }],
    } });
    expect(encodeEvent(quorumEvent, 1)).toBeUndefined();
    expect(encodeEvent(membership, 2)![3]).toBe(0x42);
    expect(encodeEvent(membership, 3)![3]).toBe(0x47);
  });

  it('decodes alternating group names of one length right (the decoder keeps the last name)', () => {
    const sender = { nodeId: 0xfffffffe, pid: 0x80000000, port: 7 };
    for (const group of ['g1', 'g2', 'g2', 'g1', 'h1', 'g1']) {
      const ev: SocketEvent = { type: 'message', group, sender, order: 'agreed', data: Uint8Array.of(1) };
      expect(decodeDaemonDatagram(encodeEvent(ev)!)).toEqual({ type: 'event', event: ev });
    }
  });
  it('splits a message event larger than a datagram into parts that reassemble to it', () => {
    const data = new Uint8Array(200_000).map((_, i) => i % 251);
    const ev = { type: 'message', group: 'big', sender: a, order: 'safe', data } as const;
    const datagrams = encodeMessageDatagrams(ev, 77);
    expect(datagrams.length).toBe(4);
    const whole = new Uint8Array(data.length);
    for (const d of datagrams) {
      expect(d.length).toBeLessThanOrEqual(DATAGRAM_MAX);
      const r = decodeDaemonDatagram(d);
      if (r.type !== 'part') throw new Error(`expected a part, got ${r.type}`);
      expect(r.part).toMatchObject({ group: 'big', sender: a, order: 'safe', msgId: 77, total: data.length });
      whole.set(r.part.data, r.part.offset);
    }
    expect(whole).toEqual(data);
    expect(encodeMessageDatagrams({ ...ev, data: data.subarray(0, 1000) }, 78)).toEqual([encodeEvent({ ...ev, data: data.subarray(0, 1000) })]);
  });
  it('refuses a datagram of 65536 bytes or more (it may have been cut) with EMSGSIZE, and a part beyond its total with EINVAL', () => {
    const big = encodeRequest({ type: 'send', id: 9, order: 'fifo', data: new Uint8Array(DATAGRAM_MAX + 1 - 10) });
    expect(big.length).toBe(65536);
    expect(decodeClientDatagram(big)).toMatchObject({ type: 'bad', id: 9, status: 'EMSGSIZE' });
    const part = encodeRequest({ type: 'sendPart', id: 4, order: 'fifo', msgId: 1, total: 10, offset: 8, data: new Uint8Array(2) });
    part[17] = 9; // total 9: offset 8 + 2 bytes is beyond it
    expect(decodeClientDatagram(part)).toMatchObject({ type: 'bad', id: 4, status: 'EINVAL' });
    const resumed = encodeRequest({ type: 'sendPart', id: 5, order: 'fifo', msgId: 1, total: 10, offset: 0, data: new Uint8Array(2), resume: true });
    const late = resumed.slice(); late[21] = 2; // offset 2: RESUME only opens a message
    expect(decodeClientDatagram(late)).toMatchObject({ type: 'bad', id: 5, status: 'EINVAL' });
    const flags = resumed.slice(); flags[9] = 2;
    expect(decodeClientDatagram(flags)).toMatchObject({ type: 'bad', id: 5, status: 'EINVAL' });
  });
  it('answers a wrong version and an unknown op with EPROTO, a bad body with EINVAL', () => {
    const hello = encodeRequest({ type: 'hello', id: 5, pid: 1 });
    const v6 = hello.slice(); v6[2] = 6; // one past VERSION_MAX
    expect(decodeClientDatagram(v6)).toMatchObject({ type: 'bad', id: 5, op: OP_PROTOCOL_ERROR, status: 'EPROTO' });
    const op = hello.slice(); op[3] = 0x3f;
    expect(decodeClientDatagram(op)).toMatchObject({ type: 'bad', id: 5, status: 'EPROTO' });
    expect(decodeClientDatagram(hello.subarray(0, 10))).toMatchObject({ type: 'bad', id: 5, op: OP.hello | REPLY_BIT, status: 'EINVAL' });
    const order = encodeRequest({ type: 'send', id: 6, order: 'fifo', data: new Uint8Array(1) }); order[8] = 9;
    expect(decodeClientDatagram(order)).toMatchObject({ type: 'bad', status: 'EINVAL' });
    // SENDs take a shorter road when they are well formed: the others still meet the general one.
    const send = encodeRequest({ type: 'send', id: 7, order: 'safe', data: Uint8Array.of(4, 5) });
    expect(decodeClientDatagram(send)).toEqual({ type: 'request', request: { type: 'send', id: 7, order: 'safe', data: Uint8Array.of(4, 5) } });
    const sendFlags = send.slice(); sendFlags[9] = 2;
    expect(decodeClientDatagram(sendFlags)).toMatchObject({ type: 'bad', id: 7, status: 'EINVAL' });
    const sendV6 = send.slice(); sendV6[2] = 6;
    expect(decodeClientDatagram(sendV6)).toMatchObject({ type: 'bad', id: 7, op: OP_PROTOCOL_ERROR, status: 'EPROTO' });
    const sendMagic = send.slice(); sendMagic[0] ^= 1;
    expect(decodeClientDatagram(sendMagic)).toMatchObject({ type: 'drop' });
    expect(decodeClientDatagram(send.subarray(0, 9))).toMatchObject({ type: 'bad', id: 7, status: 'EINVAL' });
    expect(decodeClientDatagram(send, send.length - 1)).toMatchObject({ type: 'bad', id: 7, status: 'EMSGSIZE' });
    const sendV0 = send.slice(); sendV0[2] = 0;
    expect(decodeClientDatagram(sendV0)).toMatchObject({ type: 'bad', id: 7, op: OP_PROTOCOL_ERROR, status: 'EPROTO' });
    const high = encodeRequest({ type: 'send', id: 0xfffffffe, order: 'fifo', data: Uint8Array.of(1), resume: true });
    expect(decodeClientDatagram(high)).toEqual({ type: 'request', request: { type: 'send', id: 0xfffffffe, order: 'fifo', data: Uint8Array.of(1), resume: true } });
  });
  it('reads status-only replies as the general path does: a result-bearing op with status 0 and an unknown op are not status-only', () => {
    const none = { type: 'none' };
    for (const [op, status] of [[OP.send, 0], [OP.sendPart, 0], [OP.bind, 0], [OP.close, 0], [OP.unbind, 0], [OP.send, 11], [OP.hello, 71], [OP.stats, 11]] as const) {
      expect(decodeDaemonDatagram(encodeStatusReply(op | REPLY_BIT, 9, status))).toEqual({ type: 'reply', reply: { type: 'reply', op: op | REPLY_BIT, id: 9, status, result: none } });
    }
    expect(decodeDaemonDatagram(encodeStatusReply(OP_PROTOCOL_ERROR, 0xfffffffe, 71))).toEqual({ type: 'reply', reply: { type: 'reply', op: OP_PROTOCOL_ERROR, id: 0xfffffffe, status: 71, result: none } });
    expect(decodeDaemonDatagram(encodeStatusReply(OP.stats | REPLY_BIT, 9, 0))).toMatchObject({ type: 'bad' }); // a STATS reply has its stats
    expect(decodeDaemonDatagram(encodeStatusReply(0x3f | REPLY_BIT, 9, 0))).toMatchObject({ type: 'bad', reason: expect.stringContaining('unknown op') });
    const v6 = encodeStatusReply(OP.send | REPLY_BIT, 9, 0).slice(); v6[2] = 6;
    expect(decodeDaemonDatagram(v6)).toMatchObject({ type: 'bad', reason: 'version 6' });
    const magic = encodeStatusReply(OP.send | REPLY_BIT, 9, 0).slice(); magic[1] ^= 1;
    expect(decodeDaemonDatagram(magic)).toMatchObject({ type: 'bad' });
  });
  it('opens BATCH containers into their datagrams (views, in order) and drops malformed ones', () => {
    const items = requests.slice(0, 4).map(encodeRequest);
    const batch = encodeBatch(items);
    const d = decodeClientDatagram(batch);
    expect(d.type).toBe('batch');
    if (d.type === 'batch') expect(d.items.map((i) => i.slice())).toEqual(items);
    const fromDaemon = decodeDaemonDatagram(encodeBatch([encodeReply(replies[0]), encodeWritable()]));
    if (fromDaemon.type !== 'batch') throw new Error('expected a batch');
    expect(fromDaemon.items.map((i) => decodeDaemonDatagram(i).type)).toEqual(['reply', 'writable']);
    const trailing = new Uint8Array([...batch, 0]);
    const empty = encodeBatch([]);
    const nested = encodeBatch([batch]);
    const short = batch.subarray(0, batch.length - 1);
    const long = batch.slice(); long[11] += 1; // the first item's length runs into the next
    for (const bad of [trailing, empty, nested, short, long]) {
      expect(decodeClientDatagram(bad).type).toBe('drop');
      expect(decodeDaemonDatagram(bad).type).toBe('bad');
    }
    // Visited where they lie: the same items, and nothing at all from a malformed container.
    const seen: Uint8Array[] = [];
    expect(isBatch(batch)).toBe(true);
    expect(visitBatch(batch, (bytes, at, n) => { expect(bytes).toBe(batch); seen.push(bytes.slice(at, at + n)); })).toBe(true);
    expect(seen).toEqual(items);
    for (const bad of [trailing, empty, nested, short, long]) {
      expect(isBatch(bad)).toBe(true);
      expect(visitBatch(bad, () => { throw new Error('visited an item of a malformed container'); })).toBe(false);
    }
    expect(isBatch(items[0])).toBe(false);
    const v3 = batch.slice(); v3[2] = 3;
    expect(isBatch(v3)).toBe(false);
  });
  it('reads a container\'s items where they lie exactly as datagrams of their own, well formed or not', () => {
    const seed = Number(process.env.AF_CODEC_SEED ?? Date.now() % 1_000_000); // replay: AF_CODEC_SEED=n
    console.log(`item fuzz seed ${seed} (replay with AF_CODEC_SEED=${seed})`);
    const rng = seeded(seed);
    const byte = () => Math.floor(rng() * 256);
    /** `item` inside bytes of noise, at an offset: what a container's visitor is given. */
    const embedded = (item: Uint8Array): [Uint8Array, number] => {
      const before = Math.floor(rng() * 7);
      const buf = new Uint8Array(before + item.length + Math.floor(rng() * 7)).map(byte);
      buf.set(item, before);
      return [buf, before];
    };
    const messages: SocketEvent[] = [
      events[0],
      { type: 'message', group: 'ørders', sender: { nodeId: 0xffffffff, pid: 1, port: 0xfffffffe }, order: 'safe', data: new Uint8Array(0) },
      { type: 'message', group: '', sender: b, order: 'fifo', data: new Uint8Array(300).map(byte) },
    ];
    const toClient = [...replies.map(encodeReply), ...[...events, ...eventsV3, ...eventsV4].map((ev) => encodeEvent(ev)!), ...messages.map((ev) => encodeEvent(ev)!)];
    const toDaemon = requests.map(encodeRequest);
    for (let i = 0; i < 4000; i++) {
      const base = i % 2 ? toClient[Math.floor(rng() * toClient.length)] : toDaemon[Math.floor(rng() * toDaemon.length)];
      const item = rng() < 0.5 ? base.slice() : base.slice(0, Math.floor(rng() * (base.length + 1)));
      for (let f = Math.floor(rng() * 3); f > 0 && item.length; f--) item[Math.floor(rng() * Math.min(item.length, 24))] = byte();
      const [buf, at] = embedded(item);
      expect(decodeClientItem(buf, at, item.length)).toEqual(decodeClientDatagram(item));
      const whole = decodeDaemonDatagram(item);
      const ev = readMessageAt(buf, at, item.length);
      // A message read where it lies is the event the general path reads; anything else is left to it.
      if (ev !== undefined) expect(whole).toEqual({ type: 'event', event: ev });
      else if (whole.type === 'event') expect(whole.event.type).not.toBe('message');
    }
    for (const ev of messages) {
      const whole = encodeEvent(ev)!;
      const [buf, at] = embedded(whole);
      expect(readMessageAt(buf, at, whole.length)).toEqual(ev);
      // Cut anywhere, in front of bytes that would pass for an order and a payload: never read past the item.
      for (let n = 0; n < whole.length; n++) {
        const inside = new Uint8Array(n + 16).fill(1);
        inside.set(whole.subarray(0, n));
        const cut = readMessageAt(inside, 0, n), general = decodeDaemonDatagram(whole.subarray(0, n));
        if (cut === undefined) expect(general.type).not.toBe('event');
        else expect(general).toEqual({ type: 'event', event: cut });
      }
    }
  });
  it('drops datagrams without a header and replies or events sent to the daemon', () => {
    expect(decodeClientDatagram(new Uint8Array([0x41, 0x46, 1]))).toMatchObject({ type: 'drop' });
    expect(decodeClientDatagram(new Uint8Array(8))).toMatchObject({ type: 'drop' });
    expect(decodeClientDatagram(encodeReply(replies[1]))).toMatchObject({ type: 'drop' });
    expect(decodeClientDatagram(encodeEvent(events[0])!)).toMatchObject({ type: 'drop' });
  });
  it('never throws on random or truncated input', () => {
    const seed = Number(process.env.AF_CODEC_SEED ?? Date.now() % 1_000_000); // replay: AF_CODEC_SEED=n
    console.log(`codec fuzz seed ${seed} (replay with AF_CODEC_SEED=${seed})`);
    const rng = seeded(seed);
    const samples = [...requests.map(encodeRequest), ...replies.map(encodeReply), ...[...events, ...eventsV3].map((ev) => encodeEvent(ev)!)];
    for (let i = 0; i < 5000; i++) {
      const base = samples[Math.floor(rng() * samples.length)];
      const bytes = base.slice(0, Math.floor(rng() * (base.length + 1)));
      for (let f = Math.floor(rng() * 3); f > 0 && bytes.length; f--) bytes[Math.floor(rng() * bytes.length)] = Math.floor(rng() * 256);
      expect(() => { decodeClientDatagram(bytes); decodeDaemonDatagram(bytes); }).not.toThrow();
      const noise = new Uint8Array(Math.floor(rng() * 64)).map(() => Math.floor(rng() * 256));
      expect(() => { decodeClientDatagram(noise); decodeDaemonDatagram(noise); }).not.toThrow();
    }
  });

  it('version 5: a large message gathered behind its headers is byte for byte the datagrams encoded whole', () => {
    const sender = { nodeId: 2, pid: 777, port: 3 };
    for (const n of [GATHER_BYTES_MIN, 100_000, LARGE_DATAGRAM_MAX - 20, 500_000]) {
      const ev = { type: 'message' as const, group: 'g', sender, order: 'safe' as const, data: new Uint8Array(n).map((_, i) => i % 253) };
      const gathered = gatheredMessage(ev, 42);
      const whole = encodeMessageDatagrams(ev, 42, LARGE_DATAGRAM_MAX);
      expect(gathered?.map(([h, p]) => Buffer.concat([h, p]))).toEqual(whole.map((d) => Buffer.from(d)));
      expect(whole.every((d) => d.length <= LARGE_DATAGRAM_MAX)).toBe(true);
      for (const [, p] of gathered ?? []) expect(p.buffer).toBe(ev.data.buffer); // the payload itself, not a copy
    }
    const small = { type: 'message' as const, group: 'g', sender, order: 'agreed' as const, data: new Uint8Array(GATHER_BYTES_MIN - 1) };
    expect(gatheredMessage(small, 1)).toBeUndefined();
  });

  it('version 5: a message given as the fragments it arrived in gathers them, cut where the datagrams end, and joins them past 16 pieces', () => {
    const sender = { nodeId: 2, pid: 777, port: 3 };
    const rng = seeded(5);
    // [size, fragments, whether each datagram's slice spans 16 fragments or more (then joined)]
    for (const [n, pieces, joined] of [[100_000, 2, false], [500_000, 9, false], [1_048_576, 17, false], [LARGE_DATAGRAM_MAX - 30, 40, true], [600_000, 200, true]] as const) {
      const data = new Uint8Array(n).map((_, i) => i % 251);
      const cuts = [...new Set(Array.from({ length: pieces - 1 }, () => 1 + Math.floor(rng() * (n - 1))))].sort((a, b) => a - b);
      const fragments = [0, ...cuts].map((at, i) => data.subarray(at, i < cuts.length ? cuts[i] : n));
      const ev = { type: 'message' as const, group: 'g', sender, order: 'agreed' as const, data };
      const gathered = gatheredMessage(ev, 9, fragments) ?? [];
      expect(gathered.map((d) => Buffer.concat(d))).toEqual(encodeMessageDatagrams(ev, 9, LARGE_DATAGRAM_MAX).map((d) => Buffer.from(d)));
      let joins = 0;
      for (const d of gathered) {
        expect(d.length).toBeLessThanOrEqual(16);
        // Views of the fragments, or the header and its slice's pieces joined into one array.
        const views = d.slice(1).every((p) => p.buffer === data.buffer);
        expect(views || d.length === 2).toBe(true);
        if (!views) joins++;
      }
      if (joined) expect(joins, `${n} bytes in ${pieces}`).toBeGreaterThan(0); else expect(joins).toBe(0);
    }
  });
});
