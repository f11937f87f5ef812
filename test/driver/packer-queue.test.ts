// Proves the send queue (both drivers' Packer) reports room (canPush(0)) only once the message it
// refused fits, calls refused senders back (canResume(), the driver's writable test) only at half
// the queue, keeps no sent message alive, and starts a message cut by a new ring again.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { Packer, Reassembler, type PackerOptions } from '../../core/driver/packing.ts';
import { isClusterError } from '../../core/api/errors.ts';

const opts = { frameSizeMax: 1000, messageSizeMax: 64 * 1024, queueMessagesMax: 100, queueBytesMax: 4000 };

/** A Packer whose last frame taken waited 10 ms (as a driver's clock would tell it): the frames it
 *  opens next are staged, filled in buffers of its own, as long as no clock says otherwise. */
function staging(o: PackerOptions): Packer {
  const q = new Packer(o);
  q.nextFrame(0);
  q.push(new Uint8Array(1), 'agreed');
  q.nextFrame(10);
  return q;
}

function refused(q: Packer, size: number): boolean {
  try {
    q.push(new Uint8Array(size), 'agreed');
    return false;
  } catch (e) {
    if (isClusterError(e, 'EAGAIN')) return true;
    throw e;
  }
}

describe('Packer room after EAGAIN', () => {
  it('calls refused senders back (canResume) only at half the queue, for the refused size', () => {
    const q = new Packer(opts);
    for (let i = 0; i < 8; i++) q.push(new Uint8Array(500), 'agreed'); // 4000 bytes: full
    expect(refused(q, 500)).toBe(true);
    q.nextFrame(); // room for the refused message, not yet the low mark
    expect(q.canPush(0)).toBe(true);
    expect(q.canResume()).toBe(false);
    while (q.queuedBytes + 500 > 2000) { expect(q.canResume()).toBe(false); q.nextFrame(); }
    expect(q.canResume()).toBe(true);
  });

  it('after a refusal takes nothing, small messages included, until the low mark has room for the refused one', () => {
    const q = new Packer(opts);
    for (let i = 0; i < 8; i++) q.push(new Uint8Array(500), 'agreed');
    expect(refused(q, 2000)).toBe(true);
    q.nextFrame(); // one frame out: room for a small message, but the queue stays closed
    expect(q.queuedBytes + 100).toBeLessThanOrEqual(4000);
    expect(refused(q, 100)).toBe(true);
    // The low mark is half the bytes (2000) with room for the smallest refused message (100).
    while (q.queuedBytes + 100 > 2000) { expect(q.canResume()).toBe(false); expect(refused(q, 100)).toBe(true); q.nextFrame(); }
    expect(q.canResume()).toBe(true);
    expect(q.canPush(0)).toBe(true);
    q.push(new Uint8Array(100), 'agreed');
    q.push(new Uint8Array(400), 'agreed'); // open again: nothing refused since
  });

  it('reopens at the low mark with room for the smallest refused message, not the largest', () => {
    const q = new Packer(opts);
    for (let i = 0; i < 8; i++) q.push(new Uint8Array(500), 'agreed');
    expect(refused(q, 2000)).toBe(true);
    expect(refused(q, 400)).toBe(true);
    while (q.queuedBytes + 400 > 2000) q.nextFrame();
    expect(q.canResume()).toBe(true); // the 400-byte one fits under the low mark
    q.push(new Uint8Array(400), 'agreed');
    expect(q.canPush(0)).toBe(true); // nothing refused since
  });

  it('forgets a refusal when cleared', () => {
    const q = new Packer(opts);
    q.push(new Uint8Array(3000), 'agreed');
    expect(refused(q, 3000)).toBe(true);
    q.clear();
    expect(q.canPush(0)).toBe(true);
  });
});

describe('Packer memory', () => {
  it('lets go of a large message once its last fragment is in a frame', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const q = new Packer({ ...opts, queueBytesMax: 1 << 20 });
    // The message itself, no copy: the packer holds the bytes it was given.
    // (Pushed from a function of its own, so that no stack slot of the test keeps one alive.)
    const push = (i: number): WeakRef<Uint8Array> => {
      const message = new Uint8Array(20_000).fill(i);
      q.push(message, 'agreed');
      return new WeakRef(message);
    };
    const refs = [push(0), push(1), push(2)];
    while (q.nextFrame()) { /* every fragment of every message into a frame */ }
    await new Promise((r) => setTimeout(r, 0)); // WeakRef targets live until the job ends
    gc();
    expect(refs.map((r) => r.deref() === undefined)).toEqual([true, true, true]);
  });
});

describe('Packer copies a message that fits a frame when it is pushed', () => {
  it('keeps none of the caller\'s arrays: they can be collected before any frame is taken', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const q = new Packer({ ...opts, queueBytesMax: 1 << 20 });
    const push = (i: number): WeakRef<Uint8Array>[] => {
      const header = new Uint8Array(8).fill(i);
      const body = new Uint8Array(300).fill(i + 1);
      q.push([header, body], 'agreed');
      return [new WeakRef(header), new WeakRef(body)];
    };
    const refs = [push(0), push(1), push(2)].flat();
    await new Promise((r) => setTimeout(r, 0));
    gc();
    expect(refs.map((r) => r.deref() === undefined)).toEqual([true, true, true, true, true, true]);
    expect(q.queuedMessages).toBe(3);
    const got: Uint8Array[] = [];
    const r = new Reassembler({ messageSizeMax: 1 << 20, partialBytesMax: 1 << 20 });
    for (let f = q.nextFrame(); f; f = q.nextFrame()) r.accept(1, f.bytes, (p) => got.push(Uint8Array.from(p as Uint8Array)));
    expect(got.map((m) => [m.length, m[0], m[8]])).toEqual([[308, 0, 1], [308, 1, 2], [308, 2, 3]]);
  });

  it('keeps nothing of a message of wholeMax bytes (the driver\'s multicastCopiesUpTo), and keeps one a byte longer', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const q = new Packer({ ...opts, queueBytesMax: 1 << 20 });
    expect(q.wholeMax).toBe(opts.frameSizeMax - 4 - 5);
    const push = (n: number): WeakRef<Uint8Array> => {
      const m = new Uint8Array(n).fill(3);
      q.push(m, 'agreed');
      return new WeakRef(m);
    };
    const fits = push(q.wholeMax);
    const over = push(q.wholeMax + 1);
    await new Promise((r) => setTimeout(r, 0));
    gc();
    expect([fits.deref() === undefined, over.deref() === undefined]).toEqual([true, false]);
  });

  it('copies every staged frame of whole messages out of its buffer, so that filling the buffer again leaves the frame as it was', () => {
    const q = staging({ ...opts, headroom: 16 });
    q.push(new Uint8Array(10).fill(7), 'agreed');
    const small = q.nextFrame()!;
    const expected = [1, 0, 0, 1, 1 << 2, 0, 0, 0, 10, ...new Array(10).fill(7)];
    expect(Array.from(small.bytes)).toEqual(expected);
    expect(small.bytes.byteOffset).toBeGreaterThanOrEqual(16); // the headroom, in its own buffer
    expect(q.stagingFree).toBe(1); // its buffer, free to be filled again
    for (let i = 0; i < 3; i++) q.push(new Uint8Array(300).fill(i), 'agreed'); // 919 of 1000
    expect(q.stagingFree).toBe(0);
    const full = q.nextFrame()!;
    expect(full.messages).toBe(3);
    expect(full.bytes.byteOffset).toBeGreaterThanOrEqual(16);
    expect(Array.from(small.bytes)).toEqual(expected);
    const fullBefore = Uint8Array.from(full.bytes);
    for (let i = 0; i < 3; i++) q.push(new Uint8Array(300).fill(9), 'agreed'); // the same buffer again
    expect(q.nextFrame()!.messages).toBe(3);
    expect(full.bytes).toEqual(fullBefore);
    expect(Array.from(small.bytes)).toEqual(expected);
    expect(q.stagingFree).toBe(1); // one buffer served all three frames
  });

  it('without copyOut, a frame at least half full goes with its buffer; a mostly empty one is still copied out', () => {
    const q = new Packer({ ...opts, headroom: 16, copyOut: false });
    for (let i = 0; i < 3; i++) q.push(new Uint8Array(300).fill(i), 'agreed');
    const full = q.nextFrame()!;
    const fullBefore = Uint8Array.from(full.bytes);
    q.push(new Uint8Array(10).fill(7), 'agreed');
    const small = q.nextFrame()!;
    expect(small.messages).toBe(1);
    for (let i = 0; i < 3; i++) q.push(new Uint8Array(300).fill(8), 'agreed'); // the small one's buffer again
    expect(q.nextFrame()!.messages).toBe(3);
    expect(full.bytes).toEqual(fullBefore);
    expect(Array.from(small.bytes)).toEqual([1, 0, 0, 1, 1 << 2, 0, 0, 0, 10, ...new Array(10).fill(7)]);
    expect(q.stagingFree).toBe(0); // nothing staged
  });

  it('stages frames (copies them out) only after a frame waited 10 ms or more by the clock nextFrame() is given', () => {
    let now = 0;
    const q = new Packer(opts);
    q.nextFrame(now); // a visit with nothing queued: the clock
    const three = (fill: number): void => { for (let i = 0; i < 3; i++) q.push(new Uint8Array(300).fill(fill), 'agreed'); };
    three(1);
    now += 9;
    const soon = q.nextFrame(now)!; // waited 9 ms: went with its buffer, nothing staged
    expect(q.stagingFree).toBe(0);
    const soonBefore = Uint8Array.from(soon.bytes);
    three(2);
    now += 10;
    const late = q.nextFrame(now)!; // waited 10 ms: still its own buffer, but the next ones are staged
    expect(q.stagingFree).toBe(0);
    three(3);
    now += 10;
    const staged = q.nextFrame(now)!; // staged, copied out; it waited 10 ms too, so the next is staged
    expect(q.stagingFree).toBe(1); // its buffer free again
    const stagedBefore = Uint8Array.from(staged.bytes);
    three(4); // staged in that same buffer
    expect(q.stagingFree).toBe(0);
    expect(q.nextFrame(now)!.messages).toBe(3); // taken at once (0 ms): the next ones go with their buffers
    expect(q.stagingFree).toBe(1);
    three(5);
    q.nextFrame(now);
    expect(q.stagingFree).toBe(1); // not staged
    expect([soon.bytes, late.bytes.length, staged.bytes]).toEqual([soonBefore, soonBefore.length, stagedBefore]);
  });

  it('keeps a bounded number of free frame buffers, and lets them go once idle (nothing pushed since the last call, nothing queued)', () => {
    // 4 MiB of free buffers at most: 256 of 16 KiB frames.
    const q = staging({ frameSizeMax: 16 * 1024, messageSizeMax: 64 * 1024, queueMessagesMax: 1000, queueBytesMax: 64 * 1024 * 1024 });
    const big = new Uint8Array(9000); // over half a frame: one frame each
    for (let i = 0; i < 300; i++) q.push(big, 'agreed');
    for (let f = q.nextFrame(); f; f = q.nextFrame()) expect(f.messages).toBe(1);
    expect(q.stagingFree).toBe(256);
    q.releaseIdle(); // pushed since the last call: kept
    expect(q.stagingFree).toBe(256);
    q.push(big, 'agreed');
    q.releaseIdle(); // pushed, and queued: kept
    q.releaseIdle(); // still queued: kept
    expect(q.stagingFree).toBe(255);
    q.nextFrame();
    q.releaseIdle(); // nothing pushed since the last call, nothing queued: let go
    expect(q.stagingFree).toBe(0);
    q.push(big, 'agreed'); // a new load makes new ones
    expect(Array.from(q.nextFrame()!.bytes.subarray(0, 4))).toEqual([1, 0, 0, 1]);
    expect(q.stagingFree).toBe(1);
  });

  it('takes the buffers of staged frames a clear() drops back into the free list', () => {
    const q = staging(opts);
    for (let i = 0; i < 6; i++) q.push(new Uint8Array(600), 'agreed'); // six frames
    q.clear();
    expect(q.queuedMessages).toBe(0);
    expect(q.stagingFree).toBe(6);
  });
});

describe('Packer rewind (a new ring)', () => {
  it('starts a message whose first fragments were taken again from its first byte, and keeps what follows', () => {
    const q = new Packer({ ...opts, queueBytesMax: 1 << 20 });
    const big = Uint8Array.from({ length: 5000 }, (_, i) => (i * 13) & 0xff);
    const after = new Uint8Array(40).fill(9);
    expect(q.rewind()).toBe(false); // nothing queued
    q.push(new Uint8Array(20).fill(1), 'agreed');
    expect(q.rewind()).toBe(false); // nothing begun
    q.push(big, 'safe');
    q.push(after, 'agreed');
    q.nextFrame(); // the small one
    q.nextFrame(); // the large one's first fragment
    q.nextFrame(); // and its second
    expect(q.queuedMessages).toBe(2);
    expect(q.rewind()).toBe(true);
    expect(q.rewind()).toBe(false); // begun no more
    // The new ring's receivers know nothing of the old fragments: from here it is whole.
    const got: { bytes: Uint8Array; order: string }[] = [];
    const r = new Reassembler({ messageSizeMax: 1 << 20, partialBytesMax: 1 << 20 });
    for (let f = q.nextFrame(); f; f = q.nextFrame()) {
      r.accept(2, f.bytes, (p, order) => got.push({ bytes: Array.isArray(p) ? Buffer.concat(p) : Uint8Array.from(p as Uint8Array), order }));
    }
    expect(got.map((g) => g.order)).toEqual(['safe', 'agreed']);
    expect(Buffer.from(got[0].bytes).equals(Buffer.from(big))).toBe(true);
    expect(Buffer.from(got[1].bytes).equals(Buffer.from(after))).toBe(true);
    expect(q.queuedMessages).toBe(0);
    expect(q.queuedBytes).toBe(0);
  });
});
