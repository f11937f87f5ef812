// The shared client pieces: the bounded event queue (bounds, force, end, one reader) and the EAGAIN wait-and-retry loop (writable wake-up, backoff, wait:false, abort).
import { describe, expect, it } from 'vitest';
import { ClusterError, isClusterError } from './errors.ts';
import { EventQueue, WritableSignal, eventBytes, retryEagain } from './queue.ts';
import type { SocketEvent } from './types.ts';

const msg = (n: number): SocketEvent => ({
  type: 'message', group: 'g', sender: { nodeId: 1, pid: 1, port: 1 }, order: 'agreed', data: new Uint8Array(n),
});

describe('EventQueue', () => {
  it('holds up to max items and max bytes, then refuses; force goes past; end drains then finishes', async () => {
    const q = new EventQueue<SocketEvent>({ max: 3, bytesMax: 400, sizeOf: eventBytes });
    expect(q.push(msg(100))).toBe(true);
    expect(q.push(msg(100))).toBe(true);
    expect(q.push(msg(100))).toBe(false); // 3 * 164 bytes > 400
    expect(q.size).toBe(2);
    q.force({ type: 'error', code: 'ENOBUFS', message: 'behind' });
    q.end();
    const got: string[] = [];
    for await (const ev of q) got.push(ev.type);
    expect(got).toEqual(['message', 'message', 'error']);
    expect(q.bytes).toBe(0);
    const small = new EventQueue<number>({ max: 2 });
    expect([small.push(1), small.push(2), small.push(3)]).toEqual([true, true, false]);
  });

  it('hands an item straight to a waiting reader and allows one reader at a time', async () => {
    const q = new EventQueue<number>({ max: 1 });
    const first = q.next();
    await expect(q.next()).rejects.toMatchObject({ code: 'EINVAL' });
    expect(q.push(7)).toBe(true);
    expect(await first).toEqual({ value: 7, done: false });
    const pending = q.next();
    q.end();
    expect(await pending).toEqual({ value: undefined, done: true });
  });
});

describe('retryEagain', () => {
  it('retries while EAGAIN, woken by writable, and passes other errors and results through', async () => {
    const w = new WritableSignal();
    let tries = 0;
    const p = retryEagain(() => {
      tries++;
      if (tries < 3) throw new ClusterError('EAGAIN', 'full');
      return 'sent';
    }, { writable: w, minDelayMs: 60_000 });
    while (tries < 1) await new Promise((r) => setImmediate(r));
    for (let i = 0; tries < 3 && i < 1000; i++) { w.notify(); await new Promise((r) => setImmediate(r)); }
    expect(await p).toBe('sent');
    await expect(retryEagain(() => { throw new ClusterError('EMSGSIZE', 'big'); })).rejects.toMatchObject({ code: 'EMSGSIZE' });
  });

  it('throws EAGAIN at once with wait:false, and ECANCELED when aborted while waiting', async () => {
    const again = (): never => { throw new ClusterError('EAGAIN', 'full'); };
    await expect(retryEagain(again, { wait: false })).rejects.toMatchObject({ code: 'EAGAIN' });
    const ctl = new AbortController();
    const p = retryEagain(again, { signal: ctl.signal, minDelayMs: 60_000, writable: new WritableSignal() });
    ctl.abort();
    const err = await p.catch((e: unknown) => e);
    expect(isClusterError(err, 'ECANCELED')).toBe(true);
    await expect(retryEagain(() => 1, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ECANCELED' });
  });

  it('falls back to its backoff when no writable signal comes', async () => {
    let tries = 0;
    const v = await retryEagain(() => { if (++tries < 4) throw new ClusterError('EAGAIN', 'full'); return tries; }, { minDelayMs: 1, maxDelayMs: 2 });
    expect(v).toBe(4);
  });
});
