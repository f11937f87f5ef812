// One client's receive queue in the daemon: the datagrams (events and replies) on their way to
// the client's socket, through a channel to it (a unix socket connected to it, in the shell).
// The kernel queue of a unix datagram socket is short (net.unix.max_dgram_qlen), so a client
// that reads slowly makes the send answer 'again': we keep the rest here, bounded in events and
// bytes, and resume when the channel says it is writable. A full queue is the slow-consumer case
// (docs/ARCHITECTURE.md, "Sockets and groups"): the caller removes the socket.
// A version-2 client gets what is queued packed into BATCH containers: the queue is flushed once
// at the end of the current burst (the host's defer, after the runtime's datagram handler), so a
// burst of deliveries costs the client one datagram, not one each, and a lone event waits for nothing.
// Pure: the channel and the deferral are injected.
import { BATCH_HEADER_BYTES, BATCH_ITEM_OVERHEAD, DATAGRAM_MAX, writeBatch } from './codec.ts';
import { bytePartsLength, concatBytes, copyBytes, type ByteParts } from '../wire/bytes.ts';

/** A datagram channel to one client socket. */
export interface ClientChannel {
  /** Sends one datagram now (given as parts, a large MESSAGE of version 5: the channel gathers
   *  them, so the payload is not copied behind its header): 'sent'; 'again' when the client's
   *  queue is full (the owner is told when it is writable again); otherwise the errno name
   *  (ECONNREFUSED: the socket is gone). */
  send(bytes: ByteParts): 'sent' | 'again' | string;
  close(): void;
}

/** Where containers are put together: sends are synchronous, so one buffer serves every outbox. */
const scratch = new Uint8Array(DATAGRAM_MAX);

/**
 * The slow-consumer rule. Up to eventsMax events and bytesMax bytes a queue always takes more.
 * Beyond that (a burst: the backlog a merge releases at once) it still takes more while the
 * client keeps reading, until twice the bounds; a client that has read nothing for stallMs while
 * over the bounds, or whose queue reached twice them, is out (the caller evicts it: overrun).
 */
export interface OutboxLimits {
  /** Events queued (replies are counted apart, at most REPLIES_QUEUED_MAX). */
  readonly eventsMax: number;
  readonly bytesMax: number;
  readonly stallMs: number;
}

/** How far past its bounds a queue that keeps draining may grow. */
export const BURST_FACTOR = 2;

/** Replies waiting at once for a client whose queue is full: every reply to requests a client may
 *  keep unanswered (PROTOCOL.md: up to 4096; the reference client keeps up to 1024 SENDs in
 *  flight). Past it a reply is dropped and counted (repliesDropped): a client that sends that many
 *  requests without reading. */
export const REPLIES_QUEUED_MAX = 4096;

/** Bytes of replies waiting at once: most replies are a dozen bytes, a STATS reply up to a
 *  datagram, so many of those cannot pin much of the daemon's memory either. */
export const REPLY_BYTES_QUEUED_MAX = 1024 * 1024;

/** A datagram queued: one array, or a large MESSAGE's parts (see keptParts). */
interface Item { readonly bytes: ByteParts; readonly size: number; readonly event: boolean }

export interface OutboxHooks {
  /** The client's socket is gone (ECONNREFUSED, ENOENT...): stop sending to it. */
  gone(errno: string): void;
  /** A datagram the kernel refused for another reason (dropped and counted). */
  dropped(errno: string): void;
  /** Run `fn` once the current burst of work is over. */
  defer(fn: () => void): void;
  /** Milliseconds on a monotonic clock. */
  now(): number;
}

export class Outbox {
  private readonly items: Item[] = [];
  private head = 0;
  private events = 0;
  private replies = 0;
  private replyBytes = 0;
  private bytes = 0;
  private blocked = false;
  private closed = false;
  private scheduled = false;
  /** Times the client's queue was full (EAGAIN) — how often it fell behind. */
  congestions = 0;
  /** Events taken past the bounds because the client kept reading (a burst absorbed). */
  burstEvents = 0;
  /** When the client last took a datagram (or the queue was last empty). */
  private progressAt: number;
  /** Datagrams sent, and BATCH containers among them. */
  datagrams = 0;
  batches = 0;

  constructor(
    private readonly channel: ClientChannel, private readonly limits: OutboxLimits, private readonly hooks: OutboxHooks,
    /** Pack into BATCH containers (the client said HELLO with version 2). */
    readonly batch = false,
  ) {
    this.progressAt = hooks.now();
  }

  /** The channel takes datagrams again. */
  writable(): void {
    this.blocked = false;
    this.flush();
  }

  get depth(): number { return this.items.length - this.head; }
  get queuedBytes(): number { return this.bytes; }

  /** Why the last event() refused (the client is out): it read nothing for stallMs while over
   *  the bounds, or its queue would have passed twice them. */
  refusedFor: 'stalled' | 'burst' | undefined;

  /** Queue an event (all its datagrams, or none); false when the client is out (OutboxLimits).
   *  A datagram given as parts (a large message behind its header) goes now when nothing waits
   *  before it; else it waits as keptParts() has it. Nobody writes a payload's bytes again
   *  (DriverUpcalls.deliver), so waiting parts need not be copies. */
  event(datagrams: readonly ByteParts[]): boolean {
    if (this.closed) return true;
    let size = 0;
    for (const d of datagrams) size += bytePartsLength(d);
    const events = this.events + datagrams.length, bytes = this.bytes + size;
    // One message larger than the byte bound still passes through an empty queue.
    if (this.events > 0 && (events > this.limits.eventsMax || bytes > this.limits.bytesMax)) {
      if (this.hooks.now() - this.progressAt > this.limits.stallMs) this.refusedFor = 'stalled';
      else if (events > BURST_FACTOR * this.limits.eventsMax || bytes > BURST_FACTOR * this.limits.bytesMax) this.refusedFor = 'burst';
      else this.refusedFor = undefined;
      if (this.refusedFor) return false;
      this.burstEvents++;
    }
    for (const d of datagrams) {
      if (d instanceof Uint8Array) this.push({ bytes: d, size: d.length, event: true });
      else this.pushParts(d);
    }
    return true;
  }

  private pushParts(parts: readonly Uint8Array[]): void {
    if (!this.blocked && this.head === this.items.length) {
      const result = this.sendOne(parts);
      if (result === 'sent') return;
      if (result !== 'again') { this.failed(result); return; }
      this.blocked = true;
      this.congestions++;
    }
    this.push({ bytes: keptParts(parts), size: bytePartsLength(parts), event: true });
  }

  /** Queue a datagram past the limits (the one ENOBUFS error event after an overrun). */
  force(bytes: Uint8Array): void {
    if (!this.closed) this.push({ bytes, size: bytes.length, event: true });
  }

  /** Queue a reply; false (dropped) when REPLIES_QUEUED_MAX replies, or REPLY_BYTES_QUEUED_MAX
   *  bytes of them, already wait. */
  reply(bytes: Uint8Array): boolean {
    if (this.closed) return true;
    if (this.replies >= REPLIES_QUEUED_MAX || this.replyBytes + bytes.length > REPLY_BYTES_QUEUED_MAX) return false;
    this.push({ bytes, size: bytes.length, event: false });
    return true;
  }

  /** Send what the client's socket still takes (the CLOSE reply, a last error event), then close. */
  close(): void {
    if (this.closed) return;
    if (!this.blocked) this.flush();
    this.closed = true;
    this.items.length = 0;
    this.head = 0;
    try { this.channel.close(); } catch { /* already closed by the kernel side */ }
  }

  private push(item: Item): void {
    this.items.push(item);
    this.bytes += item.size;
    if (item.event) this.events++; else { this.replies++; this.replyBytes += item.size; }
    if (this.blocked) return;
    // A full container's worth, or half the queue, goes now: the burst need not end first.
    if (!this.batch || this.bytes >= DATAGRAM_MAX - BATCH_HEADER_BYTES || this.depth * 2 >= this.limits.eventsMax) {
      this.flush();
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    this.hooks.defer(() => { this.scheduled = false; this.flush(); });
  }

  private flush(): void {
    while (!this.closed && !this.blocked && this.head < this.items.length) {
      const n = this.batch ? this.fitting() : 1;
      const result = this.sendOne(n === 1 ? this.items[this.head].bytes : this.pack(n));
      if (result === 'again') { this.blocked = true; this.congestions++; return; }
      for (let i = 0; i < n; i++) this.shift(this.items[this.head]);
      if (result !== 'sent') this.failed(result);
    }
    if (this.head === this.items.length) { this.items.length = 0; this.head = 0; this.progressAt = this.hooks.now(); }
    else if (this.head > 1024 && this.head * 2 > this.items.length) { this.items.splice(0, this.head); this.head = 0; }
  }

  private sendOne(bytes: ByteParts): 'sent' | 'again' | string {
    const result = this.channel.send(bytes);
    if (result === 'sent') { this.datagrams++; this.progressAt = this.hooks.now(); }
    return result;
  }

  /** How many queued datagrams from the head fit one container (at least 1: a big one, or one
   *  in parts, goes alone). */
  private fitting(): number {
    let size = BATCH_HEADER_BYTES, n = 0;
    for (let i = this.head; i < this.items.length && n < 0xffff; i++, n++) {
      const item = this.items[i];
      size += BATCH_ITEM_OVERHEAD + item.size;
      if (size > DATAGRAM_MAX || !(item.bytes instanceof Uint8Array)) break;
    }
    return Math.max(n, 1);
  }

  /** The next `n` queued datagrams as one BATCH container (a view of the shared scratch buffer);
   *  fitting() has them all single arrays. */
  private pack(n: number): Uint8Array {
    this.batches++;
    return writeBatch(scratch, n, (i) => this.items[this.head + i].bytes as Uint8Array);
  }

  private shift(item: Item): void {
    this.head++;
    this.bytes -= item.size;
    if (item.event) this.events--; else { this.replies--; this.replyBytes -= item.size; }
  }

  private failed(errno: string): void {
    if (errno === 'ECONNREFUSED' || errno === 'ENOENT' || errno === 'ENOTCONN' || errno === 'EPIPE') {
      this.blocked = true; // nothing more will get through; the owner closes us
      this.hooks.gone(errno);
    } else {
      this.hooks.dropped(errno);
    }
  }
}

/** A part below this is small: it is copied to be kept (a header, or a fragment's few bytes of a
 *  frame or of a pool block that the copy need not keep alive). */
const SMALL_PART_BYTES = 4096;

/**
 * A large datagram's parts to keep queued. The payload's parts are views of the driver's frames
 * (or of the client's datagrams), which nobody writes again: the large ones are kept as they are
 * when together they fill at least half of the memory they keep alive (each distinct buffer
 * counted once), and the small ones copied, so a queue's real memory stays within about twice
 * the bytes it counts; otherwise the datagram is joined into bytes of its own.
 */
export function keptParts(parts: readonly Uint8Array[]): ByteParts {
  let bytes = 0, held = 0;
  const buffers: ArrayBufferLike[] = [];
  for (const p of parts) {
    if (p.length < SMALL_PART_BYTES) continue;
    bytes += p.length;
    if (buffers.includes(p.buffer)) continue;
    buffers.push(p.buffer);
    held += p.buffer.byteLength;
  }
  if (bytes * 2 < held) return concatBytes(parts);
  return parts.map((p) => (p.length < SMALL_PART_BYTES ? copyBytes(p) : p));
}
