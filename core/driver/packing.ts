// Packing and fragmentation, shared by the drivers (docs/TOTEM.md, "Flow control, packing and
// fragmentation"): many small application messages share one frame, and a message larger than a
// frame is cut into fragments that the receivers reassemble per sender. Pure: no I/O.
//
// Frame layout (big-endian):
//   u8  version (FRAME_VERSION)
//   u8  flags   (bit 0: some entry asked for safe order)
//   u16 entry count (>= 1)
//   entries, each:
//     u8  kind (bits 0-1: 0 whole, 1 first fragment, 2 middle fragment, 3 last fragment)
//         | order << 2 (0 fifo, 1 agreed, 2 safe)
//     u32 length of the bytes that follow in this entry
//     u32 total message length            (first fragments only)
//     bytes
import { ClusterError, assert, eagain } from '../api/errors.ts';
import type { DriverUpcalls, MessageBytes, Order } from './types.ts';
import { dropParts, hold, holdParts } from '../wire/lease.ts';
import { allocApartToFill, allocBytesToFill, allocOwned, allocOwnedToFill, concatBytes, copyInto, readU32, viewOf, type ByteParts } from '../wire/bytes.ts';

export const FRAME_VERSION = 1;
export const FRAME_OVERHEAD = 4;
export const ENTRY_OVERHEAD = 5;
const FIRST_EXTRA = 4;
/** A fragment smaller than this is not started at the tail of a frame; it waits for the next. */
const FRAGMENT_MIN = 64;

const enum Kind { Whole = 0, First = 1, Middle = 2, Last = 3 }
const ORDERS: readonly Order[] = ['fifo', 'agreed', 'safe'];
const ORDER_CODE: Readonly<Record<Order, number>> = { fifo: 0, agreed: 1, safe: 2 };

export interface PackerOptions {
  /** Bytes of one frame (the driver's payload room in a datagram). */
  readonly frameSizeMax: number;
  readonly messageSizeMax: number;
  readonly queueMessagesMax: number;
  readonly queueBytesMax: number;
  /** Bytes left unwritten in front of every frame, in its buffer, for the headers of the datagram
   *  it becomes (the driver's and its host's: DriverHost.transmit's `reserved`). Default 0. */
  readonly headroom?: number;
  /** Frames of whole messages that wait long in the queue (told by the clock nextFrame() is
   *  given) are filled in buffers of the queue's own and copied out when taken (default true).
   *  False for a host that encrypts each datagram into a new one (DriverCommon.headroom 0): that
   *  is the second copy there, and frames go as they are. */
  readonly copyOut?: boolean;
}

/** A message that does not fit a frame whole: kept as it came (views, no copy) and cut into
 *  fragments at the token, as frames are asked for. */
class Pending {
  /** Bytes of the message already put into frames (fragmentation in progress when > 0). */
  offset = 0;
  /** Where `offset` is: the part, and how much of it is in frames. */
  part = 0;
  partOffset = 0;
  constructor(
    /** The message (MessageBytes), never written: the driver's since multicast() returned. */
    readonly parts: readonly Uint8Array[],
    readonly length: number,
    readonly order: number,
  ) {}
}

/** Whole messages written into a frame as they are pushed. The frame is `buf`'s bytes from the
 *  headroom on, `used` of them written; its header is written when it is taken. */
class Packed {
  readonly view: DataView;
  used = FRAME_OVERHEAD;
  count = 0;
  /** Payload bytes of its messages (the queue's byte bound counts these). */
  bytes = 0;
  safe = false;
  constructor(
    readonly buf: Uint8Array,
    /** `buf` is one of the queue's own: the frame is copied out when taken and `buf` filled again. */
    readonly staged: boolean,
    /** When the frame was opened: the clock of the last nextFrame() given one (a visit's), which
     *  may be up to a visit early. */
    readonly openedAt: number,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
}

export interface Frame {
  /** The frame, with PackerOptions.headroom unwritten bytes in front of it in `bytes.buffer`:
   *  the datagram's headers go there. */
  readonly bytes: Uint8Array;
  /** Some message or fragment in the frame asked for safe order. */
  readonly safe: boolean;
  /** Entries (whole messages or fragments) in the frame. */
  readonly messages: number;
}

/** A frame that waited in the queue this long (ms) or more, from when it was opened to when it was
 *  taken, makes the next frames staged (copied out when taken): V8 scavenges every few tens of
 *  milliseconds under load, and a frame alive at two of them is moved to its old generation. */
const COPY_OUT_WAIT_MS = 10;
/** Free frame buffers a Packer keeps, in bytes: a queue of 2048 frames at an MTU of 1500 (3 MB)
 *  is filled again without new buffers; at a large MTU fewer are kept. */
const STAGING_KEEP_BYTES = 4 * 1024 * 1024;

/** What a taken item's slot holds until the queue is compacted (its bytes are let go). */
const SENT = new Pending([], 0, 0);

/**
 * The send side: a bounded queue of application messages, drained into frames.
 *
 * A message that fits a frame whole is written into the frame being filled when it is pushed:
 * the queue holds a few frames, not an object and the caller's arrays per message, and those die
 * young. Under a load that keeps frames waiting in the queue for COPY_OUT_WAIT_MS or more, long
 * enough for V8 to move them to its old generation, where their memory waited for a full
 * collection (the daemons peaked 10 to 20 MB higher for it under small messages from every node:
 * docs/BENCH.md), frames are staged (copyOut): filled in buffers of the queue's own, copied out at
 * the token into bytes of their own size that live only until every member has them, and the
 * buffers filled again. Frames that go soon after they were opened are not: the copy is on the
 * token's path, and there it would buy nothing (a lone sender's frames wait about a
 * millisecond). Without a key that copy is the second of a message's bytes on the way out (the
 * first: into the frame); with one, the encryption is the second and frames go as they are. A
 * larger message waits as it came and is cut into fragments at the token (their one copy); a
 * frame of whole messages is closed when one comes, so the two never share a frame.
 */
export class Packer {
  private readonly opts: PackerOptions;
  private readonly headroom: number;
  private queue: (Pending | Packed)[] = [];
  private head = 0;
  private messages = 0;
  private bytes = 0;
  /** The frame whole messages go into: the queue's last item while it takes more. */
  private open: Packed | undefined;
  /** The queue's own frame buffers free to be filled again, at most stagingKeep of them. */
  private staging: Uint8Array[] = [];
  private readonly stagingKeep: number;
  private readonly copyOut: boolean;
  /** The clock nextFrame() was last given (NaN: never; a frame opened before it waited no time
   *  that can be told). */
  private seenAt = NaN;
  /** The last frame taken with a clock had waited COPY_OUT_WAIT_MS or more: new frames are
   *  staged. */
  private waitLong = false;
  /** The buffer of a frame that was copied out because it was mostly empty (not a staged one):
   *  the next unstaged frame's. */
  private spare: Uint8Array | undefined;
  /** push() ran since the last releaseIdle(). */
  private pushedSinceIdleCheck = false;

  /** Smallest message refused since the queue was last at its low mark; while set, the queue is closed. */
  private blocked: number | undefined;
  /** A push was refused and takeWritable() has not said so since. */
  private refusedUncalled = false;

  constructor(opts: PackerOptions) {
    assert(opts.frameSizeMax >= FRAME_OVERHEAD + ENTRY_OVERHEAD + FIRST_EXTRA + FRAGMENT_MIN,
      `frameSizeMax ${opts.frameSizeMax} too small to carry a fragment`);
    assert(opts.queueMessagesMax >= 1 && opts.queueBytesMax >= 1, 'queue limits must be positive');
    this.opts = opts;
    this.headroom = opts.headroom ?? 0;
    this.stagingKeep = Math.max(2, Math.floor(STAGING_KEEP_BYTES / (this.headroom + opts.frameSizeMax)));
    this.copyOut = opts.copyOut ?? true;
  }

  get queuedMessages(): number {
    return this.messages;
  }

  /** The largest message push() writes into a frame at once (and keeps nothing of). */
  get wholeMax(): number {
    return this.opts.frameSizeMax - FRAME_OVERHEAD - ENTRY_OVERHEAD;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  /** Would a message of `size` bytes fit, and the smallest one refused while the queue is closed? */
  canPush(size: number): boolean {
    return this.roomFor(Math.max(size, this.blocked ?? 0));
  }

  private roomFor(size: number): boolean {
    return size <= this.opts.messageSizeMax
      && this.messages < this.opts.queueMessagesMax
      && (this.bytes + size <= this.opts.queueBytesMax || this.messages === 0);
  }

  /**
   * The low mark: a message of `size` (by default the smallest refused one) fits with the queue
   * at most half full. Refused senders are called back there, not at the first free slot: a
   * pipelining sender resends everything it had in flight, so room for a few messages meant
   * most of a resend refused again (3 of 4 sends at 1300 B on 3 nodes before this low mark).
   */
  canResume(size = this.blocked ?? 0): boolean {
    return size <= this.opts.messageSizeMax
      && this.messages <= this.opts.queueMessagesMax / 2
      && (this.bytes + size <= this.opts.queueBytesMax / 2 || this.messages === 0);
  }

  /**
   * Queues a message. One that fits a frame whole is copied into a frame now; a larger one is
   * kept without a copy until its fragments are in frames, and nobody writes its bytes
   * (Driver.multicast). Throws EMSGSIZE, or EAGAIN when the queue is full. Once a message was
   * refused, every message is, until the queue is back at its low mark (checked as frames
   * leave): the refused senders, called back there (takeWritable), are not starved by one that
   * kept finding a free slot in between.
   */
  push(message: MessageBytes, order: Order): void {
    let length = 0;
    if (message instanceof Uint8Array) length = message.length;
    else for (const part of message) length += part.length;
    if (length > this.opts.messageSizeMax) {
      throw new ClusterError('EMSGSIZE',
        `message of ${length} bytes exceeds the limit of ${this.opts.messageSizeMax}; split it`);
    }
    if (this.blocked !== undefined || !this.roomFor(length)) {
      this.blocked = Math.min(this.blocked ?? Infinity, length);
      this.refusedUncalled = true;
      throw eagain('send queue full; retry once the driver reports it writable');
    }
    const code = ORDER_CODE[order];
    if (length <= this.wholeMax) { // the driver's promise (Driver.multicastCopiesUpTo) is this test
      let f = this.open;
      if (!f || f.used + ENTRY_OVERHEAD + length > this.opts.frameSizeMax || f.count === 0xffff) {
        // Not zeroed: a frame is taken only as far as it is written.
        const staged = this.copyOut && this.waitLong;
        const buf = staged ? this.staging.pop() ?? this.stagingBuffer() : this.spare ?? allocOwnedToFill(this.headroom + this.opts.frameSizeMax);
        if (!staged) this.spare = undefined;
        f = this.open = new Packed(buf, staged, this.seenAt);
        this.queue.push(f);
      }
      const at = this.headroom + f.used;
      f.buf[at] = Kind.Whole | (code << 2);
      f.view.setUint32(at + 1, length);
      writeMessage(message, f.buf, at + ENTRY_OVERHEAD);
      f.used += ENTRY_OVERHEAD + length;
      f.count++;
      f.bytes += length;
      if (code === ORDER_CODE.safe) f.safe = true;
    } else {
      this.open = undefined;
      const pending = new Pending(message instanceof Uint8Array ? [message] : message, length, code);
      holdParts(pending.parts); // kept past this call, until its last fragment is cut (core/wire/lease.ts)
      this.queue.push(pending);
    }
    this.messages++;
    this.bytes += length;
    this.pushedSinceIdleCheck = true;
  }

  /** A new frame buffer of the queue's own (headroom + frameSizeMax bytes), with memory of its own:
   *  it lives on in the free list, so it is kept out of the shared slab of short-lived arrays. */
  private stagingBuffer(): Uint8Array {
    return allocApartToFill(this.headroom + this.opts.frameSizeMax);
  }

  /**
   * Called now and then by the driver while its ring is idle: when the queue is empty and nothing
   * was pushed since the last call, the free frame buffers are let go (the next load makes new
   * ones), so an idle node does not keep the most a load ever queued.
   */
  releaseIdle(): void {
    const pushed = this.pushedSinceIdleCheck;
    this.pushedSinceIdleCheck = false;
    if (pushed || this.messages > 0 || this.staging.length === 0) return;
    this.staging = [];
  }

  /** Frame buffers free to be filled (for tests). */
  get stagingFree(): number {
    return this.staging.length;
  }

  /** True once per refusal episode, when refused senders should be told to come back (the
   *  driver's writable()): someone was refused since the last call and the low mark is reached. */
  takeWritable(): boolean {
    if (!this.refusedUncalled || !this.canResume()) return false;
    this.refusedUncalled = false;
    return true;
  }

  /**
   * A new ring must not continue a message begun on the old one (totem's EVS: every member
   * delivers a message in one configuration): when frames of the head message were taken and
   * some of it is left, it starts again from its first byte. True when it did.
   */
  rewind(): boolean {
    const p = this.queue[this.head];
    if (this.messages === 0 || !(p instanceof Pending) || p.offset === 0) return false;
    p.offset = 0;
    p.part = 0;
    p.partOffset = 0;
    return true;
  }

  /** Drops everything queued (e.g. the driver left the cluster). */
  clear(): void {
    for (let i = this.head; i < this.queue.length; i++) {
      const item = this.queue[i];
      if (item instanceof Packed && item.staged && this.staging.length < this.stagingKeep) this.staging.push(item.buf);
      if (item instanceof Pending) dropParts(item.parts);
    }
    this.queue = [];
    this.head = 0;
    this.messages = 0;
    this.bytes = 0;
    this.open = undefined;
    this.blocked = undefined;
    this.refusedUncalled = false;
  }

  /** The next frame from the queue head, or undefined when the queue is empty. `now`: the driver's
   *  clock, read once for its visit or its pump (the Packer reads none), to tell how long frames
   *  of whole messages waited; without it nothing is told, and what was told stands. */
  nextFrame(now?: number): Frame | undefined {
    if (now !== undefined) this.seenAt = now;
    if (this.messages === 0) return undefined;
    const item = this.queue[this.head];
    const frame = item instanceof Packed ? this.takePacked(item, now) : this.cut();
    if (this.blocked !== undefined && this.canResume(this.blocked)) this.blocked = undefined; // open again
    return frame;
  }

  /** A frame of whole messages, closed. A staged one, or one mostly empty, is copied out into bytes
   *  of its own size (with the headroom in front: the frame may be kept until every member has it)
   *  and its buffer filled again; any other goes with its buffer. */
  private takePacked(f: Packed, now: number | undefined): Frame {
    if (f === this.open) this.open = undefined;
    this.pop();
    this.messages -= f.count;
    this.bytes -= f.bytes;
    const h = this.headroom;
    writeFrameHeader(f.buf, h, f.safe, f.count);
    if (now !== undefined) this.waitLong = now - f.openedAt >= COPY_OUT_WAIT_MS;
    if (!f.staged && f.used * 2 >= this.opts.frameSizeMax) return { bytes: viewOf(f.buf, h, h + f.used), safe: f.safe, messages: f.count };
    // Owned at any size, not a slice of the shared slab: the ring log that keeps the frame
    // releases it once every member has it, where a slice waited for V8 (a lone sender's every
    // small frame is one).
    const out = viewOf(allocOwned(h + f.used), h);
    copyInto(out, viewOf(f.buf, h, h + f.used), 0);
    if (!f.staged) this.spare = f.buf;
    else if (this.staging.length < this.stagingKeep) this.staging.push(f.buf);
    return { bytes: out, safe: f.safe, messages: f.count };
  }

  /** The next frame of fragments of the large messages at the head. */
  private cut(): Frame {
    const plan = this.plan();
    assert(plan.length > 0, 'a queue with a large message at its head always yields an entry');
    let size = FRAME_OVERHEAD;
    for (const e of plan) size += ENTRY_OVERHEAD + (e.kind === Kind.First ? FIRST_EXTRA : 0) + e.length;
    // Every byte of the frame is written below (its size is the sum of what is); the room in
    // front is written by whoever sends it, or never sent.
    const out = allocOwnedToFill(this.headroom + size).subarray(this.headroom);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    let safe = false;
    let at = FRAME_OVERHEAD;
    for (const e of plan) {
      const p = e.pending;
      safe ||= p.order === ORDER_CODE.safe;
      out[at] = e.kind | (p.order << 2);
      view.setUint32(at + 1, e.length);
      at += ENTRY_OVERHEAD;
      if (e.kind === Kind.First) {
        view.setUint32(at, p.length);
        at += FIRST_EXTRA;
      }
      writePending(p, out, at, e.length);
      at += e.length;
      if (p.offset === p.length) {
        this.pop();
        this.messages--;
        this.bytes -= p.length;
        dropParts(p.parts); // every byte is in frames now
      }
    }
    writeFrameHeader(out, 0, safe, plan.length);
    return { bytes: out, safe, messages: plan.length };
  }

  /** Decides which entries the next frame of fragments carries, without changing the queue: the
   *  large messages from the head on, up to the first frame of whole messages. */
  private plan(): { pending: Pending; kind: Kind; length: number }[] {
    const plan: { pending: Pending; kind: Kind; length: number }[] = [];
    let room = this.opts.frameSizeMax - FRAME_OVERHEAD;
    for (let i = this.head; i < this.queue.length && plan.length < 0xffff; i++) {
      const p = this.queue[i];
      if (!(p instanceof Pending)) break;
      const remaining = p.length - p.offset;
      if (p.offset > 0) {
        const length = Math.min(remaining, room - ENTRY_OVERHEAD);
        plan.push({ pending: p, kind: length === remaining ? Kind.Last : Kind.Middle, length });
        room -= ENTRY_OVERHEAD + length;
        if (length < remaining) break;
        continue;
      }
      // It does not fit an empty frame whole (push() wrote such ones into frames): it starts
      // fragmenting here if a useful fragment still fits.
      const firstRoom = room - ENTRY_OVERHEAD - FIRST_EXTRA;
      if (firstRoom < FRAGMENT_MIN) break;
      plan.push({ pending: p, kind: Kind.First, length: firstRoom });
      break;
    }
    return plan;
  }

  /** The head item is taken: let go of it at once. Entries behind the head would otherwise keep
   *  up to 1024 sent messages' bytes alive (1 GiB of 1 MiB messages) until the next compaction. */
  private pop(): void {
    this.queue[this.head] = SENT;
    this.head++;
    if (this.head > 64 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}

/** The frame's header at `out[at]`, once its entries are written. */
function writeFrameHeader(out: Uint8Array, at: number, safe: boolean, count: number): void {
  out[at] = FRAME_VERSION;
  out[at + 1] = safe ? 1 : 0;
  out[at + 2] = count >> 8;
  out[at + 3] = count & 0xff;
}

/** Writes a whole message at `out[at]`, across its parts. */
function writeMessage(message: MessageBytes, out: Uint8Array, at: number): void {
  if (message instanceof Uint8Array) {
    copyInto(out, message, at);
    return;
  }
  for (const part of message) {
    copyInto(out, part, at);
    at += part.length;
  }
}

/** Writes the next `n` bytes of a queued message at `out[at]`, across its parts: the one copy. */
function writePending(p: Pending, out: Uint8Array, at: number, n: number): void {
  p.offset += n;
  while (n > 0) {
    const part = p.parts[p.part];
    const take = Math.min(n, part.length - p.partOffset);
    copyInto(out, take === part.length ? part : viewOf(part, p.partOffset, p.partOffset + take), at);
    at += take;
    n -= take;
    p.partOffset += take;
    if (p.partOffset === part.length) {
      p.part++;
      p.partOffset = 0;
    }
  }
}

export interface ReassemblerOptions {
  readonly messageSizeMax: number;
  /** Bytes of partial messages across all senders (their fragments are views of their frames,
   *  so those frames stay in memory while a message is partial). */
  readonly partialBytesMax: number;
}

interface Partial {
  /** The fragments so far, views of their frames (not copied), until there are PARTS_KEPT_MAX. */
  readonly parts: Uint8Array[];
  /** Past PARTS_KEPT_MAX fragments, the message's own bytes, filled as they come. */
  buf: Uint8Array | undefined;
  readonly total: number;
  filled: number;
  readonly order: number;
}

/** Fragments a partial message keeps as views at most: a message of small frames (a small MTU)
 *  is copied into bytes of its own past it, so a sender of tiny fragments cannot make a partial
 *  message hold many frames or many views. At MTU 65535 a 1 MiB message is 17 fragments. */
export const PARTS_KEPT_MAX = 64;

export interface ReassemblerStats {
  messages: number;
  fragmentsDiscarded: number;
  partialsDropped: number;
}

/** The receive side: frames in, whole messages out, per sender. */
export class Reassembler {
  private readonly opts: ReassemblerOptions;
  // Each sender's partial message, in a slot kept once made (emptied, not deleted: a Map whose
  // entries come and go once per frame is rehashed in V8's old generation, and the tables it drops
  // keep the frames they pointed at from young collections; see RingLog).
  private readonly partial = new Map<number, { p: Partial | undefined }>();
  private partials = 0;
  private partialBytes = 0;
  readonly counters: ReassemblerStats = { messages: 0, fragmentsDiscarded: 0, partialsDropped: 0 };

  constructor(opts: ReassemblerOptions) {
    this.opts = opts;
  }

  /**
   * Feeds one frame from `sender` (frames of one sender in the order they were built). Emits each
   * complete message in order: a message that came whole as a view of its frame, one that came
   * in fragments as the fragments' views in order (their concatenation is the message; nothing
   * is copied). Either way the bytes are the frames', which nobody writes again (see
   * DriverUpcalls.deliver). With `emitWhole`, a message that came whole goes there instead, as
   * where it lies in the frame (no view made). A malformed frame throws ClusterError EPROTO before
   * anything changes. A gap (a fragment with no matching start, or a new message while one is
   * partial) discards the partial message: never splices two.
   */
  accept(sender: number, frame: Uint8Array, emit: (payload: ByteParts, order: Order) => void,
    emitWhole?: (frame: Uint8Array, start: number, end: number, order: Order) => void): void {
    const count = this.validate(frame);
    // Read again entry by entry (validate() checked every header): no object per entry, which
    // at 100 B was about a tenth of what a receiving daemon allocated per message.
    let at = FRAME_OVERHEAD;
    for (let i = 0; i < count; i++) {
      const kind = (frame[at] & 3) as Kind;
      const code = (frame[at] >> 2) & 0x3f;
      const length = readU32(frame, at + 1);
      at += ENTRY_OVERHEAD;
      let total = length;
      if (kind === Kind.First) { total = readU32(frame, at); at += FIRST_EXTRA; }
      const start = at;
      at += length;
      if ((kind === Kind.Whole || kind === Kind.First) && this.partials > 0) this.discard(sender);
      if (kind === Kind.Whole) {
        this.counters.messages++;
        if (emitWhole) emitWhole(frame, start, at, ORDERS[code]);
        else emit(viewOf(frame, start, at), ORDERS[code]);
        continue;
      }
      const body = viewOf(frame, start, at);
      if (kind === Kind.First) {
        if (this.partialBytes + total > this.opts.partialBytesMax) {
          this.counters.fragmentsDiscarded++;
          continue;
        }
        // Only a message whose every byte arrived is emitted (continueMessage checks that each
        // piece fits and the last one fills it exactly).
        const slot = this.partial.get(sender);
        const p: Partial = { parts: [body], buf: undefined, total, filled: length, order: code };
        hold(body); // a view of the frame kept past this call (core/wire/lease.ts)
        if (slot === undefined) this.partial.set(sender, { p }); else slot.p = p;
        this.partials++;
        this.partialBytes += total;
        continue;
      }
      this.continueMessage(sender, kind, code, body, emit);
    }
  }

  /** A gap in a sender's frames, or the sender gone: its partial message discarded, and its slot
   *  (made again at its next message: this is not per frame). */
  dropSender(sender: number): void {
    this.discard(sender);
    this.partial.delete(sender);
  }

  partialSenders(): number[] {
    const out: number[] = [];
    for (const [sender, slot] of this.partial) if (slot.p !== undefined) out.push(sender);
    return out.sort((a, b) => a - b);
  }

  private continueMessage(sender: number, kind: Kind, code: number, body: Uint8Array,
    emit: (payload: ByteParts, order: Order) => void): void {
    const slot = this.partial.get(sender);
    const p = slot?.p;
    const remaining = p ? p.total - p.filled : 0;
    const fits = kind === Kind.Last ? body.length === remaining : body.length < remaining;
    if (!p || !fits || p.order !== code) {
      this.counters.fragmentsDiscarded++;
      this.discard(sender);
      return;
    }
    if (!p.buf && p.parts.length >= PARTS_KEPT_MAX) {
      // Not zeroed: every byte is written before it is emitted (the last piece fills it exactly).
      p.buf = allocBytesToFill(p.total);
      let at = 0;
      for (const part of p.parts) { p.buf.set(part, at); at += part.length; }
      dropParts(p.parts);
      p.parts.length = 0;
    }
    if (p.buf) p.buf.set(body, p.filled);
    else {
      p.parts.push(body);
      hold(body);
    }
    p.filled += body.length;
    if (kind === Kind.Last) {
      slot!.p = undefined;
      this.partials--;
      this.partialBytes -= p.total;
      this.counters.messages++;
      try {
        emit(p.buf ?? p.parts, ORDERS[p.order]);
      } finally {
        dropParts(p.parts); // none once copied into p.buf
      }
    }
  }

  private discard(sender: number): void {
    const slot = this.partial.get(sender);
    const p = slot?.p;
    if (!p) return;
    slot!.p = undefined;
    this.partials--;
    this.partialBytes -= p.total;
    this.counters.partialsDropped++;
    dropParts(p.parts);
  }

  /** Validates the whole frame first, so a malformed one changes nothing; returns how many
   *  entries it holds. */
  private validate(frame: Uint8Array): number {
    if (frame.length < FRAME_OVERHEAD) malformed(`${frame.length} bytes is shorter than the header`);
    if (frame[0] !== FRAME_VERSION) malformed(`version ${frame[0]}, expected ${FRAME_VERSION}`);
    const count = (frame[2] << 8) | frame[3];
    if (count === 0) malformed('no entries');
    let at = FRAME_OVERHEAD;
    for (let i = 0; i < count; i++) {
      if (at + ENTRY_OVERHEAD > frame.length) malformed(`entry ${i} header past the end`);
      const kind = (frame[at] & 3) as Kind;
      const order = (frame[at] >> 2) & 0x3f;
      if (order >= ORDERS.length) malformed(`entry ${i} has order code ${order}`);
      const length = readU32(frame, at + 1);
      at += ENTRY_OVERHEAD;
      let total = length;
      if (kind === Kind.First) {
        if (at + FIRST_EXTRA > frame.length) malformed(`entry ${i} total past the end`);
        total = readU32(frame, at);
        at += FIRST_EXTRA;
        if (total <= length) malformed(`first fragment of ${length} bytes for a total of ${total}`);
      }
      if (total > this.opts.messageSizeMax) malformed(`message of ${total} bytes over the limit`);
      if (length === 0 && kind !== Kind.Whole) malformed(`entry ${i} is an empty fragment`);
      if (at + length > frame.length) malformed(`entry ${i} body past the end`);
      at += length;
    }
    if (at !== frame.length) malformed(`${frame.length - at} trailing bytes`);
    return count;
  }
}

function malformed(why: string): never {
  throw new ClusterError('EPROTO', `malformed frame: ${why}`);
}

/** A window counted in frames, bounded in bytes: how many frames of `frameBytes` fit in `bytes`,
 *  at least one and at most `max` (totem's window_bytes, cman's window_bytes). */
export function framesWithin(bytes: number, frameBytes: number, max: number): number {
  return Math.min(max, Math.max(1, Math.floor(bytes / frameBytes)));
}

/** Hands up a message that came whole, where it lies in its frame: to deliverAt(), or as a view
 *  to deliver() for a host without. */
export function deliverWhole(up: DriverUpcalls, sender: number, frame: Uint8Array, start: number, end: number, order: Order): void {
  if (up.deliverAt) up.deliverAt(sender, frame, start, end, order);
  else up.deliver(sender, viewOf(frame, start, end), order);
}

/** Hands a message up as it is: whole, or its parts to deliverParts() (joined for a host without). */
export function deliverTo(up: DriverUpcalls, sender: number, payload: ByteParts, order: Order): void {
  if (payload instanceof Uint8Array) up.deliver(sender, payload, order);
  else if (up.deliverParts) up.deliverParts(sender, payload, order);
  else up.deliver(sender, concatBytes(payload), order);
}
