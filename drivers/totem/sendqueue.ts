// The send side: application messages queued for the token, packed into frames by
// core/driver/packing.ts. It adds one thing the packer lacks: rewinding a message whose
// fragments were cut by a configuration change, so that the whole message is sent again on the
// new ring and every member delivers it in one configuration (EVS properties 1 and 4).
import { Packer, FRAME_OVERHEAD, ENTRY_OVERHEAD, type Frame, type PackerOptions } from '../../core/driver/packing.ts';
import type { MessageBytes, Order } from '../../core/driver/types.ts';

interface Queued { readonly message: MessageBytes; readonly order: Order }
/** A sent message's slot until the mirror is compacted. */
const SENT: Queued = { message: new Uint8Array(0), order: 'agreed' };

export class SendQueue {
  private packer: Packer;
  /** The messages the packer still holds, in order: what a rewind pushes again. */
  private mirror: Queued[] = [];
  private head = 0;
  /** The head message has fragments in frames already built. */
  private inProgress = false;

  constructor(private readonly opts: PackerOptions) {
    this.packer = new Packer(opts);
  }

  get queuedMessages(): number {
    return this.packer.queuedMessages;
  }

  get queuedBytes(): number {
    return this.packer.queuedBytes;
  }

  /** Flow control is the packer's (core/driver/packing.ts): closed after a refusal, open again and
   *  writable at the low mark. */
  canPush(size: number): boolean {
    return this.packer.canPush(size);
  }

  canResume(): boolean {
    return this.packer.canResume();
  }

  takeWritable(): boolean {
    return this.packer.takeWritable();
  }

  /** Throws ClusterError EMSGSIZE or EAGAIN (Packer.push). */
  push(message: MessageBytes, order: Order): void {
    this.packer.push(message, order); // no copy: the packer and the mirror share the caller's bytes
    this.mirror.push({ message, order });
  }

  nextFrame(): Frame | undefined {
    const f = this.packer.nextFrame();
    if (f) this.consume(f.bytes);
    return f;
  }

  /** The new ring must not continue a message begun on the old one: start it again. */
  rewind(): boolean {
    if (!this.inProgress) return false;
    const old = this.packer;
    this.packer = new Packer(this.opts);
    for (let i = this.head; i < this.mirror.length; i++) this.packer.push(this.mirror[i].message, this.mirror[i].order);
    this.packer.carryFlowState(old);
    this.inProgress = false;
    return true;
  }

  clear(): void {
    this.packer.clear();
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
        this.mirror[this.head] = SENT; // its bytes are let go now, not at the next compaction
        this.head++;
        this.inProgress = false;
      } else {
        this.inProgress = true;
      }
    }
    if (this.head > 64 && this.head * 2 > this.mirror.length) {
      this.mirror = this.mirror.slice(this.head);
      this.head = 0;
    }
  }
}
