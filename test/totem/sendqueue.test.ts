// Proves the totem send queue reports room (canPush(0)) only once the message it refused fits, and
// calls refused senders back (canResume(), the driver's writable test) only at half the queue,
// and keeps no sent message alive.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { SendQueue } from '../../drivers/totem/sendqueue.ts';
import { isClusterError } from '../../core/api/errors.ts';

const opts = { frameSizeMax: 1000, messageSizeMax: 64 * 1024, queueMessagesMax: 100, queueBytesMax: 4000 };

function refused(q: SendQueue, size: number): boolean {
  try {
    q.push(new Uint8Array(size), 'agreed');
    return false;
  } catch (e) {
    if (isClusterError(e, 'EAGAIN')) return true;
    throw e;
  }
}

describe('SendQueue room after EAGAIN', () => {
  it('calls refused senders back (canResume) only at half the queue, for the refused size', () => {
    const q = new SendQueue(opts);
    for (let i = 0; i < 8; i++) q.push(new Uint8Array(500), 'agreed'); // 4000 bytes: full
    expect(refused(q, 500)).toBe(true);
    q.nextFrame(); // room for the refused message, not yet the low mark
    expect(q.canPush(0)).toBe(true);
    expect(q.canResume()).toBe(false);
    while (q.queuedBytes + 500 > 2000) { expect(q.canResume()).toBe(false); q.nextFrame(); }
    expect(q.canResume()).toBe(true);
  });

  it('after a refusal takes nothing, small messages included, until the low mark has room for the refused one', () => {
    const q = new SendQueue(opts);
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
    const q = new SendQueue(opts);
    for (let i = 0; i < 8; i++) q.push(new Uint8Array(500), 'agreed');
    expect(refused(q, 2000)).toBe(true);
    expect(refused(q, 400)).toBe(true);
    while (q.queuedBytes + 400 > 2000) q.nextFrame();
    expect(q.canResume()).toBe(true); // the 400-byte one fits under the low mark
    q.push(new Uint8Array(400), 'agreed');
    expect(q.canPush(0)).toBe(true); // nothing refused since
  });

  it('forgets a refusal when cleared', () => {
    const q = new SendQueue(opts);
    q.push(new Uint8Array(3000), 'agreed');
    expect(refused(q, 3000)).toBe(true);
    q.clear();
    expect(q.canPush(0)).toBe(true);
  });
});

describe('SendQueue memory', () => {
  it('lets go of a sent message (queue and rewind mirror) once its last fragment is in a frame', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const q = new SendQueue({ ...opts, queueBytesMax: 1 << 20 });
    // The message itself, no copy: the packer and the mirror hold the bytes they were given.
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
