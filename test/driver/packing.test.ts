// Proves packing and fragmentation round-trip every message in order, respect limits, and reject
// malformed frames without changing state.
import { describe, expect, it } from 'vitest';
import { ENTRY_OVERHEAD, FRAME_OVERHEAD, PARTS_KEPT_MAX, Packer, Reassembler } from '../../core/driver/packing.ts';
import type { Order } from '../../core/driver/types.ts';
import { isClusterError } from '../../core/api/errors.ts';
import { concatBytes } from '../../core/wire/bytes.ts';

function packer(frameSizeMax = 1400, over: Partial<ConstructorParameters<typeof Packer>[0]> = {}) {
  return new Packer({ frameSizeMax, messageSizeMax: 1 << 20, queueMessagesMax: 10_000, queueBytesMax: 8 << 20, ...over });
}
function reassembler() {
  return new Reassembler({ messageSizeMax: 1 << 20, partialBytesMax: 4 << 20 });
}
function msg(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}
function same(a: Uint8Array[], b: Uint8Array[]): boolean {
  return a.length === b.length && a.every((x, i) => Buffer.from(x).equals(Buffer.from(b[i])));
}
function drain(p: Packer): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let f = p.nextFrame(); f; f = p.nextFrame()) frames.push(f.bytes);
  return frames;
}
function feed(r: Reassembler, sender: number, frames: Uint8Array[]) {
  const got: { payload: Uint8Array; order: Order; pieces?: readonly Uint8Array[] }[] = [];
  for (const f of frames) {
    r.accept(sender, f, (payload, order) => {
      got.push(payload instanceof Uint8Array ? { payload: Uint8Array.from(payload), order } : { payload: concatBytes(payload), order, pieces: payload });
    });
  }
  return got;
}

describe('Packer and Reassembler', () => {
  it('packs many small messages into one frame', () => {
    const p = packer();
    for (let i = 0; i < 10; i++) p.push(msg(100, i), 'agreed');
    const frame = p.nextFrame();
    expect(frame?.messages).toBe(10);
    expect(frame?.bytes.length).toBe(FRAME_OVERHEAD + 10 * (ENTRY_OVERHEAD + 100));
    expect(p.nextFrame()).toBeUndefined();
    const got = feed(reassembler(), 1, [frame!.bytes]);
    expect(got.map((g) => g.payload)).toEqual(Array.from({ length: 10 }, (_, i) => msg(100, i)));
  });

  it('fragments a 1 MiB message and reassembles it; no frame exceeds the limit', () => {
    const p = packer(1400);
    const big = msg(1 << 20, 3);
    p.push(msg(10, 1), 'fifo');
    p.push(big, 'safe');
    p.push(msg(20, 2), 'agreed');
    const frames = drain(p);
    expect(Math.max(...frames.map((f) => f.length))).toBeLessThanOrEqual(1400);
    expect(frames.length).toBeGreaterThan((1 << 20) / 1400);
    const got = feed(reassembler(), 9, frames);
    expect(got.map((g) => g.order)).toEqual(['fifo', 'safe', 'agreed']);
    expect(same([got[1].payload], [big])).toBe(true);
    // Over 700 fragments: past PARTS_KEPT_MAX the message is put together in bytes of its own.
    expect(got.map((g) => g.pieces === undefined)).toEqual([true, true, true]);
    expect(p.queuedMessages).toBe(0);
    expect(p.queuedBytes).toBe(0);
  });

  it('round-trips a random mix, seeded', () => {
    const seed = 12345;
    console.log(`packing mix seed=${seed}`);
    let s = seed;
    const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const p = packer(1000);
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) {
      const m = msg(Math.floor(rnd() < 0.1 ? rnd() * 70_000 : rnd() * 1200), i);
      sent.push(m);
      p.push(m, 'agreed');
    }
    const got = feed(reassembler(), 1, drain(p));
    expect(same(got.map((g) => g.payload), sent)).toBe(true);
  });

  it('with emitWhole, hands a whole message up as where it lies in its frame, fragments as before, in one order', () => {
    const p = packer(1000);
    const sent = [msg(100, 1), msg(0, 2), msg(3000, 3), msg(200, 4), msg(995, 5)]; // a frame's whole message is at most 991 bytes
    const orders: Order[] = ['agreed', 'safe', 'agreed', 'fifo', 'agreed'];
    sent.forEach((m, i) => p.push(m, orders[i]));
    const got: { how: string; bytes: Uint8Array; order: Order }[] = [];
    const r = reassembler();
    for (const frame of drain(p)) {
      r.accept(1, frame, (payload, order) => got.push({ how: 'parts', bytes: concatBytes(payload instanceof Uint8Array ? [payload] : payload), order }),
        (f, start, end, order) => {
          expect(f).toBe(frame); // the frame itself, no copy and no view
          got.push({ how: 'whole', bytes: f.slice(start, end), order });
        });
    }
    expect(got.map((g) => g.how)).toEqual(['whole', 'whole', 'parts', 'whole', 'parts']);
    expect(same(got.map((g) => g.bytes), sent)).toBe(true);
    expect(got.map((g) => g.order)).toEqual(orders);
  });

  it('says EMSGSIZE past the message limit and EAGAIN when the queue is full', () => {
    const p = packer(1400, { messageSizeMax: 1000, queueMessagesMax: 2 });
    expect(() => p.push(msg(1001, 0), 'agreed')).toThrow(expect.objectContaining({ code: 'EMSGSIZE' }));
    p.push(msg(10, 0), 'agreed');
    p.push(msg(10, 1), 'agreed');
    expect(p.canPush(10)).toBe(false);
    let err: unknown;
    try { p.push(msg(10, 2), 'agreed'); } catch (e) { err = e; }
    expect(isClusterError(err, 'EAGAIN')).toBe(true);
    p.nextFrame();
    expect(p.canPush(10)).toBe(true);
  });

  it('closes after a refusal, opens at the low mark, and says writable once per episode (both drivers use this)', () => {
    const refused = (p: Packer, n: number): boolean => {
      try { p.push(msg(n, 0), 'agreed'); return false; } catch (e) { if (isClusterError(e, 'EAGAIN')) return true; throw e; }
    };
    const p = packer(1400, { queueMessagesMax: 8 });
    for (let i = 0; i < 8; i++) p.push(msg(10, i), 'agreed');
    expect(refused(p, 10)).toBe(true);
    expect(p.takeWritable()).toBe(false);
    p.nextFrame(); // all eight leave in one frame: the queue is empty, at the low mark
    expect(p.takeWritable()).toBe(true);
    expect(p.takeWritable()).toBe(false); // once per episode
    for (let i = 0; i < 8; i++) p.push(msg(500, i), 'agreed'); // two per frame
    expect(refused(p, 500)).toBe(true);
    p.nextFrame(); // 6 queued: room, but above the low mark (4): still closed, smaller ones too
    expect(refused(p, 1)).toBe(true);
    expect(p.takeWritable()).toBe(false);
    p.nextFrame();
    expect(p.takeWritable()).toBe(true);
    p.push(msg(1, 0), 'agreed');
    let pushed = 0;
    while (!refused(p, 1)) pushed++; // full again
    expect(pushed).toBe(3);
    p.clear(); // forgets the refusal
    expect(refused(p, 1)).toBe(false);
    expect(p.takeWritable()).toBe(false);
  });

  it('keeps a large message\'s bytes without a copy until its fragments are built; copies one that fits a frame at once', () => {
    const p = packer(1400);
    const small = msg(50, 1);
    const large = msg(3000, 2);
    p.push(small, 'agreed');
    p.push(large, 'agreed');
    small[0] ^= 0xff; // nobody may do this (Driver.multicast): it shows what the queue holds
    large[0] ^= 0xff;
    const got = feed(reassembler(), 1, drain(p));
    expect(got[0].payload).toEqual(msg(50, 1));
    expect(got[1].payload).toEqual(large);
  });

  it('hands a message of few fragments up as views of its frames, not copied; a whole one as one array', () => {
    const p = packer(65_000);
    const big = msg(1 << 20, 4);
    p.push(msg(10, 1), 'agreed');
    p.push(big, 'agreed');
    const frames = drain(p);
    const got = feed(reassembler(), 9, frames);
    expect(got[0].pieces).toBeUndefined();
    expect(same([got[1].payload], [big])).toBe(true);
    const pieces = got[1].pieces ?? [];
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.length).toBeLessThanOrEqual(PARTS_KEPT_MAX);
    const within = (piece: Uint8Array, f: Uint8Array) => piece.buffer === f.buffer
      && piece.byteOffset >= f.byteOffset && piece.byteOffset + piece.length <= f.byteOffset + f.length;
    const first = frames.findIndex((f) => within(pieces[0], f));
    expect(first).toBeGreaterThanOrEqual(0);
    pieces.forEach((piece, i) => expect(within(piece, frames[first + i])).toBe(true)); // one per frame, in order
  });

  it('refuses an empty fragment (a frame of them would make a partial message hold views of nothing)', () => {
    const frames = drain((() => { const p = packer(1400); p.push(msg(3000, 5), 'fifo'); return p; })());
    const second = Uint8Array.from(frames[1]);
    // The second frame's only entry is a fragment: make it say 0 bytes, and drop its body.
    new DataView(second.buffer).setUint32(FRAME_OVERHEAD + 1, 0);
    const empty = second.subarray(0, FRAME_OVERHEAD + ENTRY_OVERHEAD);
    const r = reassembler();
    r.accept(9, frames[0], () => undefined);
    expect(() => r.accept(9, empty, () => undefined)).toThrow(expect.objectContaining({ code: 'EPROTO' }));
  });

  it('takes a message in parts and writes them into its frames as one, fragments across part edges included', () => {
    const p = packer(500);
    const whole = msg(3000, 4);
    const parts = [whole.subarray(0, 7), whole.subarray(7, 7), whole.subarray(7, 1200), whole.subarray(1200)];
    p.push(parts, 'safe');
    p.push([msg(30, 5)], 'agreed');
    const got = feed(reassembler(), 1, drain(p));
    expect(got.map((g) => g.order)).toEqual(['safe', 'agreed']);
    expect(same(got.map((g) => g.payload), [whole, msg(30, 5)])).toBe(true);
    expect(p.queuedBytes).toBe(0);
  });

  it('leaves the headroom unwritten in front of every frame, in the frame\'s own buffer', () => {
    const p = packer(500, { headroom: 61 });
    p.push(msg(1200, 6), 'agreed'); // in fragments, cut at nextFrame()
    p.push(msg(300, 7), 'agreed'); // written into a frame at once, and taken as it is
    p.push(msg(1200, 8), 'agreed'); // closes that frame
    p.push(msg(20, 9), 'agreed'); // a frame mostly empty: copied out when taken
    let frames = 0;
    for (let f = p.nextFrame(); f; f = p.nextFrame(), frames++) {
      expect(f.bytes.byteOffset).toBeGreaterThanOrEqual(61);
      // The room is part of the frame's allocation: filling it leaves the frame as it was.
      const before = Uint8Array.from(f.bytes);
      new Uint8Array(f.bytes.buffer, f.bytes.byteOffset - 61, 61).fill(0xee);
      expect(f.bytes).toEqual(before);
    }
    expect(frames).toBe(8);
  });

  it('a gap in a sender\'s fragments discards the partial message and never splices', () => {
    const p = packer(500);
    p.push(msg(2000, 1), 'agreed');
    p.push(msg(2000, 2), 'agreed');
    const frames = drain(p);
    const r = reassembler();
    // Lose the second frame: message 1 is incomplete; message 2 must still arrive intact.
    const got = feed(r, 1, [frames[0], ...frames.slice(2)]);
    expect(got.map((g) => g.payload)).toEqual([msg(2000, 2)]);
    expect(r.counters.fragmentsDiscarded).toBeGreaterThan(0);
  });

  it('keeps senders apart and drops a departed sender\'s partial message', () => {
    const p1 = packer(500);
    p1.push(msg(1500, 1), 'agreed');
    const f = drain(p1);
    const r = reassembler();
    feed(r, 1, f.slice(0, 1));
    feed(r, 2, f.slice(0, 1));
    expect(r.partialSenders()).toEqual([1, 2]);
    r.dropSender(1);
    expect(r.partialSenders()).toEqual([2]);
    expect(feed(r, 2, f.slice(1)).map((g) => g.payload)).toEqual([msg(1500, 1)]);
    expect(feed(r, 1, f.slice(1))).toEqual([]);
  });

  it('rejects malformed frames with EPROTO and changes nothing', () => {
    const p = packer(500);
    p.push(msg(1500, 1), 'agreed');
    const frames = drain(p);
    const r = reassembler();
    feed(r, 1, [frames[0]]);
    const bad = [
      new Uint8Array(0), new Uint8Array([9, 0, 0, 1]), new Uint8Array([1, 0, 0, 0]),
      frames[1].subarray(0, frames[1].length - 1), Uint8Array.from([...frames[1], 0]),
      Uint8Array.from([1, 0, 0, 1, 3 << 2, 0, 0, 0, 0]),
    ];
    for (const b of bad) {
      expect(() => r.accept(1, b, () => undefined)).toThrow(expect.objectContaining({ code: 'EPROTO' }));
    }
    expect(r.partialSenders()).toEqual([1]);
    expect(feed(r, 1, frames.slice(1)).map((g) => g.payload)).toEqual([msg(1500, 1)]);
  });

  it('bounds the bytes held in partial messages', () => {
    const r = new Reassembler({ messageSizeMax: 1 << 20, partialBytesMax: 3000 });
    const p = packer(500);
    p.push(msg(2000, 1), 'agreed');
    const f = drain(p);
    feed(r, 1, [f[0]]);
    feed(r, 2, [f[0]]);
    expect(r.partialSenders()).toEqual([1]);
    expect(r.counters.fragmentsDiscarded).toBe(1);
  });
});
