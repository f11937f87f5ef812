// The send side: application messages queued for the token, packed into frames by
// core/driver/packing.ts. It adds one thing the packer lacks: rewinding a message whose
// fragments were cut by a configuration change, so that the whole message is sent again on the
// new ring and every member delivers it in one configuration (EVS properties 1 and 4).
import { Packer, FRAME_OVERHEAD, ENTRY_OVERHEAD, type Frame, type PackerOptions } from '../../core/driver/packing.ts';
import type { Order } from '../../core/driver/types.ts';
import { eagain, isClusterError } from '../../core/errors.ts';
import { copyBytes } from '../../core/driver/bytes.ts';

interface Queued { readonly payload: Uint8Array; readonly order: Order }

export class SendQueue {
  private packer: Packer;
  /** The messages the packer still holds, in order: what a rewind pushes again. */
  private mirror: Queued[] = [];
  private head = 0;
  /** The head message has fragments in frames already built. */
  private inProgress = false;
  /** Smallest message refused with EAGAIN since the queue drained to its low mark with room for
   *  it: canPush() also wants room for it, and the driver's writable() (on canResume()) comes when
   *  the refused send fits in a half-empty queue, not at the first free byte — else every
   *  writable() made a sender resend what it had in flight only to be refused again. */
  private blockedSize: number | undefined;

  constructor(private readonly opts: PackerOptions) {
    this.packer = new Packer(opts);
  }

  get queuedMessages(): number {
    return this.packer.queuedMessages;
  }

  get queuedBytes(): number {
    return this.packer.queuedBytes;
  }

  /** Would a message of `size` bytes fit, and the smallest one refused since room last freed for it? */
  canPush(size: number): boolean {
    return this.packer.canPush(Math.max(size, this.blockedSize ?? 0));
  }

  /** Time to tell refused senders to come back: the packer's low mark, for the smallest refused message. */
  canResume(): boolean {
    return this.packer.canResume(this.blockedSize ?? 0);
  }

  /** Throws ClusterError EMSGSIZE or EAGAIN. Once a message was refused, every message is,
   *  until the queue is back at its low mark (canResume): the refused senders, called back
   *  there, are not starved by one that kept finding a free slot in between. */
  push(payload: Uint8Array, order: Order): void {
    if (this.blockedSize !== undefined && payload.length <= this.opts.messageSizeMax) {
      this.blockedSize = Math.min(this.blockedSize, payload.length);
      throw eagain('send queue full; retry once the driver reports it writable');
    }
    const own = copyBytes(payload); // one copy, shared by the packer and the mirror (neither writes it)
    try {
      this.packer.push(own, order, true);
    } catch (e) {
      if (isClusterError(e, 'EAGAIN')) this.blockedSize = Math.min(this.blockedSize ?? Infinity, payload.length);
      throw e;
    }
    this.mirror.push({ payload: own, order });
  }

  nextFrame(): Frame | undefined {
    const f = this.packer.nextFrame();
    if (f) this.consume(f.bytes);
    if (this.blockedSize !== undefined && this.packer.canResume(this.blockedSize)) this.blockedSize = undefined;
    return f;
  }

  /** The new ring must not continue a message begun on the old one: start it again. */
  rewind(): boolean {
    if (!this.inProgress) return false;
    this.packer = new Packer(this.opts);
    for (let i = this.head; i < this.mirror.length; i++) this.packer.push(this.mirror[i].payload, this.mirror[i].order, true);
    this.inProgress = false;
    return true;
  }

  clear(): void {
    this.packer.clear();
    this.blockedSize = undefined;
    this.mirror = [];
    this.head = 0;
    this.inProgress = false;
  }

  /** Walks the frame's entries: whole messages and last fragments finish a queued message. */
  private consume(frame: Uint8Array): void {
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const count = view.getUint16(2);
    let at = FRAME_OVERHEAD;
    for (let i = 0; i < count; i++) {
      const kind = frame[at] & 3;
      const length = view.getUint32(at + 1);
      at += ENTRY_OVERHEAD + (kind === 1 ? 4 : 0) + length;
      if (kind === 0 || kind === 3) {
        this.head++;
        this.inProgress = false;
      } else {
        this.inProgress = true;
      }
    }
    if (this.head > 1024 && this.head * 2 > this.mirror.length) {
      this.mirror = this.mirror.slice(this.head);
      this.head = 0;
    }
  }
}
