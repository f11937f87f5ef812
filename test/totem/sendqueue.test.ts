// Proves the totem send queue reports room (canPush(0)) only once the message it refused fits, and
// calls refused senders back (canResume(), the driver's writable test) only at half the queue.
import { describe, expect, it } from 'vitest';
import { SendQueue } from '../../drivers/totem/sendqueue.ts';
import { isClusterError } from '../../core/errors.ts';

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

  it('is not writable at the first free byte when a larger message was refused', () => {
    const q = new SendQueue(opts);
    for (let i = 0; i < 8; i++) q.push(new Uint8Array(500), 'agreed');
    expect(refused(q, 2000)).toBe(true);
    q.nextFrame(); // one frame out: room for a small message, not yet for the refused one
    expect(q.queuedBytes).toBeLessThan(4000);
    expect(q.queuedBytes + 2000).toBeGreaterThan(4000);
    expect(q.canPush(0)).toBe(false);
    while (q.queuedBytes + 2000 > 4000) q.nextFrame();
    expect(q.canPush(0)).toBe(true);
    q.push(new Uint8Array(2000), 'agreed');
  });

  it('waits for the smallest refused message, and forgets it once it fits', () => {
    const q = new SendQueue(opts);
    for (let i = 0; i < 8; i++) q.push(new Uint8Array(500), 'agreed');
    expect(refused(q, 2000)).toBe(true);
    expect(refused(q, 400)).toBe(true);
    while (q.queuedBytes + 400 > 4000) q.nextFrame();
    expect(q.canPush(0)).toBe(true); // the 400-byte one fits
    q.push(new Uint8Array(400), 'agreed');
    while (q.queuedBytes > 3000) q.nextFrame();
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
