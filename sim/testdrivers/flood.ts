// A test driver that multicasts each message once and delivers it on receipt (and to itself at
// once): no ordering, no retransmission, one fixed configuration of every node. It exercises
// the simulator's network and shows what the checker catches in a weak protocol.
import { z } from 'zod';
import { ClusterError } from '../../core/api/errors.ts';
import type { Driver, DriverCommon, DriverEntry, DriverHost, MessageBytes, Order } from '../../core/driver/types.ts';
import { concatBytes } from '../../core/wire/bytes.ts';

const options = z.object({
  /** Send a heartbeat every this many ms (0 = never): gives the simulator timers to run. */
  heartbeat_ms: z.number().int().min(0).default(0),
}).strict();
type Options = z.infer<typeof options>;

const ORDERS: readonly Order[] = ['fifo', 'agreed', 'safe'];
const KIND_DATA = 1;
const KIND_HEARTBEAT = 2;

class FloodDriver implements Driver {
  readonly name = 'flood';
  readonly guarantees = floodDriver.guarantees;
  private nextBeat = Infinity;
  private sent = 0;
  private received = 0;
  constructor(private readonly common: DriverCommon, private readonly opts: Options, private readonly host: DriverHost) {}

  start(): void {
    const ringId = { rep: this.common.nodes[0], seq: 1 };
    this.host.configuration({ kind: 'regular', ringId, members: this.common.nodes, left: [], joined: this.common.nodes });
    if (this.opts.heartbeat_ms > 0) this.nextBeat = this.host.now() + this.opts.heartbeat_ms;
  }

  handleDatagram(from: number, bytes: Uint8Array): void {
    this.received++;
    if (bytes[0] !== KIND_DATA) return;
    this.host.deliver(from, bytes.subarray(2), ORDERS[bytes[1]] ?? 'fifo');
  }

  handleTimeout(): void {
    if (this.host.now() < this.nextBeat) return;
    this.host.transmit('all', Uint8Array.of(KIND_HEARTBEAT));
    this.nextBeat = this.host.now() + this.opts.heartbeat_ms;
  }

  nextDeadline(): number {
    return this.nextBeat;
  }

  multicast(message: MessageBytes, order: Order): void {
    const payload = message instanceof Uint8Array ? message : concatBytes(message);
    if (payload.length + 2 > this.common.mtu) {
      throw new ClusterError('EMSGSIZE', `flood sends one datagram per message: at most ${this.common.mtu - 2} bytes`);
    }
    const frame = new Uint8Array(payload.length + 2);
    frame[0] = KIND_DATA;
    frame[1] = ORDERS.indexOf(order);
    frame.set(payload, 2);
    this.sent++;
    this.host.transmit('all', frame);
    this.host.deliver(this.common.nodeId, payload, order);
  }

  leave(): void {
    this.nextBeat = Infinity;
  }

  stats() {
    return { sent: this.sent, received: this.received };
  }

  checkInvariants(): void {}
}

export const floodDriver: DriverEntry<Options> = {
  name: 'flood',
  guarantees: { fifo: false, agreed: false, safe: false, virtualSynchrony: false },
  summary: 'test only: multicast once, deliver on receipt',
  optionsSchema: options,
  create: (common, opts, host) => new FloodDriver(common, opts, host),
};
