// The transport interface: datagrams to and from node ids. The simulator's network and the UDP
// transport both fit it; the runtime knows only this.

import type { ByteParts } from '../wire/bytes.ts';

/** One datagram's bytes: an array, or parts the kernel gathers into one datagram (no copy to join them). */
export type DatagramBytes = ByteParts;

export interface Transport {
  /** Queue one datagram to a node. Never throws: errors are counted in stats(). */
  send(to: number, bytes: DatagramBytes): void;
  /** One datagram to every other configured node (unicast fan-out, or one IP multicast). */
  broadcast(bytes: DatagramBytes): void;
  /**
   * The one receiver. `from` is the configured node the source address maps to; datagrams
   * from unknown sources or from this node itself never arrive here. `bytes` is this
   * datagram's own buffer (Node allocates one per datagram), so the receiver may keep it.
   */
  onDatagram(cb: (from: number, bytes: Buffer) => void): void;
  /** Replaces the configured node list (a reload): whom broadcast reaches, whose datagrams
   *  are taken. Optional: a transport without it cannot change the list at run time. */
  setNodes?(nodes: readonly { readonly id: number; readonly addr: { readonly host: string; readonly port: number } }[]): void;
  /** Waits (bounded) for queued sends to leave, then closes the sockets. Idempotent. */
  close(): Promise<void>;
  stats(): Record<string, number>;
}
