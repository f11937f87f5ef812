// A test driver with a fixed sequencer (the lowest node id): senders submit to it in per-sender
// order, it stamps a global seq and multicasts; everyone delivers in seq order. Correct agreed
// order on a perfect network, and no recovery at all: under loss it stalls, which the checker
// must report.
import { z } from 'zod';
import { ClusterError, assert } from '../../core/api/errors.ts';
import type { Driver, DriverCommon, DriverEntry, DriverHost, MessageBytes, Order } from '../../core/driver/types.ts';
import { concatBytes } from '../../core/wire/bytes.ts';

const options = z.object({
  /** Most messages held out of order before new ones are dropped (a bounded buffer). */
  reorder_max: z.number().int().min(1).default(4096),
}).strict();
type Options = z.infer<typeof options>;

const SUBMIT = 1;
const ORDERED = 2;
const HEADER = 10; // kind u8, order u8, sender u32, seq u32
const ORDERS: readonly Order[] = ['fifo', 'agreed', 'safe'];

function frame(kind: number, order: Order, sender: number, seq: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + payload.length);
  const v = new DataView(out.buffer);
  v.setUint8(0, kind);
  v.setUint8(1, ORDERS.indexOf(order));
  v.setUint32(2, sender);
  v.setUint32(6, seq);
  out.set(payload, HEADER);
  return out;
}

class SequencerDriver implements Driver {
  readonly name = 'sequencer';
  readonly guarantees = sequencerDriver.guarantees;
  private readonly sequencer: number;
  private submitted = 0;
  /** Sequencer only: next global seq, and per sender the next submit number expected. */
  private nextSeq = 1;
  private readonly nextSubmit = new Map<number, number>();
  private readonly heldSubmits = new Map<string, Uint8Array>();
  private nextDeliver = 1;
  private readonly held = new Map<number, Uint8Array>();
  private dropped = 0;

  constructor(private readonly common: DriverCommon, private readonly opts: Options, private readonly host: DriverHost) {
    this.sequencer = common.nodes[0];
  }

  start(): void {
    this.host.configuration({ kind: 'regular', ringId: { rep: this.sequencer, seq: 1 }, members: this.common.nodes, left: [], joined: this.common.nodes });
  }

  multicast(message: MessageBytes, order: Order): void {
    const payload = message instanceof Uint8Array ? message : concatBytes(message);
    if (order === 'safe') throw new ClusterError('EOPNOTSUPP', 'the sequencer test driver has no safe order; use agreed');
    if (payload.length + HEADER > this.common.mtu) {
      throw new ClusterError('EMSGSIZE', `the sequencer test driver does not fragment: at most ${this.common.mtu - HEADER} bytes`);
    }
    const f = frame(SUBMIT, order, this.common.nodeId, ++this.submitted, payload);
    if (this.common.nodeId === this.sequencer) this.onSubmit(this.common.nodeId, f);
    else this.host.transmit(this.sequencer, f);
  }

  handleDatagram(from: number, bytes: Uint8Array): void {
    if (bytes.length < HEADER) return;
    if (bytes[0] === SUBMIT && this.common.nodeId === this.sequencer) this.onSubmit(from, bytes);
    else if (bytes[0] === ORDERED) this.onOrdered(bytes);
  }

  /** Stamp submits in each sender's order (the network may reorder them). */
  private onSubmit(from: number, bytes: Uint8Array): void {
    const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(6);
    let next = this.nextSubmit.get(from) ?? 1;
    if (n < next) return;
    if (this.heldSubmits.size >= this.opts.reorder_max) { this.dropped++; return; }
    this.heldSubmits.set(`${from}:${n}`, bytes.slice());
    for (let b = this.heldSubmits.get(`${from}:${next}`); b; b = this.heldSubmits.get(`${from}:${next}`)) {
      this.heldSubmits.delete(`${from}:${next}`);
      next++;
      const f = frame(ORDERED, ORDERS[b[1]] ?? 'agreed', from, this.nextSeq++, b.subarray(HEADER));
      this.host.transmit('all', f);
      this.onOrdered(f);
    }
    this.nextSubmit.set(from, next);
  }

  private onOrdered(bytes: Uint8Array): void {
    const v = new DataView(bytes.buffer, bytes.byteOffset);
    const seq = v.getUint32(6);
    if (seq < this.nextDeliver || this.held.has(seq)) return;
    if (this.held.size >= this.opts.reorder_max) { this.dropped++; return; }
    this.held.set(seq, bytes.slice());
    for (let b = this.held.get(this.nextDeliver); b; b = this.held.get(this.nextDeliver)) {
      this.held.delete(this.nextDeliver++);
      const bv = new DataView(b.buffer, b.byteOffset);
      this.host.deliver(bv.getUint32(2), b.subarray(HEADER), ORDERS[b[1]] ?? 'agreed');
    }
  }

  handleTimeout(): void {}
  nextDeadline(): number {
    return Infinity;
  }
  leave(): void {}
  stats() {
    return { submitted: this.submitted, delivered: this.nextDeliver - 1, held: this.held.size, dropped: this.dropped };
  }
  checkInvariants(): void {
    assert(!this.held.has(this.nextDeliver), 'sequencer: a deliverable message is held');
  }
}

export const sequencerDriver: DriverEntry<Options> = {
  name: 'sequencer',
  guarantees: { fifo: true, agreed: true, safe: false, virtualSynchrony: false },
  summary: 'test only: fixed sequencer, agreed order without recovery',
  optionsSchema: options,
  create: (common, opts, host) => new SequencerDriver(common, opts, host),
};
