// Proves the receive queue's slow-consumer rule: within its bounds it takes everything; past
// them, a client that keeps reading absorbs a burst (up to twice the bounds), while one that has
// read nothing for stallMs, or whose queue reached twice the bounds, is out; a version-2 client
// gets what was queued in one burst packed into containers; a datagram given as parts (a large
// version-5 MESSAGE) goes gathered when nothing waits before it; queued, it keeps the parts that
// fill at least half of their memory and copies the rest; a small message event or a status
// reply waits unencoded and is written into the container that carries it (the same bytes as
// its encoding), straight into an open container of the few the outboxes share, or queued as an
// item when all of those are open (a container's buffer back when it is sent or its outbox
// closes); once the client's socket is full, what waits and what comes after is written
// into containers of its own, in order, a datagram given as bytes going alone between them; and,
// over random interleavings of every kind of datagram with full sockets and drains (seeded:
// OUTBOX_SEED replays a run), that everything arrives once, in order, byte for byte.
import { describe, expect, it } from 'vitest';
import { OPEN_CONTAINERS_MAX, Outbox, REPLIES_QUEUED_MAX, REPLY_BYTES_QUEUED_MAX, keptParts, openContainersFree, type ClientChannel } from './outbox.ts';
import { DATAGRAM_MAX, decodeDaemonDatagram, encodeMessageDatagrams, encodeStatusReply, GATHER_BYTES_MIN, messageEventBytes } from './codec.ts';
import { limitsSection } from '../config/schema.ts';
import type { MessageEvent } from '../api/types.ts';
import { anchor, drop, leaseCounters, own, poisonRelease, setReleaser } from '../wire/lease.ts';

/** A channel whose kernel queue holds `room` datagrams until the client reads them all. */
function channel(room: number) {
  const got: Uint8Array[] = [];
  const gathered: number[] = [];
  /** The parts of each datagram sent gathered, as given (not copies). */
  const parts: (readonly Uint8Array[])[] = [];
  const c = {
    room, got, gathered, parts, sent: 0, close() {},
    send(b: Uint8Array | readonly Uint8Array[]): string {
      if (c.room === 0) return 'again';
      c.room--; c.sent++;
      if (b instanceof Uint8Array) got.push(b.slice());
      else { gathered.push(got.length); parts.push(b); got.push(Uint8Array.from(b.flatMap((p) => [...p]))); }
      return 'sent';
    },
  };
  return c as typeof c & ClientChannel;
}

function setup(room: number) {
  let now = 0;
  const deferred: (() => void)[] = [];
  const ch = channel(room);
  const box = new Outbox(ch, { eventsMax: 10, bytesMax: 1 << 20, stallMs: 1000 }, {
    gone: () => undefined, dropped: () => undefined, defer: (fn) => deferred.push(fn), now: () => now,
  });
  return { box, ch, at: (t: number) => { now = t; }, flush: () => { for (const fn of deferred.splice(0)) fn(); } };
}

/** Uniform in [0, 1) from a seed (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ev = (i: number): Uint8Array[] => [Uint8Array.of(0x41, 0x46, 1, 0x43, 0, 0, 0, 0, 0, 11, 0, 1, i & 0xff)];

describe('Outbox: the slow-consumer rule', () => {
  it('a client that keeps reading absorbs a burst past its bound, up to twice the bound', () => {
    const { box, ch, at } = setup(2);
    for (let i = 0; i < 12; i++) expect(box.event(ev(i))).toBe(true); // 2 sent, 10 queued: at the bound
    at(500);
    ch.room = 3; box.writable(); // it read: progress
    let taken = 0;
    while (box.event(ev(taken))) taken++; // a burst: past the bound, while it reads
    expect(box.burstEvents).toBeGreaterThan(0);
    expect(box.depth).toBe(20); // refused at twice the bound, even though it reads
    expect(box.refusedFor).toBe('burst');
  });

  it('a client that stopped reading is out once over its bound for stallMs', () => {
    const { box, at } = setup(0);
    for (let i = 0; i < 10; i++) expect(box.event(ev(i))).toBe(true);
    at(900);
    expect(box.event(ev(10))).toBe(true); // over the bound, but not stalled long enough yet
    at(1100);
    expect(box.event(ev(11))).toBe(false);
    expect(box.refusedFor).toBe('stalled');
  });

  it('with the default limits, a reader of 100-byte messages may fall behind by the byte bound, not by a few thousand events', () => {
    // Every node sending 100 B as fast as the client library allows is about 300,000 messages a
    // second here: twice 4096 events (the old default) was 27 ms of delivery, and readers that
    // read all the time were evicted.
    const limits = limitsSection.parse({});
    const deferred: (() => void)[] = [];
    const box = new Outbox(channel(0), { eventsMax: limits.recv_queue_max, bytesMax: limits.recv_queue_bytes_max, stallMs: limits.recv_stall_ms }, {
      gone: () => undefined, dropped: () => undefined, defer: (fn) => deferred.push(fn), now: () => 0,
    }, true);
    const e: MessageEvent = { type: 'message', group: 'bench', sender: { nodeId: 1, pid: 2, port: 3 }, order: 'agreed', data: new Uint8Array(100) };
    const size = messageEventBytes(e);
    let taken = 0;
    for (; box.message(e); taken++) if (taken % 1000 === 999) for (const fn of deferred.splice(0)) fn(); // bursts, packed behind the full socket
    expect(box.refusedFor).toBe('burst');
    expect(taken * size).toBeGreaterThanOrEqual(limits.recv_queue_bytes_max);
    expect(taken * size).toBeLessThanOrEqual(2 * limits.recv_queue_bytes_max);
  });

  it('packs what one burst queued for a version-2 client into a container', () => {
    let now = 0;
    const deferred: (() => void)[] = [];
    const ch = channel(100);
    const box = new Outbox(ch, { eventsMax: 10, bytesMax: 1 << 20, stallMs: 1000 }, {
      gone: () => undefined, dropped: () => undefined, defer: (fn) => deferred.push(fn), now: () => now++,
    }, true);
    for (let i = 0; i < 4; i++) box.event(ev(i));
    expect(ch.sent).toBe(0); // nothing until the burst is over
    for (const fn of deferred.splice(0)) fn();
    expect(ch.sent).toBe(1);
    const d = decodeDaemonDatagram(ch.got[0]);
    expect(d.type === 'batch' && d.items.length).toBe(4);
  });
});

describe('keptParts', () => {
  it('counts a buffer that several parts share once, copies small parts, joins parts that fill less than half their memory', () => {
    const frame = new Uint8Array(60_000).map((_, i) => i & 0xff);
    const header = Uint8Array.of(7, 7);
    const a = frame.subarray(0, 20_000), b = frame.subarray(20_000, 40_000);
    const kept = keptParts([header, a, b]); // 40,000 bytes of one 60,000-byte buffer: kept
    expect(Array.isArray(kept)).toBe(true);
    const list = kept as readonly Uint8Array[];
    expect(list[1]).toBe(a);
    expect(list[2]).toBe(b);
    expect(list[0]).not.toBe(header);
    expect(list[0]).toEqual(header);
    const joined = keptParts([header, frame.subarray(0, 25_000), new Uint8Array(70_000).subarray(0, 5_000)]); // 30,000 of 130,000
    expect(joined).toBeInstanceOf(Uint8Array);
    expect((joined as Uint8Array).length).toBe(30_002);
    expect((joined as Uint8Array).subarray(2, 25_002)).toEqual(frame.subarray(0, 25_000));
  });
});

describe('Outbox: replies', () => {
  it('sends a status-only reply as encodeStatusReply has it to a client that takes no containers', () => {
    const { box, ch } = setup(1);
    expect(box.status(0x81, 0xdeadbeef, 11)).toBe(true);
    expect(ch.got).toEqual([encodeStatusReply(0x81, 0xdeadbeef, 11)]);
  });

  it('keeps REPLIES_QUEUED_MAX replies for a client that is not reading, and at most REPLY_BYTES_QUEUED_MAX bytes of them', () => {
    const { box, ch } = setup(0);
    for (let i = 0; i < REPLIES_QUEUED_MAX; i++) expect(box.reply(Uint8Array.of(i & 0xff))).toBe(true);
    expect(box.reply(Uint8Array.of(1))).toBe(false); // one past the count
    expect(box.status(0x81, 1, 0)).toBe(false); // a status-only reply counts as one
    ch.room = REPLIES_QUEUED_MAX;
    box.writable();
    expect(ch.sent).toBe(REPLIES_QUEUED_MAX);
    ch.room = 0;
    const big = new Uint8Array(64 * 1024);
    const fit = REPLY_BYTES_QUEUED_MAX / big.length;
    for (let i = 0; i < fit; i++) expect(box.reply(big)).toBe(true);
    expect(box.reply(Uint8Array.of(1))).toBe(false); // past the bytes, however small
    ch.room = fit;
    box.writable();
    expect(box.reply(Uint8Array.of(1))).toBe(true); // room again once the client read
  });
});

describe('Outbox: gathered datagrams', () => {
  it('sends parts gathered when nothing waits; queued, it keeps the parts that fill their memory and copies the rest', () => {
    const { box, ch } = setup(1);
    const payload = new Uint8Array(40_000).fill(7); // fills its own memory
    const header = Uint8Array.of(1, 2, 3);
    expect(box.event([[header, payload]])).toBe(true); // the queue is empty: sent as it is
    expect(ch.gathered).toEqual([0]);
    expect(ch.parts[0][1]).toBe(payload);
    // The client's queue is full now (room 0): what follows waits in the outbox.
    expect(box.event([[header, payload]])).toBe(true); // kept as it is
    const frame = new Uint8Array(65_000).fill(8);
    expect(box.event([[header, frame.subarray(0, 20_000)]])).toBe(true); // a third of its memory: joined
    const tail = frame.subarray(64_000, 64_100); // small, of a large buffer: copied
    expect(box.event([[header, payload, tail]])).toBe(true);
    expect(box.depth).toBe(3);
    ch.room = 10;
    box.writable();
    expect(ch.gathered).toEqual([0, 1, 3]);
    expect(ch.parts[1][1]).toBe(payload);
    expect(ch.got[2].length).toBe(20_003);
    expect(ch.got[2].subarray(0, 3)).toEqual(header);
    expect(ch.got[2].subarray(3).every((b) => b === 8)).toBe(true);
    expect(ch.parts[2][1]).toBe(payload);
    expect(ch.parts[2][2]).not.toBe(tail);
    expect(ch.parts[2][2].buffer.byteLength).toBeLessThan(frame.length);
    expect(ch.got[3]).toEqual(Uint8Array.from([...header, ...payload, ...tail]));
    expect(box.queuedBytes).toBe(0);
  });

  it('a gathered datagram whose client is gone goes nowhere: the owner is told, nothing is queued', () => {
    const gone: string[] = [];
    const channel: ClientChannel = { send: () => 'ECONNREFUSED', close: () => undefined };
    const box = new Outbox(channel, { eventsMax: 10, bytesMax: 1 << 20, stallMs: 1000 }, {
      gone: (errno) => gone.push(errno), dropped: () => undefined, defer: () => undefined, now: () => 0,
    });
    expect(box.event([[Uint8Array.of(1), new Uint8Array(30_000)]])).toBe(true);
    expect(gone).toEqual(['ECONNREFUSED']);
    expect(box.depth).toBe(0);
    expect(box.event(ev(1))).toBe(true); // blocked for good: queued, never sent
    expect(box.datagrams).toBe(0);
  });

  it('does not let parts overtake a datagram already queued', () => {
    const { box, ch } = setup(0);
    expect(box.event(ev(1))).toBe(true); // refused: queued
    expect(box.event([[Uint8Array.of(1), Uint8Array.of(2, 3)]])).toBe(true);
    ch.room = 10;
    box.writable();
    expect(ch.got.map((g) => g.length)).toEqual([13, 3]);
    expect(ch.gathered).toEqual([1]); // after the one before it, still gathered (its parts are small arrays of their own)
  });
});


describe('Outbox: message events written into their container', () => {
  const msg = (i: number, data: Uint8Array): MessageEvent =>
    ({ type: 'message', group: `g${i % 3}`, sender: { nodeId: 1 + i, pid: 100 + i, port: i }, order: i % 2 ? 'safe' : 'agreed', data });
  const batchBox = (room: number) => {
    const deferred: (() => void)[] = [];
    const ch = channel(room);
    const box = new Outbox(ch, { eventsMax: 100, bytesMax: 1 << 20, stallMs: 1000 }, {
      gone: () => undefined, dropped: () => undefined, defer: (fn) => deferred.push(fn), now: () => 0,
    }, true);
    return { box, ch, flush: () => { for (const fn of deferred.splice(0)) fn(); } };
  };
  /** The datagrams a client got, each container opened into its items. */
  const items = (got: readonly Uint8Array[]) => got.flatMap((g) => {
    const d = decodeDaemonDatagram(g);
    return d.type === 'batch' ? d.items.map((it) => it.slice()) : [g];
  });

  it('carries the bytes encodeMessageDatagrams gives, in order with replies and other events, alone or in a container', () => {
    const { box, ch, flush } = batchBox(100);
    const payloads = [0, 1, 100, 1300, GATHER_BYTES_MIN - 1].map((n, i) => new Uint8Array(n).map((_, j) => (i * 37 + j) & 0xff));
    const want: Uint8Array[] = [];
    payloads.forEach((p, i) => {
      expect(box.message(msg(i, p))).toBe(true);
      want.push(encodeMessageDatagrams(msg(i, p), 0)[0]);
      const reply = encodeStatusReply(0x81, i, 0);
      expect(box.reply(reply)).toBe(true);
      want.push(reply);
      expect(box.status(0x82, 0x01020300 + i, 11 * i)).toBe(true); // written into the container
      want.push(encodeStatusReply(0x82, 0x01020300 + i, 11 * i));
      expect(box.event(ev(i))).toBe(true);
      want.push(ev(i)[0]);
    });
    expect(ch.sent).toBe(0); // all waited for the burst's end
    flush();
    expect(box.batches).toBeGreaterThan(0);
    expect(items(ch.got)).toEqual(want);
    // One alone: a MESSAGE datagram of its own, not a container.
    expect(box.message(msg(7, payloads[3]))).toBe(true);
    flush();
    expect(ch.got.at(-1)).toEqual(encodeMessageDatagrams(msg(7, payloads[3]), 0)[0]);
    expect(box.status(0x81, 77, 0)).toBe(true);
    flush();
    expect(ch.got.at(-1)).toEqual(encodeStatusReply(0x81, 77, 0));
    expect(box.depth).toBe(0);
    expect(box.queuedBytes).toBe(0);
  });

  it('more clients in one burst than open containers: the rest queue items; every client gets its own, in order, once', () => {
    const n = OPEN_CONTAINERS_MAX + 4;
    const boxes = Array.from({ length: n }, () => batchBox(100));
    const want: Uint8Array[][] = boxes.map(() => []);
    // The buffers are shared by every outbox of the process: tests above leave some queued.
    const free = openContainersFree();
    expect(free).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) {
      boxes.forEach(({ box }, k) => { // interleaved, as one frame's deliveries to every local client
        const m = msg(i, new Uint8Array(50 + k).fill(k));
        expect(box.message(m)).toBe(true);
        expect(box.status(0x81, k * 10 + i, k)).toBe(true);
        want[k].push(encodeMessageDatagrams(m, 0)[0], encodeStatusReply(0x81, k * 10 + i, k));
      });
    }
    expect(openContainersFree()).toBe(0); // the first ones took one each
    boxes.forEach(({ ch }) => expect(ch.sent).toBe(0));
    for (const { flush } of boxes) flush();
    boxes.forEach(({ box, ch }, k) => {
      expect(items(ch.got)).toEqual(want[k]);
      expect(ch.sent).toBe(1); // one container each, open or packed from items
      expect(box.depth).toBe(0);
    });
    expect(openContainersFree()).toBe(free);
  });

  it('an outbox closed with containers still queued gives their buffers back, sent or not', () => {
    const free = openContainersFree();
    expect(free).toBeGreaterThan(0);
    const open = Array.from({ length: free }, () => batchBox(0));
    for (const { box, flush } of open) {
      expect(box.message(msg(1, new Uint8Array(10)))).toBe(true);
      flush(); // the socket is full: the open container stays queued
    }
    expect(openContainersFree()).toBe(0);
    for (const { box } of open) box.close();
    expect(openContainersFree()).toBe(free);
  });

  it('gives what waits behind a full socket bytes of its own: a frame written again later does not change it', () => {
    const { box, ch, flush } = batchBox(0);
    const frame = new Uint8Array(4096).fill(1);
    const want: Uint8Array[] = [];
    for (let i = 0; i < 3; i++) { // queued unencoded, then the flush finds the socket full
      const e = msg(i, frame.subarray(i * 100, i * 100 + 100));
      want.push(encodeMessageDatagrams(e, 0)[0], encodeStatusReply(0x81, i, 0));
      expect(box.message(e)).toBe(true);
      expect(box.status(0x81, i, 0)).toBe(true);
    }
    flush();
    expect(ch.sent).toBe(0);
    const late = msg(3, frame.subarray(1000, 1100)); // the socket is known full: encoded at once
    want.push(encodeMessageDatagrams(late, 0)[0], encodeStatusReply(0x81, 3, 5));
    expect(box.message(late)).toBe(true);
    expect(box.status(0x81, 3, 5)).toBe(true);
    frame.fill(9); // what the contract forbids the driver: here only to show nothing still points at it
    ch.room = 10;
    box.writable();
    expect(items(ch.got)).toEqual(want);
  });

  it('writes the MESSAGE and status reply layouts of the protocol (bytes written out by hand)', () => {
    const { box, ch, flush } = batchBox(10);
    const e: MessageEvent = { type: 'message', group: 'gé', sender: { nodeId: 0x01020304, pid: 0x0a0b0c0d, port: 7 }, order: 'safe', data: Uint8Array.of(9, 8, 7) };
    expect(box.message(e)).toBe(true);
    expect(box.status(0x81, 0x11223344, 0x0b)).toBe(true);
    flush();
    expect(items(ch.got)).toEqual([
      // magic "AF", version 1, MESSAGE (0x41), id 0; the group's UTF-8 length and bytes; sender
      // node, pid, port; order (safe: 2); the payload.
      Uint8Array.of(0x41, 0x46, 1, 0x41, 0, 0, 0, 0, 0, 3, 0x67, 0xc3, 0xa9, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 7, 2, 9, 8, 7),
      // magic, version 1, the reply's op, its id, its status.
      Uint8Array.of(0x41, 0x46, 1, 0x81, 0x11, 0x22, 0x33, 0x44, 0, 0x0b),
    ]);
  });

  it('a socket full after part of the queue went: the rest keeps its order and its bytes', () => {
    const { box, ch, flush } = batchBox(1);
    const frame = new Uint8Array(120_000).map((_, i) => i & 0xff);
    const want: Uint8Array[] = [];
    for (let i = 0; i < 10; i++) { // 10 KB each: more than one container's worth
      const e = msg(i, frame.subarray(i * 10_000, i * 10_000 + 10_000));
      want.push(encodeMessageDatagrams(e, 0)[0], encodeStatusReply(0x81, i, 0));
      expect(box.message(e)).toBe(true);
      expect(box.status(0x81, i, 0)).toBe(true);
    }
    flush();
    expect(ch.sent).toBe(1); // one container went; the next one found the socket full
    expect(box.congestions).toBe(1);
    frame.fill(0xee);
    ch.room = 10;
    box.writable();
    expect(items(ch.got)).toEqual(want);
    expect(box.depth).toBe(0);
    expect(box.queuedBytes).toBe(0);
  });

  it('writes what waits behind a full socket into containers, in order, around the datagrams it must send alone', () => {
    const { box, ch, flush } = batchBox(0);
    const frame = new Uint8Array(400_000).map((_, i) => (i * 7) & 0xff);
    const want: Uint8Array[] = [];
    const message = (i: number, len: number) => {
      const e = msg(i, frame.subarray(i * 1000, i * 1000 + len));
      want.push(encodeMessageDatagrams(e, 0)[0]);
      expect(box.message(e)).toBe(true);
    };
    const status = (i: number) => {
      want.push(encodeStatusReply(0x81, i, i & 3));
      expect(box.status(0x81, i, i & 3)).toBe(true);
    };
    message(0, 900);
    status(0);
    flush(); // the socket is full: these two are written into a container
    expect(box.congestions).toBe(1);
    for (let i = 1; i < 60; i++) { message(i, 1900); status(i); } // at once into containers
    want.push(ev(60)[0]); // one datagram of its own between them
    expect(box.event(ev(60))).toBe(true);
    for (let i = 61; i < 120; i++) { message(i, 1900); status(i); }
    expect(box.depth).toBe(want.length);
    expect(box.queuedBytes).toBe(want.reduce((n, d) => n + d.length, 0));
    frame.fill(0); // nothing waiting may still point at the frames
    ch.room = 100;
    box.writable();
    expect(items(ch.got)).toEqual(want);
    // 59 messages of about 1950 bytes and their replies fill two containers, then the event
    // goes alone, then two more: one datagram per container's worth, not one each.
    expect(ch.got.map((g) => decodeDaemonDatagram(g).type)).toEqual(['batch', 'batch', 'event', 'batch', 'batch']);
    for (const g of ch.got) expect(g.length).toBeLessThanOrEqual(DATAGRAM_MAX);
    expect(box.depth).toBe(0);
    expect(box.queuedBytes).toBe(0);
    // The socket takes datagrams again: the next message waits for the burst's end, unencoded.
    message(200, 100);
    expect(ch.sent).toBe(5);
    flush();
    expect(ch.got.at(-1)).toEqual(want.at(-1));
    // Full again: the containers sent are written again (their buffers kept), with new bytes.
    ch.room = 0;
    const before = ch.got.length, from = want.length;
    for (let i = 0; i < frame.length; i++) frame[i] = (i * 13) & 0xff;
    for (let i = 0; i < 100; i++) { message(i, 1900); status(i); }
    flush();
    frame.fill(0);
    ch.room = 100;
    box.writable();
    expect(items(ch.got.slice(before))).toEqual(want.slice(from));
    expect(box.depth).toBe(0);
  });

  it.each([['free', false, false], ['all taken by other sockets', true, false], ['free, and every payload released once handed on', false, true]])('random interleavings of datagrams, full sockets and drains, the open containers %s: everything arrives once, in order, byte for byte', (_, exhausted, releasing) => {
    // Released: each payload is a frame of its own memory that its ring log frees as soon as the
    // outbox has it; what the outbox keeps of it without holding it reads as 0xdb (poisonRelease).
    const released = new Set<ArrayBufferLike>();
    if (releasing) setReleaser((m) => { released.add(m); poisonRelease(m); });
    const lent: ArrayBufferLike[] = [];
    const frame = (bytes: Uint8Array): Uint8Array => {
      if (!releasing) return bytes;
      const d = new Uint8Array(bytes.length + 8);
      d.set(bytes, 8);
      own(d);
      anchor(d.subarray(8));
      lent.push(d.buffer);
      return d.subarray(8);
    };
    const freed = (bytes: Uint8Array): void => { if (releasing) drop(bytes); };
    const base = Number(process.env.OUTBOX_SEED ?? Date.now() % 100_000);
    console.log(`outbox interleavings: seeds from ${base} (OUTBOX_SEED=${base} replays them)`);
    // Other sockets whose clients do not read hold every open container: this one queues items.
    const holders = exhausted ? Array.from({ length: openContainersFree() }, () => batchBox(0)) : [];
    for (const h of holders) { h.box.message(msg(0, new Uint8Array(1))); h.flush(); }
    if (exhausted) expect(openContainersFree()).toBe(0);
    const seeds = releasing ? 12 : 40; // the third run: the same paths, fewer seeds
    for (let seed = base; seed < base + seeds; seed++) {
      const rng = seeded(seed);
      const pick = (n: number) => Math.floor(rng() * n);
      const { box, ch, flush } = batchBox(pick(4));
      const want: Uint8Array[] = [];
      for (let step = 0; step < 300; step++) {
        const r = rng();
        if (r < 0.4) {
          const len = rng() < 0.1 ? 8000 + pick(GATHER_BYTES_MIN - 8100) : pick(1400);
          const e = msg(step, frame(Uint8Array.from({ length: len }, (_, j) => (seed + step * 31 + j) & 0xff)));
          want.push(encodeMessageDatagrams(e, 0)[0]);
          expect(box.message(e)).toBe(true);
          freed(e.data);
        } else if (r < 0.6) {
          want.push(encodeStatusReply(0x81, step, step & 0xff));
          expect(box.status(0x81, step, step & 0xff)).toBe(true);
        } else if (r < 0.65) {
          const reply = encodeStatusReply(0x82, step, 1);
          want.push(reply);
          expect(box.reply(reply)).toBe(true);
        } else if (r < 0.7) {
          want.push(ev(step)[0]);
          expect(box.event(ev(step))).toBe(true);
        } else if (r < 0.73) { // a large message's datagram as parts
          const parts = [ev(step)[0], frame(new Uint8Array(5000 + pick(30_000)).fill(step & 0xff))];
          want.push(Uint8Array.from(parts.flatMap((p) => [...p])));
          expect(box.event([parts])).toBe(true);
          freed(parts[1]);
        } else if (r < 0.88) {
          flush();
        } else {
          ch.room = pick(4);
          if (ch.room > 0) box.writable();
        }
      }
      ch.room = 1_000_000;
      box.writable();
      flush();
      const got = items(ch.got);
      expect(got.length, `seed ${seed} (OUTBOX_SEED=${base} replays the run)`).toBe(want.length);
      for (let i = 0; i < want.length; i++) expect(got[i], `seed ${seed}, datagram ${i}`).toEqual(want[i]);
      expect(box.depth, `seed ${seed}`).toBe(0);
      expect(box.queuedBytes, `seed ${seed}`).toBe(0);
    }
    for (const h of holders) h.box.close();
    if (releasing) {
      // Everything went out: every payload's memory went back (and the containers grown past the
      // slab's takes with them).
      expect(leaseCounters.unbalanced).toBe(0);
      expect(lent.filter((b) => !released.has(b))).toEqual([]);
      expect(leaseCounters.released).toBeGreaterThan(lent.length);
      setReleaser(undefined);
    }
  });

  it('queues nothing more for a client whose socket is gone', () => {
    const channel: ClientChannel = { send: () => 'ECONNREFUSED', close: () => undefined };
    const gone: string[] = [];
    const box = new Outbox(channel, { eventsMax: 10, bytesMax: 1 << 20, stallMs: 1000 }, {
      gone: (errno) => gone.push(errno), dropped: () => undefined, defer: (fn) => fn(), now: () => 0,
    }, true);
    expect(box.message(msg(1, new Uint8Array(10)))).toBe(true);
    expect(gone).toEqual(['ECONNREFUSED']);
    expect(box.message(msg(2, new Uint8Array(10)))).toBe(true);
    expect(box.status(0x81, 1, 0)).toBe(true);
    expect(box.depth).toBe(0);
  });

  it('a socket gone while containers wait behind it: told once, nothing sent or queued after', () => {
    let result = 'again', tries = 0;
    const gone: string[] = [];
    const box = new Outbox({ send: () => { tries++; return result; }, close: () => undefined }, { eventsMax: 100, bytesMax: 1 << 20, stallMs: 1000 }, {
      gone: (errno) => gone.push(errno), dropped: () => undefined, defer: (fn) => fn(), now: () => 0,
    }, true);
    for (let i = 0; i < 30; i++) { // the first finds the socket full; the rest go into containers
      expect(box.message(msg(i, new Uint8Array(3000).fill(i)))).toBe(true);
      expect(box.status(0x81, i, 0)).toBe(true);
    }
    expect(box.depth).toBe(60);
    result = 'ECONNREFUSED';
    tries = 0;
    box.writable();
    expect(tries).toBe(1); // the first container, refused: the rest is not tried
    expect(gone).toEqual(['ECONNREFUSED']);
    const left = box.depth;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(60);
    expect(box.message(msg(31, new Uint8Array(10)))).toBe(true);
    expect(box.status(0x81, 31, 0)).toBe(true);
    expect(box.depth).toBe(left); // nothing more queued; the owner closes the queue when told
    expect(tries).toBe(1);
  });

  it('follows the slow-consumer rule as event() does, and refuses an event too large for a container', () => {
    const { box } = batchBox(0);
    const data = new Uint8Array(10);
    for (let i = 0; i < 200; i++) expect(box.message(msg(i, data))).toBe(true); // up to twice the bound: a burst
    expect(box.message(msg(0, data))).toBe(false);
    expect(box.refusedFor).toBe('burst');
    expect(() => batchBox(1).box.message(msg(0, new Uint8Array(70_000)))).toThrow(RangeError);
  });
});
