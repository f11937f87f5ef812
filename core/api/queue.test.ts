// The shared client pieces: the bounded event queue (bounds, force, end, one reader, a listener in the reader's place) and the EAGAIN wait-and-retry loop (writable wake-up, backoff, wait:false, abort).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClusterError, isClusterError } from './errors.ts';
import { EventQueue, WritableSignal, callUser, eventBytes, failLater, retryEagain } from './queue.ts';
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

describe('EventQueue with a listener', () => {
  afterEach(() => { vi.unstubAllGlobals(); });

  it('hands the held items at once, then each run of pushes in a microtask after it, in order, never refusing one', async () => {
    const q = new EventQueue<number>({ max: 2 });
    expect([q.push(1), q.push(2), q.push(3)]).toEqual([true, true, false]);
    const got: number[] = [];
    q.listen((n) => got.push(n));
    expect(got).toEqual([1, 2]); // before listen returned
    for (let i = 3; i <= 10; i++) expect(q.push(i)).toBe(true); // past max: nothing is refused
    q.force(11);
    expect(got).toEqual([1, 2]); // not from inside the producer's call
    await Promise.resolve();
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(q.size).toBe(0);
    expect(q.bytes).toBe(0);
  });

  it('one microtask per run of pushes; an item pushed by the listener itself comes after the run, in order', async () => {
    const queued: (() => void)[] = [];
    vi.stubGlobal('queueMicrotask', (f: () => void) => { queued.push(f); });
    const q = new EventQueue<number>({ max: 10 });
    const log: string[] = [];
    q.listen((n) => {
      log.push(`start ${n}`);
      if (n < 3) q.push(n + 10);
      log.push(`end ${n}`);
    });
    q.push(1);
    q.push(2);
    expect(queued).toHaveLength(1);
    queued.shift()?.();
    expect(log).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 11', 'end 11', 'start 12', 'end 12']);
    queued.shift()?.(); // the one the listener's pushes queued finds nothing left
    expect(log).toHaveLength(8);
  });

  it('listen(undefined) from inside the listener leaves what it had not taken for next(), in order, even past max', async () => {
    const q = new EventQueue<number>({ max: 2, sizeOf: () => 10 });
    const got: number[] = [];
    q.listen((n) => {
      got.push(n);
      if (n === 2) q.listen(undefined);
    });
    for (let i = 1; i <= 5; i++) q.push(i);
    await Promise.resolve();
    expect(got).toEqual([1, 2]);
    expect(q.size).toBe(3);
    expect(q.bytes).toBe(30);
    expect(q.push(6)).toBe(false); // the reader is behind its bound now, as any reader can be
    const rest: number[] = [];
    for (let i = 0; i < 3; i++) rest.push((await q.next()).value as number);
    expect(rest).toEqual([3, 4, 5]);
    expect(q.bytes).toBe(0);
  });

  it('one consumer at a time: no listener while a reader waits, no reader while a listener is set', async () => {
    const q = new EventQueue<number>({ max: 10 });
    const waiting = q.next();
    expect(() => q.listen(() => undefined)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    q.push(1);
    expect(await waiting).toEqual({ value: 1, done: false });
    q.listen(() => undefined);
    await expect(q.next()).rejects.toMatchObject({ code: 'EINVAL' });
    expect(() => q.listen('no' as unknown as () => void)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('what was pushed before end() still reaches the listener', async () => {
    const q = new EventQueue<number>({ max: 10 });
    const got: number[] = [];
    q.listen((n) => got.push(n));
    q.push(1);
    q.force(2); // a final error event, say
    q.end();
    q.push(3); // after the end: nothing
    await Promise.resolve();
    expect(got).toEqual([1, 2]);
  });

  it('a listener that throws does not stop the items after it; the error is thrown again in a microtask', () => {
    const later: (() => void)[] = [];
    vi.stubGlobal('queueMicrotask', (f: () => void) => { later.push(f); });
    const q = new EventQueue<number>({ max: 10 });
    const got: number[] = [];
    const boom = new Error('boom');
    q.listen((n) => { got.push(n); if (n === 1) throw boom; });
    q.push(1);
    q.push(2);
    later.shift()?.(); // the drain
    expect(got).toEqual([1, 2]);
    expect(later).toHaveLength(1);
    expect(later[0]).toThrow(boom);
  });
});

describe('callUser and failLater', () => {
  afterEach(() => { vi.unstubAllGlobals(); });

  it('failLater calls back after the caller returns, once', () => {
    const later: (() => void)[] = [];
    vi.stubGlobal('queueMicrotask', (f: () => void) => { later.push(f); });
    const calls: (Error | null)[] = [];
    const e = new ClusterError('EMSGSIZE', 'big');
    failLater((err) => calls.push(err), e);
    expect(calls).toEqual([]);
    later.shift()?.();
    expect(calls).toEqual([e]);
    callUser((x: number) => calls.push(x === 1 ? null : e), 1);
    expect(calls).toEqual([e, null]);
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
