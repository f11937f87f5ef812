// Proves cman's parts alone: codec (round trips, malformed input refused not thrown), [cman] options, window, stream, and the driver contract (orders, EAGAIN/writable, ENOTCONN, state).
import { describe, expect, it } from 'vitest';
import {
  bitmapSeqs, decode, digestToken, encodeAck, encodeData, encodeHeartbeat, encodeLeave, makeBitmap, makeDigest,
  nodeListHash, DATA_HEADER_BYTES, HEARTBEAT_FIXED_BYTES,
} from '../../drivers/cman/codec.ts';
import { cmanOptionsSchema, frameWindowMax } from '../../drivers/cman/options.ts';
import { SendWindow } from '../../drivers/cman/window.ts';
import { RecvStream } from '../../drivers/cman/stream.ts';
import { cmanDriver, type CmanDriver } from '../../drivers/cman/index.ts';
import type { Configuration, DriverHost, Order, StateStore } from '../../core/driver/types.ts';
import { Rng } from '../../sim/rng.ts';
import { ENTRY_OVERHEAD, FRAME_OVERHEAD } from '../../core/driver/packing.ts';
import { parseConfig } from '../../core/config/index.ts';
import { builtinRegistry } from '../../drivers/builtin.ts';

/** A heartbeat from a 2-node cluster [1, 2] whose sender counts nobody. */
function hb(incarnation: number, nextSeq: number, low: number): Uint8Array {
  return encodeHeartbeat({ incarnation, nextSeq, low, epoch: 1, listHash: nodeListHash([1, 2]), digest: makeDigest(2, () => 0) });
}

describe('cman codec', () => {
  it('round-trips every datagram type', () => {
    const frame = new Uint8Array([1, 0, 0, 1, 0, 0, 0, 0, 1, 42]);
    const big = 2 ** 40 + 7;
    expect(decode(encodeData({ incarnation: 3, resend: true, seq: big, low: big - 5, frame }))).toEqual({
      ok: true, msg: { type: 'data', incarnation: 3, resend: true, seq: big, low: big - 5, frame },
    });
    const bitmap = makeBitmap(10, [12, 15, 30]);
    expect(bitmapSeqs(10, bitmap)).toEqual([12, 15, 30]);
    expect(bitmapSeqs(10, makeBitmap(10, new Set([13, 40]).keys()))).toEqual([13, 40]);
    const ack = decode(encodeAck({ incarnation: 9, ackedIncarnation: 4, cumulative: 10, bitmap }));
    expect(ack).toEqual({ ok: true, msg: { type: 'ack', incarnation: 9, ackedIncarnation: 4, cumulative: 10, bitmap } });
    const digest = makeDigest(5, (i) => [0, 1, 15, 7, 2][i]);
    expect([0, 1, 2, 3, 4, 5, 9].map((i) => digestToken(digest, i))).toEqual([0, 1, 15, 7, 2, 0, 0]);
    const beat = { incarnation: 0xffffffff, nextSeq: 8, low: 3, epoch: 2 ** 33, listHash: nodeListHash([1, 2, 3]), digest };
    expect(decode(encodeHeartbeat(beat))).toEqual({ ok: true, msg: { type: 'heartbeat', ...beat } });
    expect(nodeListHash([1, 2, 3])).not.toBe(nodeListHash([1, 2, 4]));
    expect(decode(encodeLeave({ incarnation: 2 }))).toEqual({ ok: true, msg: { type: 'leave', incarnation: 2 } });
  });

  it('refuses malformed datagrams with a reason', () => {
    const good = encodeData({ incarnation: 1, resend: false, seq: 5, low: 2, frame: new Uint8Array(4) });
    const bad = (mutate: (b: Uint8Array) => Uint8Array) => decode(mutate(good.slice())).ok;
    expect(bad((b) => b.subarray(0, 3))).toBe(false);
    expect(bad((b) => { b[0] = 9; return b; })).toBe(false);
    expect(bad((b) => { b[1] = 9; return b; })).toBe(false);
    expect(bad((b) => { b[2] = 4; return b; })).toBe(false);
    expect(bad((b) => { b[3] = 1; return b; })).toBe(false);
    expect(bad((b) => b.subarray(0, DATA_HEADER_BYTES))).toBe(false);
    expect(bad((b) => { b[19] = 9; return b; })).toBe(false); // low above seq
    expect(bad((b) => { b.fill(0, 4, 8); return b; })).toBe(false); // incarnation 0
    expect(decode(hb(1, 1, 1).subarray(0, 10)).ok).toBe(false);
    expect(decode(hb(1, 1, 1).subarray(0, HEARTBEAT_FIXED_BYTES)).ok).toBe(false); // digest cut off
    const ack = encodeAck({ incarnation: 1, ackedIncarnation: 1, cumulative: 0, bitmap: new Uint8Array(3) });
    expect(decode(ack.subarray(0, ack.length - 1)).ok).toBe(false);
  });

  it('never throws on random or mutated bytes (seeded fuzz)', () => {
    const seed = 20261121;
    const rng = new Rng(seed);
    const samples = [
      encodeData({ incarnation: 1, resend: false, seq: 5, low: 2, frame: new Uint8Array(30) }),
      encodeAck({ incarnation: 1, ackedIncarnation: 2, cumulative: 7, bitmap: makeBitmap(7, [9, 20]) }),
      hb(1, 9, 9), encodeLeave({ incarnation: 1 }),
    ];
    for (let i = 0; i < 20_000; i++) {
      const base = rng.pick(samples).slice();
      const b = rng.chance(0.3) ? new Uint8Array(rng.int(0, 40)).map(() => rng.int(0, 255)) : base;
      for (let k = rng.int(0, 3); k > 0 && b.length; k--) b[rng.int(0, b.length - 1)] = rng.int(0, 255);
      try {
        decode(b.subarray(0, rng.int(0, b.length)));
      } catch (e) {
        throw new Error(`seed ${seed} case ${i}: decode threw ${String(e)}`, { cause: e });
      }
    }
  });
});

describe('cman options', () => {
  it('has a default for every key', () => {
    expect(cmanOptionsSchema.parse({})).toEqual({
      ackTimeoutMs: 200, ackDelayMs: 0, resendMax: 30, heartbeatMs: 250, deadAfterMissed: 4, windowMax: 64, windowBytes: 1024 * 1024,
      queueMessagesMax: 1024, queueBytesMax: 4 * 1024 * 1024, partialBytesMax: 8 * 1024 * 1024, serveAgreedAsFifo: true,
    });
  });

  it('lowers window_max for large frames so that a sender has at most window_bytes unacked', () => {
    const o = cmanOptionsSchema.parse({});
    expect(frameWindowMax(o, 1400)).toBe(64);
    expect(frameWindowMax(o, 65_000)).toBe(16);
    expect(frameWindowMax(cmanOptionsSchema.parse({ window_bytes: 65_536 }), 65_000)).toBe(1);
  });

  it('refuses unknown keys, wrong types and values out of range', () => {
    expect(cmanOptionsSchema.safeParse({ ack_timeout: 100 }).success).toBe(false);
    expect(cmanOptionsSchema.safeParse({ ack_timeout_ms: 5 }).success).toBe(false);
    expect(cmanOptionsSchema.safeParse({ ack_timeout_ms: 100.5 }).success).toBe(false);
    expect(cmanOptionsSchema.safeParse({ window_max: 0 }).success).toBe(false);
    expect(cmanOptionsSchema.safeParse({ dead_after_missed: 1 }).success).toBe(false);
    expect(cmanOptionsSchema.safeParse({ serve_agreed_as_fifo: 'yes' }).success).toBe(false);
    expect(cmanOptionsSchema.safeParse({ ack_timeout_ms: 100, ack_delay_ms: 60 }).success).toBe(false);
    expect(cmanOptionsSchema.parse({ heartbeat_ms: 100, window_max: 8 })).toMatchObject({ heartbeatMs: 100, windowMax: 8 });
  });

  it('cluster.driver = "cman" selects it; [cman] is validated naming file and key', () => {
    const text = (cman: string) => `[node]\nid = 1\n[cluster]\ndriver = "cman"\n`
      + `nodes = [ { id = 1, addr = "127.0.0.1" }, { id = 2, addr = "127.0.0.2" } ]\n[cman]\n${cman}\n`;
    const c = parseConfig(text('ack_timeout_ms = 300'), 'n1.toml', builtinRegistry());
    expect(c.cluster.driver).toBe('cman');
    expect(c.drivers.cman).toMatchObject({ ackTimeoutMs: 300, heartbeatMs: 250 });
    expect(() => parseConfig(text('ack_timout_ms = 300'), 'n1.toml', builtinRegistry())).toThrow(/n1\.toml.*cman/);
    expect(() => parseConfig(text('window_max = 0'), 'n1.toml', builtinRegistry())).toThrow(/cman\.window_max/);
  });
});

describe('cman send window and receive stream', () => {
  it('keeps frames until every awaited member acked, cumulative and selective', () => {
    const w = new SendWindow(4);
    for (let i = 0; i < 4; i++) w.add(new Uint8Array([i]), new Set([2, 3]), 100);
    expect(w.hasRoom).toBe(false);
    w.ack(2, 4, []);
    expect(w.collect()).toBe(0);
    w.ack(3, 1, [3, 4]);
    expect(w.collect()).toBe(1);
    expect([w.low, w.nextSeq, w.inFlight]).toEqual([2, 5, 3]);
    w.forget(3);
    expect(w.collect()).toBe(3);
    w.checkInvariants(new Set([2, 3]));
  });

  it('delivers in order, drops duplicates, buffers early frames, skips what the sender no longer holds', () => {
    const s = new RecvStream(1, 1, 8);
    const fed: number[] = [];
    const gaps: number[] = [];
    const drain = (low: number) => s.drain(low, (f) => fed.push(f[0]), (n) => gaps.push(n));
    expect(s.offer(2, new Uint8Array([2]))).toBe('new');
    drain(1);
    expect(fed).toEqual([]);
    expect(s.offer(1, new Uint8Array([1]))).toBe('new');
    drain(1);
    expect(fed).toEqual([1, 2]);
    expect(s.offer(2, new Uint8Array([2]))).toBe('duplicate');
    expect(s.offer(11, new Uint8Array([11]))).toBe('beyond');
    expect(s.offer(5, new Uint8Array([5]))).toBe('new');
    drain(7);
    expect(fed).toEqual([1, 2, 5]);
    expect(gaps).toEqual([2, 1]);
    expect(s.expected).toBe(7);
    s.checkInvariants();
  });
});

/** A hand-wired two-node host: datagrams are queued and handed over by pump(). */
function pair(options: Record<string, unknown> = {}, headroom = 0) {
  let now = 0;
  const wire: { from: number; to: number; bytes: Uint8Array; reserved: boolean }[] = [];
  const stores = new Map<number, Map<string, Uint8Array>>();
  const nodes = [1, 2].map((id) => {
    const got: { sender: number; order: Order; size: number }[] = [];
    const confs: Configuration[] = [];
    const store = stores.get(id) ?? new Map<string, Uint8Array>();
    stores.set(id, store);
    const state: StateStore = { load: (k) => store.get(k), save: (k, v) => { store.set(k, v.slice()); } };
    const ev = { writable: 0 };
    const host: DriverHost = {
      nodeId: id, now: () => now, rng: () => 0.5, state, log: () => {},
      transmit: (to, bytes, reserved) => {
        for (const t of to === 'all' ? [3 - id] : [to]) wire.push({ from: id, to: t, bytes, reserved: reserved === true });
      },
      deliver: (sender, payload, order) => { got.push({ sender, order, size: payload.length }); },
      configuration: (c) => { confs.push(c); },
      writable: () => { ev.writable++; },
    };
    const driver = cmanDriver.create({ nodeId: id, nodes: [1, 2], mtu: 1400, messageSizeMax: 1 << 20, headroom },
      cmanOptionsSchema.parse(options), host) as CmanDriver;
    return { driver, got, confs, ev, store };
  });
  const step = (ms = 0) => {
    now += ms;
    for (const n of nodes) if (n.driver.nextDeadline() <= now) n.driver.handleTimeout();
    while (wire.length) {
      const d = wire.shift()!;
      nodes[d.to - 1].driver.handleDatagram(d.from, d.bytes);
      for (const n of nodes) if (n.driver.nextDeadline() <= now) n.driver.handleTimeout();
    }
    for (const n of nodes) n.driver.checkInvariants();
  };
  return { nodes, step, wire };
}

describe('cman driver contract', () => {
  it('sends a frame as the buffer its messages were written into: headers in the room in front, no copy', () => {
    const headroom = 28;
    const { nodes, step, wire } = pair({}, headroom);
    nodes.forEach((n) => n.driver.start());
    step();
    const header = Uint8Array.of(1, 2, 3);
    const body = new Uint8Array(3000).fill(7);
    nodes[0].driver.multicast([header, body], 'fifo');
    body[0] = 9; // nobody may (Driver.multicast); it shows the driver kept the parts, not a copy
    nodes[0].driver.handleTimeout();
    const data = wire.filter((d) => d.from === 1 && d.bytes[1] === 1);
    expect(data.length).toBeGreaterThan(1); // 3003 bytes in frames of at most 1400
    const window = (nodes[0].driver as unknown as { window: SendWindow }).window;
    const frames = [...window.pending()].map((e) => e.frame);
    expect(frames).toHaveLength(data.length);
    // The first fragment: frame header, entry header with the total, then the parts as they were at framing.
    expect(frames[0][FRAME_OVERHEAD + ENTRY_OVERHEAD + 4 + header.length]).toBe(9);
    data.forEach((d, i) => {
      expect(d.reserved).toBe(true);
      // The datagram is the frame's own buffer: DATA header right in front, the host's room before it.
      expect(d.bytes.buffer).toBe(frames[i].buffer);
      expect(d.bytes.byteOffset + DATA_HEADER_BYTES).toBe(frames[i].byteOffset);
      expect(d.bytes.byteOffset).toBeGreaterThanOrEqual(headroom);
    });
    step();
    expect(nodes[1].got).toEqual([{ sender: 1, order: 'fifo', size: 3003 }]);
    expect(nodes[0].got).toEqual([{ sender: 1, order: 'fifo', size: 3003 }]);
  });

  it('reports the first configuration at start, then each node as its heartbeat arrives', () => {
    const { nodes, step } = pair();
    expect(() => nodes[0].driver.multicast(new Uint8Array(4), 'fifo')).toThrow(/ENOTCONN/);
    nodes.forEach((n) => n.driver.start());
    expect(nodes[0].confs[0]).toEqual({ kind: 'regular', ringId: { rep: 1, seq: 1 }, members: [1], left: [], joined: [1] });
    step();
    expect(nodes[0].confs[1]).toEqual({ kind: 'regular', ringId: { rep: 1, seq: 2 }, members: [1, 2], left: [], joined: [2] });
  });

  it("refuses 'safe'; serves 'agreed' as FIFO (reported 'fifo') unless serve_agreed_as_fifo is false", () => {
    const a = pair();
    a.nodes.forEach((n) => n.driver.start());
    a.step();
    expect(() => a.nodes[0].driver.multicast(new Uint8Array(4), 'safe')).toThrow(/EOPNOTSUPP/);
    a.nodes[0].driver.multicast(new Uint8Array(4), 'agreed');
    a.step();
    expect(a.nodes[1].got).toEqual([{ sender: 1, order: 'fifo', size: 4 }]);
    expect(a.nodes[0].got).toEqual([{ sender: 1, order: 'fifo', size: 4 }]);
    const b = pair({ serve_agreed_as_fifo: false });
    b.nodes.forEach((n) => n.driver.start());
    expect(() => b.nodes[0].driver.multicast(new Uint8Array(4), 'agreed')).toThrow(/EOPNOTSUPP/);
  });

  it('returns EAGAIN when window and queue are full, and calls writable() once acks make room', () => {
    const { nodes, step, wire } = pair({ window_max: 2, queue_messages_max: 3 });
    nodes.forEach((n) => n.driver.start());
    step();
    const d = nodes[0].driver;
    const big = new Uint8Array(1300);
    for (let i = 0; i < 2; i++) d.multicast(big, 'fifo');
    d.handleTimeout(); // frames both: the window is now full
    wire.length = 0; // ... and every copy is lost
    for (let i = 0; i < 3; i++) d.multicast(big, 'fifo');
    expect(() => d.multicast(big, 'fifo')).toThrow(/EAGAIN/);
    expect(nodes[0].ev.writable).toBe(0);
    step(200); // ack timeout: resent, acked, the queue drains
    expect(nodes[0].ev.writable).toBe(1);
    expect(d.stats().resent).toBe(2);
    step(200);
    expect(nodes[1].got.length).toBe(5);
  });

  it('counts and drops malformed datagrams and datagrams from unknown nodes, never throws', () => {
    const { nodes } = pair();
    nodes.forEach((n) => n.driver.start());
    const d = nodes[0].driver;
    d.handleDatagram(2, new Uint8Array([1, 1, 0]));
    d.handleDatagram(2, encodeData({ incarnation: 1, resend: false, seq: 1, low: 1, frame: new Uint8Array([9, 9, 9, 9]) }));
    d.handleDatagram(7, hb(1, 1, 1));
    expect(d.stats()).toMatchObject({ droppedMalformed: 1, droppedMalformedFrames: 1, droppedForeign: 1, delivered: 0 });
    d.checkInvariants();
  });

  it('persists incarnation and ring seq: a restart never reuses them', () => {
    const { nodes } = pair();
    nodes[0].driver.start();
    const store = nodes[0].store;
    const again = cmanDriver.create({ nodeId: 1, nodes: [1, 2], mtu: 1400, messageSizeMax: 1 << 20 }, cmanOptionsSchema.parse({}), {
      nodeId: 1, now: () => 0, rng: () => 0, log: () => {}, transmit: () => {}, deliver: () => {}, configuration: () => {},
      state: { load: (k) => store.get(k), save: (k, v) => { store.set(k, v); } },
    });
    again.start();
    expect(again.stats()).toMatchObject({ incarnation: 2, ringSeq: 2 });
  });

  it("drops a node's late datagrams after its leave, and takes it back when it restarts", () => {
    const { nodes, step } = pair();
    nodes.forEach((n) => n.driver.start());
    step();
    const d = nodes[0].driver;
    d.handleDatagram(2, encodeLeave({ incarnation: 1 }));
    expect(d.stats().members).toBe(1);
    d.handleDatagram(2, hb(1, 1, 1));
    expect(d.stats()).toMatchObject({ members: 1, droppedStale: 1 });
    d.handleDatagram(2, hb(2, 1, 1));
    expect(d.stats().members).toBe(2);
    expect(nodes[0].confs.map((c) => c.members)).toEqual([[1], [1, 2], [1], [1, 2]]);
  });

  it("reads its own nibble in a peer's digest: dropped = left then joined, re-added = same members; stale or foreign digests ignored", () => {
    const { nodes, step } = pair();
    nodes.forEach((n) => n.driver.start());
    step();
    const d = nodes[0].driver;
    const confs = nodes[0].confs;
    // Node 2's view of node 1 (index 0 of [1, 2]) as heartbeats of its incarnation 1 say it.
    const beat = (epoch: number, token: number, list = [1, 2]) => encodeHeartbeat({
      incarnation: 1, nextSeq: 1, low: 1, epoch, listHash: nodeListHash(list), digest: makeDigest(2, (i) => (i === 0 ? token : 0)),
    });
    const before = confs.length;
    d.handleDatagram(2, beat(100, 1));
    d.handleDatagram(2, beat(101, 0, [1, 2, 3])); // another node list: not read
    d.handleDatagram(2, beat(99, 0)); // older than one already read: not read
    expect(confs.length).toBe(before);
    expect(d.stats()).toMatchObject({ digestsIgnored: 2, declaredByPeer: 0 });
    d.handleDatagram(2, beat(102, 0));
    expect(confs.slice(before).map((c) => [c.members, c.left, c.joined])).toEqual([[[1], [2], []], [[1, 2], [], [2]]]);
    d.handleDatagram(2, beat(103, 0));
    d.handleDatagram(2, beat(104, 2)); // re-added after we saw 0: nothing new to tell
    expect(confs.length).toBe(before + 2);
    d.handleDatagram(2, beat(106, 3)); // dropped and re-added, the 0 never seen
    expect(confs.slice(before + 2).map((c) => [c.members, c.left, c.joined])).toEqual([[[1, 2], [], []]]);
    expect(d.stats()).toMatchObject({ declaredByPeer: 2, reannounced: 1, members: 2 });
    d.checkInvariants();
  });

  it('goes quiet after leave()', () => {
    const { nodes, step } = pair();
    nodes.forEach((n) => n.driver.start());
    step();
    nodes[0].driver.leave();
    expect(nodes[0].driver.nextDeadline()).toBe(Infinity);
    expect(() => nodes[0].driver.multicast(new Uint8Array(1), 'fifo')).toThrow(/ENOTCONN/);
    step();
    expect(nodes[1].confs.at(-1)).toMatchObject({ members: [2], left: [1] });
  });
});
