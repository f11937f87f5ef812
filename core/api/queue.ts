// Client-side pieces shared by every GroupSocket implementation (the embedded node's sockets and
// ClusterSocket over the daemon): a bounded event queue read with `for await` or handed to a
// listener, and the loop that waits and retries while a send answers EAGAIN.
import { ClusterError, isClusterError } from './errors.ts';
import type { SendCallback, SocketEvent } from './types.ts';

export interface EventQueueOptions<T> {
  /** Most items held (unread). */
  readonly max: number;
  /** Most bytes held, as counted by `sizeOf` (default: no byte bound). */
  readonly bytesMax?: number;
  readonly sizeOf?: (item: T) => number;
}

/** A user's function, called by the library's own loops: a listener, a send's callback. */
export function callUser<A>(fn: (a: A) => void, a: A): void {
  try {
    fn(a);
  } catch (e) {
    // Thrown again outside the loop, where Node reports it as it would from any socket's
    // callback (an uncaught exception), while the items after this one still go out.
    queueMicrotask(() => { throw e; });
  }
}

/** A send's failure to its callback, as a failure that comes later would: never before send returns. */
export function failLater(callback: SendCallback, e: Error): void {
  queueMicrotask(() => callUser(callback, e));
}

/** EINVAL for a send callback that is not a function (undefined for one, or none): every
 *  GroupSocket refuses it as a failure of the send, a rejected promise. */
export function badCallback(callback: unknown): ClusterError | undefined {
  if (callback === undefined || typeof callback === 'function') return undefined;
  return new ClusterError('EINVAL', 'a send\'s callback is a function; leave it out to get a promise');
}

/** A send's promise to its callback (send's callback form over a path that has a promise). */
export function settleTo(p: Promise<void>, callback: SendCallback): void {
  p.then(() => callUser(callback, null), (e: Error) => callUser(callback, e));
}

/**
 * A bounded FIFO with one consumer: an async reader (next(), `for await`) or a listener
 * (listen()). push() answers false when full (the producer decides what an overflow means);
 * force() adds one item past the bound (a final error event); end() lets the reader drain what
 * is held and then finish. A listener takes the items pushed in a microtask just after the
 * producer's call (one per run of pushes, not per item), never from inside it: the producer (a
 * client's datagram, the group layer's delivery) is never re-entered by what the listener calls.
 * Nothing is refused while a listener is set: it takes what a run pushed before the next run.
 */
export class EventQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private head = 0;
  private heldBytes = 0;
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private ended = false;
  private listener: ((item: T) => void) | undefined;
  /** A listener is being called: a listen() from inside it leaves the drain under way to go on. */
  private dispatching = false;
  /** A drain is queued as a microtask. */
  private drainQueued = false;
  private readonly drainLater = (): void => {
    this.drainQueued = false;
    this.drain();
  };

  constructor(private readonly opts: EventQueueOptions<T>) {}

  get size(): number { return this.items.length - this.head; }
  get bytes(): number { return this.heldBytes; }
  get isEnded(): boolean { return this.ended; }

  push(item: T): boolean {
    if (this.ended) return true;
    if (this.listener) { this.dispatch(item); return true; }
    if (this.waiter) { this.handOver(item); return true; }
    const n = this.opts.sizeOf?.(item) ?? 0;
    if (this.size >= this.opts.max) return false;
    if (this.opts.bytesMax !== undefined && this.size > 0 && this.heldBytes + n > this.opts.bytesMax) return false;
    this.items.push(item);
    this.heldBytes += n;
    return true;
  }

  /** Adds an item even when full (at most one past the bound per call site's logic). */
  force(item: T): void {
    if (this.ended) return;
    if (this.listener) { this.dispatch(item); return; }
    if (this.waiter) { this.handOver(item); return; }
    this.items.push(item);
    this.heldBytes += this.opts.sizeOf?.(item) ?? 0;
  }

  end(): void {
    this.ended = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  /**
   * Hands every item to `fn`, in order: those held now at once (before listen returns), then
   * each run of pushes in a microtask just after it. listen(undefined) goes back to holding items
   * for next(); what the listener had not taken stays for it, even past `max`. One consumer at a
   * time: EINVAL while a reader waits in next(), and next() refuses while a listener is set. An
   * exception `fn` throws does not stop the items after it (callUser).
   */
  listen(fn: ((item: T) => void) | undefined): void {
    if (fn !== undefined && typeof fn !== 'function') throw new ClusterError('EINVAL', 'a listener is a function (or undefined, to read with for await again)');
    if (fn && this.waiter) throw new ClusterError('EINVAL', 'a reader is waiting in for await: one reader at a time; stop that loop first');
    const had = this.listener !== undefined;
    this.listener = fn;
    if (fn) {
      // Nothing is counted while a listener is set: what is held now goes to it at once, and
      // later items only until the microtask after their run.
      if (!had) this.heldBytes = 0;
      if (!this.dispatching) this.drain();
    } else if (had) {
      // Back to next(): what the listener had not taken is counted again.
      let n = 0;
      if (this.opts.sizeOf) for (let i = this.head; i < this.items.length; i++) n += this.opts.sizeOf(this.items[i]);
      this.heldBytes = n;
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.listener) return Promise.reject(new ClusterError('EINVAL', 'a listener reads this socket (listen()); remove it with listen(undefined) to read with for await'));
    if (this.head < this.items.length) {
      const value = this.items[this.head++];
      this.heldBytes -= this.opts.sizeOf?.(value) ?? 0;
      if (this.head === this.items.length) { this.items = []; this.head = 0; }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter) return Promise.reject(new ClusterError('EINVAL', 'one reader at a time: this socket is already being iterated'));
    return new Promise((resolve) => { this.waiter = resolve; });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next(), return: async () => ({ value: undefined, done: true }) };
  }

  /** One pushed item for the listener, taken by a drain queued as a microtask. */
  private dispatch(item: T): void {
    this.items.push(item);
    if (!this.drainQueued) { this.drainQueued = true; queueMicrotask(this.drainLater); }
  }

  /** The held items to the listener, in order, while one is set (uncounted: see listen()). */
  private drain(): void {
    this.dispatching = true;
    for (let fn = this.listener; fn && this.head < this.items.length; fn = this.listener) callUser(fn, this.items[this.head++]);
    this.dispatching = false;
    if (this.head === this.items.length) { this.items.length = 0; this.head = 0; }
  }

  private handOver(item: T): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.({ value: item, done: false });
  }
}

/** Bytes an event holds in a receive queue (payload plus a fixed allowance). */
export function eventBytes(ev: SocketEvent): number {
  switch (ev.type) {
    case 'message': return 64 + ev.data.length;
    case 'membership': return 64 + 16 * (ev.members.length + ev.joined.length + ev.left.length);
    case 'quorum': return 64;
    case 'error': return 64 + ev.message.length;
  }
}

/** Wakes everyone waiting for the send path to have room again. */
export class WritableSignal {
  private waiters = new Set<() => void>();
  /** Resolves at the next notify() (or when `signal` aborts: ECANCELED). */
  wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) { reject(cancelled()); return; }
      const done = (): void => { this.waiters.delete(done); signal?.removeEventListener('abort', onAbort); resolve(); };
      const onAbort = (): void => { this.waiters.delete(done); reject(cancelled()); };
      this.waiters.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
  notify(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
  get waiting(): number { return this.waiters.size; }
}

export interface RetryOptions {
  /** Default true: wait while the attempt answers EAGAIN. false: throw EAGAIN at once. */
  readonly wait?: boolean;
  readonly signal?: AbortSignal;
  /** Woken when a retry may succeed; the loop also retries after a backoff in case it never fires. */
  readonly writable?: WritableSignal;
  readonly minDelayMs?: number;
  readonly maxDelayMs?: number;
}

/** EINVAL for an options.signal that is not an AbortSignal (undefined for one, or none): every
 *  GroupSocket refuses it before it starts anything. */
export function badSignal(signal: AbortSignal | undefined): ClusterError | undefined {
  if (signal === undefined || typeof (signal as { addEventListener?: unknown }).addEventListener === 'function') return undefined;
  return new ClusterError('EINVAL', 'options.signal is not an AbortSignal; pass an AbortController\'s signal, or none');
}

export const RETRY_MIN_MS = 1;
export const RETRY_MAX_MS = 100;

/**
 * Runs `attempt` until it does not throw EAGAIN. Between tries it waits for `writable` or a
 * doubling backoff (RETRY_MIN_MS..RETRY_MAX_MS), whichever comes first. An aborted signal ends it
 * with ECANCELED; any other error passes through.
 */
export async function retryEagain<T>(attempt: () => T | Promise<T>, opts: RetryOptions = {}): Promise<T> {
  let delay = opts.minDelayMs ?? RETRY_MIN_MS;
  for (;;) {
    if (opts.signal?.aborted) throw cancelled();
    try {
      return await attempt();
    } catch (e) {
      if (!isClusterError(e, 'EAGAIN') || opts.wait === false) throw e;
    }
    await waitOrBackoff(delay, opts);
    delay = Math.min(delay * 2, opts.maxDelayMs ?? RETRY_MAX_MS);
  }
}

function waitOrBackoff(delayMs: number, opts: RetryOptions): Promise<void> {
  const ctl = new AbortController();
  const onAbort = (): void => ctl.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { ctl.abort(); resolve(); }, delayMs);
    opts.writable?.wait(ctl.signal).then(() => { clearTimeout(timer); resolve(); }, () => { /* timer or abort */ });
    ctl.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      if (opts.signal?.aborted) reject(cancelled()); else resolve();
    }, { once: true });
  }).finally(() => { opts.signal?.removeEventListener('abort', onAbort); ctl.abort(); });
}

function cancelled(): ClusterError {
  return new ClusterError('ECANCELED', 'the operation was aborted');
}
