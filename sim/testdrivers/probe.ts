// A test driver for the network model's own tests: it sends what the test tells it to, records
// every datagram it receives, counts its timer ticks and its boots in its durable state.
import { z } from 'zod';
import type { Driver, DriverCommon, DriverEntry, DriverHost } from '../../core/driver/types.ts';

const options = z.object({ tick_ms: z.number().min(0).default(0) }).strict();
type Options = z.infer<typeof options>;

export class ProbeDriver implements Driver {
  readonly name = 'probe';
  readonly guarantees = probeDriver.guarantees;
  /** [from, first byte, time] per datagram received. */
  readonly received: [number, number, number][] = [];
  ticks = 0;
  boots = 0;
  private next = Infinity;
  constructor(private readonly common: DriverCommon, private readonly opts: Options, readonly host: DriverHost) {}

  start(): void {
    const prev = this.host.state.load('boots');
    this.boots = (prev ? prev[0] : 0) + 1;
    this.host.state.save('boots', Uint8Array.of(this.boots));
    if (this.opts.tick_ms > 0) this.next = this.host.now() + this.opts.tick_ms;
  }

  /** Send a one-byte datagram tagged `tag`. */
  ping(to: number | 'all', tag: number): void {
    this.host.transmit(to, Uint8Array.of(tag));
  }

  handleDatagram(from: number, bytes: Uint8Array): void {
    this.received.push([from, bytes[0], this.host.now()]);
  }

  handleTimeout(): void {
    if (this.host.now() < this.next) return;
    this.ticks++;
    this.next += this.opts.tick_ms;
  }

  nextDeadline(): number {
    return this.next;
  }

  multicast(): void {}
  leave(): void {}
  stats() {
    return { received: this.received.length, ticks: this.ticks, nodes: this.common.nodes.length };
  }
  checkInvariants(): void {}
}

export const probeDriver: DriverEntry<Options> = {
  name: 'probe',
  guarantees: { fifo: false, agreed: false, safe: false, virtualSynchrony: false },
  summary: 'test only: records datagrams for network-model tests',
  optionsSchema: options,
  create: (common, opts, host) => new ProbeDriver(common, opts, host),
};
