// Client-side pieces shared by every GroupSocket implementation (the embedded node's sockets and
// ClusterSocket over the daemon): a bounded event queue read with `for await`, and the loop that
// waits and retries while a send answers EAGAIN.
import { ClusterError, isClusterError } from './errors.ts';
import type { SocketEvent } from './types.ts';

export interface EventQueueOptions<T> {
  /** Most items held (unread). */
  readonly max: number;
  /** Most bytes held, as counted by `sizeOf` (default: no byte bound). */
  readonly bytesMax?: number;
  readonly sizeOf?: (item: T) => number;
}

/**
 * A bounded FIFO with one async consumer. push() answers false when full (the producer decides
 * what an overflow means); force() adds one item past the bound (a final error event); end()
 * lets the reader drain what is held and then finish.
 */
export class EventQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private head = 0;
  private heldBytes = 0;
  private waiter: ((r: IteratorResult<T>) => void) | undefined;
  private ended = false;

  constructor(private readonly opts: EventQueueOptions<T>) {}

  get size(): number { return this.items.length - this.head; }
  get bytes(): number { return this.heldBytes; }
  get isEnded(): boolean { return this.ended; }

  push(item: T): boolean {
    if (this.ended) return true;
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

  next(): Promise<IteratorResult<T>> {
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
