// One client's receive queue in the daemon: the datagrams (events and replies) on their way to
// the client's socket, through a channel to it (a unix socket connected to it, in the shell).
// The kernel queue of a unix datagram socket is short (net.unix.max_dgram_qlen), so a client
// that reads slowly makes the send answer 'again': we keep the rest here, bounded in events and
// bytes, and resume when the channel says it is writable. A full queue is the slow-consumer case
// (docs/ARCHITECTURE.md, "Sockets and groups"): the caller removes the socket.
// A version-2 client gets what is queued packed into BATCH containers: the queue is flushed once
// at the end of the current burst (the host's defer, after the runtime's datagram handler), so a
// burst of deliveries costs the client one datagram, not one each, and a lone event waits for nothing.
// While the client's socket takes datagrams, a small one is written into that container as it
// comes (an open container, one of OPEN_CONTAINERS_MAX buffers every outbox shares), so a burst
// keeps no object per datagram; past that many, datagrams wait as items and are packed at the flush.
// Pure: the channel and the deferral are injected.
import {
  BATCH_HEADER_BYTES, BATCH_ITEM_OVERHEAD, DATAGRAM_MAX, STATUS_REPLY_BYTES, encodeStatusReply, messageEventBytes, writeBatchHeader, writeMessageAt,
  writeMessageOf, writeStatusReplyAt,
} from './codec.ts';
import { allocBytesToFill, allocOwnedToFill, bytePartsLength, concatBytes, copyBytes, copyInto, rangeOf, type ByteParts } from '../wire/bytes.ts';
import { anchor, drop, dropParts, hold, holdParts } from '../wire/lease.ts';
import type { Member, MessageEvent } from '../api/types.ts';
import type { Order } from '../driver/types.ts';

/** A datagram channel to one client socket. */
export interface ClientChannel {
  /** Sends one datagram now (given as parts, a large MESSAGE of version 5: the channel gathers
   *  them, so the payload is not copied behind its header): 'sent'; 'again' when the client's
   *  queue is full (the owner is told when it is writable again); otherwise the errno name
   *  (ECONNREFUSED: the socket is gone). */
  send(bytes: ByteParts): 'sent' | 'again' | string;
  close(): void;
}

/** The largest datagram a container can carry as one item: what Outbox.message takes (below
 *  GATHER_BYTES_MIN every message event fits, with a group name of core/groups' length). */
export const CONTAINER_ITEM_MAX = DATAGRAM_MAX - BATCH_HEADER_BYTES - BATCH_ITEM_OVERHEAD;

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

/** What the queue holds: one datagram (one array, a large MESSAGE's parts (see keptParts), or
 *  one not yet encoded (`bytes` null), written straight into the container that carries it: a
 *  small MESSAGE event (`msg`, see message()) or a status-only reply (`op`, `id`, `status`, see
 *  status())), or a BATCH container (`at` > 0: see container()). */
interface Item {
  bytes: ByteParts | null;
  msg: MessageEvent | null;
  /** The bytes of the datagrams it holds, as the bounds count them (a container's header and
   *  item lengths are not counted). */
  size: number;
  /** Events and replies among them (one datagram: one or the other), and the replies' bytes. */
  events: number;
  replies: number;
  replySize: number;
  readonly op: number;
  readonly id: number;
  readonly status: number;
  /** A container: the length written so far, its header included; 0 for one datagram. */
  at: number;
}

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
  /** Queued items not yet encoded: message events (views of the driver's frames) and status replies. */
  private unencoded = 0;
  /** The client's socket is gone, or the queue is closing: nothing more will be sent. */
  private dead = false;

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

  /** Datagrams waiting (those written into containers counted one by one). */
  get depth(): number { return this.events + this.replies; }
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
    if (!this.admits(datagrams.length, size)) return false;
    for (const d of datagrams) {
      if (d instanceof Uint8Array) this.pushBytes(d, true);
      else this.pushParts(d);
    }
    return true;
  }

  /**
   * Queue a message event that goes as one MESSAGE datagram (below GATHER_BYTES_MIN, the same
   * bytes in every version) to a client that takes containers: it is not encoded here but
   * written straight into the container that carries it, so its payload is copied once on its
   * way out. Its `data` is a view of the driver's frames, which nobody writes again
   * (DriverUpcalls.deliver); events still queued when the client's socket is full are written
   * into containers then (and later ones at once), so that a slow client keeps bytes of its own,
   * not frames. As event(), false when the client is out. `size`: messageEventBytes(ev), when the
   * caller has it already.
   */
  message(ev: MessageEvent, size = messageEventBytes(ev)): boolean {
    return this.messageOf(ev.group, ev.sender, ev.order, ev.data, 0, ev.data.length, size, ev);
  }

  /** message() of a message given by its fields, its payload `from[start]` up to `end` (a
   *  frame the driver delivered, which nobody writes again): written into the open container
   *  with no event object and no view of its own; one is made only when it must wait. `size`:
   *  messageBytesOf(group, end - start). */
  messageOf(group: string, sender: Member, order: Order, from: Uint8Array, start: number, end: number, size: number,
    ev?: MessageEvent): boolean {
    if (this.closed || this.dead) return true;
    if (size > CONTAINER_ITEM_MAX) throw new RangeError(`a message event of ${size} bytes goes as parts, not through message()`);
    if (!this.batch) throw new RangeError('message() is for a client that takes containers; give an older one the encoded event (event())');
    if (!this.admits(1, size)) return false;
    const c = this.container(size, true);
    if (c !== undefined) {
      writeMessageOf(c.bytes as Uint8Array, c.at - size, group, sender, order, from, start, end);
      if (!this.blocked) this.queued();
      return true;
    }
    const msg = ev ?? { type: 'message', group, sender, order, data: rangeOf(from, start, end) };
    this.unencoded++;
    this.push({ bytes: null, msg, size, events: 1, replies: 0, replySize: 0, op: 0, id: 0, status: 0, at: 0 });
    return true;
  }

  /** The slow-consumer rule (OutboxLimits) for `count` more events of `size` bytes in all. */
  private admits(count: number, size: number): boolean {
    const events = this.events + count, bytes = this.bytes + size;
    // One message larger than the byte bound still passes through an empty queue.
    if (this.events > 0 && (events > this.limits.eventsMax || bytes > this.limits.bytesMax)) {
      if (this.hooks.now() - this.progressAt > this.limits.stallMs) this.refusedFor = 'stalled';
      else if (events > BURST_FACTOR * this.limits.eventsMax || bytes > BURST_FACTOR * this.limits.bytesMax) this.refusedFor = 'burst';
      else this.refusedFor = undefined;
      if (this.refusedFor) return false;
      this.burstEvents++;
    }
    return true;
  }

  private pushParts(parts: readonly Uint8Array[]): void {
    if (!this.blocked && this.head === this.items.length) {
      const result = this.sendOne(parts);
      if (result === 'sent') return;
      if (result !== 'again') { this.failed(result); return; }
      this.congested();
    }
    this.push(encodedItem(keptParts(parts), bytePartsLength(parts), true));
  }

  /** Queue a datagram past the limits (the one ENOBUFS error event after an overrun). */
  force(bytes: Uint8Array): void {
    if (!this.closed) this.push(encodedItem(bytes, bytes.length, true));
  }

  /** Queue a reply; false (dropped) when REPLIES_QUEUED_MAX replies, or REPLY_BYTES_QUEUED_MAX
   *  bytes of them, already wait. */
  reply(bytes: Uint8Array): boolean {
    if (this.closed) return true;
    if (!this.replyFits(bytes.length)) return false;
    this.pushBytes(bytes, false);
    return true;
  }

  /** One datagram's bytes: copied into the open container when one takes it (see container()),
   *  or queued as they are. */
  private pushBytes(bytes: Uint8Array, event: boolean): void {
    if (this.batch && !this.blocked && bytes.length <= CONTAINER_ITEM_MAX) {
      const c = this.container(bytes.length, event);
      if (c !== undefined) {
        copyInto(c.bytes as Uint8Array, bytes, c.at - bytes.length);
        this.queued();
        return;
      }
    }
    this.push(encodedItem(bytes, bytes.length, event));
  }

  /** Queue a status-only reply (encodeStatusReply's bytes), as reply() does; to a client that
   *  takes containers it is written straight into the container that carries it. */
  status(op: number, id: number, status: number): boolean {
    if (this.closed || this.dead) return true;
    if (!this.replyFits(STATUS_REPLY_BYTES)) return false;
    if (!this.batch) {
      this.push(encodedItem(encodeStatusReply(op, id, status), STATUS_REPLY_BYTES, false));
      return true;
    }
    const c = this.container(STATUS_REPLY_BYTES, false);
    if (c !== undefined) {
      writeStatusReplyAt(c.bytes as Uint8Array, c.at - STATUS_REPLY_BYTES, op, id, status);
      if (!this.blocked) this.queued();
      return true;
    }
    this.unencoded++;
    this.push({ bytes: null, msg: null, size: STATUS_REPLY_BYTES, events: 0, replies: 1, replySize: STATUS_REPLY_BYTES, op, id, status, at: 0 });
    return true;
  }

  private replyFits(size: number): boolean {
    return this.replies < REPLIES_QUEUED_MAX && this.replyBytes + size <= REPLY_BYTES_QUEUED_MAX;
  }

  /** Send what the client's socket still takes (the CLOSE reply, a last error event), then close. */
  close(): void {
    if (this.closed) return;
    this.dead = true; // what a last flush leaves is thrown away: not worth encoding
    if (!this.blocked) this.flush();
    this.closed = true;
    for (let i = this.head; i < this.items.length; i++) {
      letGo(this.items[i]);
      release(this.items[i]);
    }
    this.items.length = 0;
    this.head = 0;
    this.unencoded = 0;
    try { this.channel.close(); } catch { /* already closed by the kernel side */ }
  }

  private push(item: Item): void {
    keep(item);
    this.items.push(item);
    this.bytes += item.size;
    this.events += item.events;
    this.replies += item.replies;
    this.replyBytes += item.replySize;
    if (this.blocked) return;
    if (!this.batch) this.flush(); else this.queued();
  }

  /** Something more waits to go to a client that takes containers, and its socket takes
   *  datagrams: a full container's worth, or half the queue, goes now (the burst need not end
   *  first); otherwise all of it at the end of the burst. */
  private queued(): void {
    if (this.bytes >= DATAGRAM_MAX - BATCH_HEADER_BYTES || this.depth * 2 >= this.limits.eventsMax) {
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
      const result = this.sendOne(n === 1 ? this.alone(this.items[this.head]) : this.pack(n));
      if (result === 'again') { this.congested(); return; }
      for (let i = 0; i < n; i++) this.shift(this.items[this.head]);
      if (result !== 'sent') this.failed(result);
    }
    if (this.head === this.items.length) { this.items.length = 0; this.head = 0; this.progressAt = this.hooks.now(); }
    else if (this.head > 1024 && this.head * 2 > this.items.length) { this.items.splice(0, this.head); this.head = 0; }
  }

  /** The client's socket is full: what waits now may wait long, so it gets bytes of its own.
   *  What waits unencoded (message events, views of the driver's frames, and status replies:
   *  only a version-2 client's) is written, in order, into containers: what the flush would have
   *  sent, now one buffer per container's worth, not one per datagram. */
  private congested(): void {
    this.blocked = true;
    this.congestions++;
    if (this.unencoded === 0 || this.dead) return;
    const waiting = this.items.splice(this.head);
    let c: Item | undefined;
    for (const item of waiting) {
      if (item.bytes !== null) { this.items.push(item); c = undefined; continue; }
      if (c === undefined || !roomFor(c, item.size)) { c = containerItem(); this.items.push(c); }
      const at = slot(c, item.size, item.events > 0); // before c.bytes is read: slot may grow it
      write(c.bytes as Uint8Array, at, item);
      letGo(item);
      item.msg = null;
    }
    this.unencoded = 0;
  }

  /**
   * A version-2 client's next datagram of `size` goes straight into the container at the queue's
   * tail, counted as queued; the caller writes it just before the container's end (`at` - `size`).
   * A new container when there is none or it is full: behind a full socket, one of the queue's own
   * (started small, doubled as it fills); while the socket takes datagrams, an open container, one
   * of the buffers every outbox shares, sent when the burst ends, and undefined when none is free
   * (the caller queues an item, written when it goes). No object per datagram, no second pass.
   */
  private container(size: number, event: boolean): Item | undefined {
    let c = this.items.length > this.head ? this.items[this.items.length - 1] : undefined;
    if (c === undefined || c.at === 0 || !roomFor(c, size)) {
      let open: Uint8Array | undefined;
      if (!this.blocked) {
        open = openBuffer();
        if (open === undefined) return undefined;
      }
      c = containerItem(open); // behind a full socket, undefined: a buffer of the queue's own
      this.items.push(c);
    }
    slot(c, size, event);
    this.bytes += size;
    if (event) this.events++; else { this.replies++; this.replyBytes += size; }
    return c;
  }

  /** An item that goes alone: its bytes (a container's, with its count written), or what it
   *  holds written into the shared scratch buffer. */
  private alone(item: Item): ByteParts {
    if (item.at > 0) {
      const b = item.bytes as Uint8Array;
      // One datagram goes as itself, as it would have without a container.
      if (item.events + item.replies === 1) return b.subarray(BATCH_HEADER_BYTES + BATCH_ITEM_OVERHEAD, item.at);
      writeBatchHeader(b, item.events + item.replies);
      this.batches++;
      return b.subarray(0, item.at);
    }
    if (item.bytes !== null) return item.bytes;
    write(scratch, 0, item);
    return scratch.subarray(0, item.size);
  }

  private sendOne(bytes: ByteParts): 'sent' | 'again' | string {
    const result = this.channel.send(bytes);
    if (result === 'sent') { this.datagrams++; this.progressAt = this.hooks.now(); }
    return result;
  }

  /** How many queued datagrams from the head fit one container (at least 1: a big one, one in
   *  parts, or a container already written, goes alone). */
  private fitting(): number {
    let size = BATCH_HEADER_BYTES, n = 0;
    for (let i = this.head; i < this.items.length && n < 0xffff; i++, n++) {
      const item = this.items[i];
      if (item.at > 0 || (item.bytes !== null && !(item.bytes instanceof Uint8Array))) break;
      size += BATCH_ITEM_OVERHEAD + item.size;
      if (size > DATAGRAM_MAX) break;
    }
    return Math.max(n, 1);
  }

  /** The next `n` queued datagrams as one BATCH container (a view of the shared scratch buffer);
   *  fitting() has them all single arrays or messages to write. */
  private pack(n: number): Uint8Array {
    this.batches++;
    writeBatchHeader(scratch, n);
    let at = BATCH_HEADER_BYTES;
    for (let i = 0; i < n; i++) {
      const item = this.items[this.head + i];
      scratch[at] = item.size >>> 8;
      scratch[at + 1] = item.size & 0xff;
      at += BATCH_ITEM_OVERHEAD;
      if (item.bytes !== null) scratch.set(item.bytes as Uint8Array, at); else write(scratch, at, item);
      at += item.size;
    }
    return scratch.subarray(0, at);
  }

  private shift(item: Item): void {
    this.head++;
    letGo(item);
    if (item.bytes === null) { this.unencoded--; item.msg = null; }
    this.bytes -= item.size;
    this.events -= item.events;
    this.replies -= item.replies;
    this.replyBytes -= item.replySize;
    release(item);
  }

  private failed(errno: string): void {
    if (errno === 'ECONNREFUSED' || errno === 'ENOENT' || errno === 'ENOTCONN' || errno === 'EPIPE') {
      this.blocked = true; // nothing more will get through; the owner closes us
      this.dead = true;
      this.hooks.gone(errno);
    } else {
      this.hooks.dropped(errno);
    }
  }
}

/** An item of bytes. */
function encodedItem(bytes: ByteParts, size: number, event: boolean): Item {
  return { bytes, msg: null, size, events: event ? 1 : 0, replies: event ? 0 : 1, replySize: event ? 0 : size, op: 0, id: 0, status: 0, at: 0 };
}

/** Full-length container buffers sent and free again (sends are synchronous), for the next full
 *  socket: a few, whatever the number of sockets. */
const spares: Uint8Array[] = [];
const SPARES_MAX = 8;
/** A new container's first buffer, doubled as it fills: a socket that fell behind by one reply
 *  does not hold a datagram's length for it (sockets_max of them could be full at once). */
const CONTAINER_FIRST_BYTES = 4096;

/** An empty container, its header written when it goes. */
function containerItem(bytes: Uint8Array = spares.pop() ?? allocBytesToFill(CONTAINER_FIRST_BYTES)): Item {
  return { bytes, msg: null, size: 0, events: 0, replies: 0, replySize: 0, op: 0, id: 0, status: 0, at: BATCH_HEADER_BYTES };
}

/** Keeps a full-length container buffer for the next full socket; false when it is not kept. */
function spareContainer(b: Uint8Array): boolean {
  if (b.length !== DATAGRAM_MAX || spares.length >= SPARES_MAX) return false;
  spares.push(b);
  return true;
}

/** Open containers (Outbox.container, while a socket takes datagrams) at once, over every
 *  outbox: their buffers are made once, of a datagram's full length, and used again after each
 *  send; past this many, an outbox queues items as it did before. */
export const OPEN_CONTAINERS_MAX = 16;
let openArena: ArrayBuffer | undefined;
const openFree: Uint8Array[] = [];

/** A free open container's buffer, or undefined when OPEN_CONTAINERS_MAX are in use. The arena
 *  is made at the first use (its pages resident only once written). */
function openBuffer(): Uint8Array | undefined {
  if (openArena === undefined) {
    openArena = new ArrayBuffer(OPEN_CONTAINERS_MAX * DATAGRAM_MAX);
    for (let i = OPEN_CONTAINERS_MAX - 1; i >= 0; i--) openFree.push(new Uint8Array(openArena, i * DATAGRAM_MAX, DATAGRAM_MAX));
  }
  return openFree.pop();
}

/** Open containers' buffers free now (for tests: every one comes back once sent or closed). */
export function openContainersFree(): number {
  return openArena === undefined ? OPEN_CONTAINERS_MAX : openFree.length;
}

/** An item queued (push(): never a container) keeps views of the driver's frames, or of a
 *  client's datagram: held until it goes (core/wire/lease.ts). */
function keep(item: Item): void {
  if (item.msg !== null) hold(item.msg.data);
  else if (item.bytes !== null) holdParts(item.bytes);
}

/** A queued item sent, written into a container or thrown away: what keep() held is let go. */
function letGo(item: Item): void {
  if (item.at > 0) return; // a container: bytes of its own
  if (item.msg !== null) drop(item.msg.data);
  else if (item.bytes !== null) dropParts(item.bytes);
}

/** A container item sent or thrown away: its buffer back to where it came from. */
function release(item: Item): void {
  if (item.at === 0 || item.bytes === null) return;
  const b = item.bytes as Uint8Array;
  if (b.buffer === openArena) openFree.push(b); else if (!spareContainer(b)) drop(b); // released, if grown
  item.bytes = null;
}

/** Container `c` has room for one more datagram of `size`. */
function roomFor(c: Item, size: number): boolean {
  return c.at + BATCH_ITEM_OVERHEAD + size <= DATAGRAM_MAX && c.events + c.replies < 0xffff;
}

/** One more datagram of `size` in container `c` (roomFor): its buffer grown if need be, its length
 *  written, its counts; returns where its bytes go. */
function slot(c: Item, size: number, event: boolean): number {
  let b = c.bytes as Uint8Array;
  const end = c.at + BATCH_ITEM_OVERHEAD + size;
  if (end > b.length) {
    // Memory of its own past the slab's takes, released once sent (release()) unless kept as a spare.
    const grown = allocOwnedToFill(Math.min(DATAGRAM_MAX, Math.max(2 * b.length, end)));
    anchor(grown);
    grown.set(b.subarray(0, c.at));
    drop(b);
    c.bytes = b = grown;
  }
  b[c.at] = size >>> 8;
  b[c.at + 1] = size & 0xff;
  c.at += BATCH_ITEM_OVERHEAD + size;
  c.size += size;
  if (event) c.events++; else { c.replies++; c.replySize += size; }
  return c.at - size;
}

/** An item not yet encoded, written into `into` at `at` (its `size` bytes). */
function write(into: Uint8Array, at: number, item: Item): void {
  if (item.msg !== null) writeMessageAt(into, at, item.msg);
  else writeStatusReplyAt(into, at, item.op, item.id, item.status);
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
