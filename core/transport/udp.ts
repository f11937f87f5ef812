// UDP transport. 'udpu': one socket on node.listen, unicast fan-out to every other configured
// node (works on one host with 127.0.0.N). 'multicast': the same socket sends unicast and the
// group datagrams (TTL 1, loopback on, so nodes on one host hear each other), and a second
// socket bound to the group receives them. A datagram's source address and port map it to a
// node id through the configured node list; anything else is dropped, counted and logged (at
// most one line per 10 s for all unknown sources together: their number is not bounded).
import dgram from 'node:dgram';
import { isIP, isIPv6 } from 'node:net';
import { ClusterError } from '../api/errors.ts';
import type { Endpoint, NodeConfig, NodeEntry } from '../config/types.ts';
import type { DatagramBytes, Transport } from './types.ts';
import { RateLimiter } from './ratelimit.ts';
import { keepShapes } from './shapes.ts';

/** Socket buffer size asked for (the kernel may cap it at net.core.[rw]mem_max). */
export const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** close() waits at most this long for queued sends to leave. */
const CLOSE_DRAIN_MS = 1000;

export interface UdpTransportOptions {
  readonly config: NodeConfig;
  /** Where to report socket errors that are not tied to one send. */
  readonly log?: (level: 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

interface Peer {
  readonly id: number;
  readonly host: string;
  readonly port: number;
}

export async function openUdpTransport(opts: UdpTransportOptions): Promise<Transport> {
  const t = new UdpTransport(opts);
  await t.open();
  return t;
}

class UdpTransport implements Transport {
  private readonly selfId: number;
  private readonly listen: Endpoint;
  private readonly group: Endpoint | undefined;
  private peers: Peer[] = [];
  private byId = new Map<number, Peer>();
  /** address -> port -> node id: no string building per datagram. */
  private sources = new Map<string, Map<number, number>>();
  private readonly type: 'udp4' | 'udp6';
  private sock: dgram.Socket | undefined;
  private groupSock: dgram.Socket | undefined;
  private receiver: ((from: number, bytes: Buffer) => void) | undefined;
  private pending = 0;
  private drained: (() => void) | undefined;
  private closed = false;
  private readonly unknownLog = new RateLimiter<'unknown'>({ now: () => performance.now(), keysMax: 1 });
  private readonly counters: Record<string, number> = {
    sentDatagrams: 0, sentBytes: 0, sendErrors: 0, sendUnknownNode: 0, recvDatagrams: 0, recvBytes: 0,
    droppedUnknownSource: 0, droppedSelf: 0, droppedNoReceiver: 0, socketErrors: 0,
    recvBufferBytes: 0, sendBufferBytes: 0,
  };
  /** One callback for every send: no closure per datagram. */
  private readonly onSent = (err: Error | null): void => {
    this.pending--;
    if (err) this.countSendError(err);
    if (this.pending === 0 && this.drained) this.drained();
  };

  constructor(private readonly opts: UdpTransportOptions) {
    keepShapes();
    const c = opts.config;
    this.selfId = c.node.id;
    this.listen = c.node.listen;
    this.type = isIPv6(this.listen.host) ? 'udp6' : 'udp4';
    this.group = c.cluster.transport === 'multicast' ? c.cluster.multicastAddr : undefined;
    if (c.cluster.transport === 'multicast' && !this.group) {
      throw new ClusterError('EINVAL', `${c.file}: transport "multicast" needs cluster.multicast_addr`);
    }
    const named = [c.node.listen, ...c.cluster.nodes.map((n) => n.addr)].find((e) => !isIP(e.host));
    if (named) throw new ClusterError('EINVAL', `${c.file}: host "${named.host}" is not resolved: resolve host names first (resolveConfig in core/config)`);
    this.setNodes(c.cluster.nodes);
  }

  /** The configured nodes (a reload may change them): whom to send to, and whose datagrams to take. */
  setNodes(nodes: readonly NodeEntry[]): void {
    const named = nodes.find((n) => !isIP(n.addr.host));
    if (named) throw new ClusterError('EINVAL', `node ${named.id}: host "${named.addr.host}" is not resolved`);
    const byId = new Map<number, Peer>();
    const sources = new Map<string, Map<number, number>>();
    for (const n of nodes) {
      byId.set(n.id, { id: n.id, host: n.addr.host, port: n.addr.port });
      let ports = sources.get(n.addr.host);
      if (!ports) sources.set(n.addr.host, (ports = new Map()));
      ports.set(n.addr.port, n.id);
    }
    this.byId = byId;
    this.sources = sources;
    this.peers = [...byId.values()].filter((p) => p.id !== this.selfId);
  }

  async open(): Promise<void> {
    this.sock = await this.bindSocket(this.listen, false);
    this.sizeBuffers(this.sock);
    if (this.group) {
      this.groupSock = await this.bindSocket(this.group, true);
      this.sizeBuffers(this.groupSock);
      try {
        this.groupSock.addMembership(this.group.host, this.listen.host);
        this.sock.setMulticastInterface(this.listen.host);
        this.sock.setMulticastTTL(1);
        this.sock.setMulticastLoopback(true);
      } catch (e) {
        await this.close();
        throw new ClusterError('EINVAL', `cannot join multicast group ${this.group.host} on ${this.listen.host}: ${(e as Error).message}; check the interface supports multicast, or use transport = "udpu"`);
      }
    }
  }

  private bindSocket(at: Endpoint, reuse: boolean): Promise<dgram.Socket> {
    const family = this.type === 'udp6' ? 6 : 4;
    // Every address is an IP literal (config refuses names): answer at once instead of a
    // dns.lookup and a tick per datagram.
    const lookup = (host: string, _opts: unknown, cb: (err: null, address: string, family: number) => void) => cb(null, host, family);
    const sock = dgram.createSocket({ type: this.type, reuseAddr: reuse, lookup: lookup as unknown as dgram.SocketOptions['lookup'] });
    return new Promise((resolve, reject) => {
      const fail = (e: NodeJS.ErrnoException) => {
        sock.close();
        reject(bindError(e, at));
      };
      sock.once('error', fail);
      sock.bind({ address: at.host, port: at.port, exclusive: true }, () => {
        sock.off('error', fail);
        sock.on('error', (e) => this.socketError(e));
        sock.on('message', (msg, rinfo) => this.receive(msg, rinfo));
        resolve(sock);
      });
    });
  }

  /** Best effort: a refused size keeps the kernel default. */
  private sizeBuffers(sock: dgram.Socket): void {
    try {
      sock.setRecvBufferSize(SOCKET_BUFFER_BYTES);
      sock.setSendBufferSize(SOCKET_BUFFER_BYTES);
    } catch {
      // keep the defaults
    }
    try {
      this.counters.recvBufferBytes = Math.max(this.counters.recvBufferBytes, sock.getRecvBufferSize());
      this.counters.sendBufferBytes = Math.max(this.counters.sendBufferBytes, sock.getSendBufferSize());
    } catch {
      // not fatal
    }
  }

  private receive(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const from = this.sources.get(rinfo.address)?.get(rinfo.port);
    if (from === undefined) {
      this.counters.droppedUnknownSource++;
      const suppressed = this.unknownLog.take('unknown');
      if (suppressed !== undefined) {
        this.opts.log?.('warn', `dropped a datagram from ${rinfo.address}:${rinfo.port}, which is no configured node's address and port (cluster.nodes): a node missing from the list, a wrong port, or a stranger`,
          { source: `${rinfo.address}:${rinfo.port}`, bytes: msg.length, suppressed });
      }
      return;
    }
    if (from === this.selfId) {
      this.counters.droppedSelf++; // our own multicast, looped back
      return;
    }
    this.counters.recvDatagrams++;
    this.counters.recvBytes += msg.length;
    if (!this.receiver) {
      this.counters.droppedNoReceiver++;
      return;
    }
    this.receiver(from, msg);
  }

  send(to: number, bytes: DatagramBytes): void {
    const peer = this.byId.get(to);
    if (!peer || to === this.selfId) {
      this.counters.sendUnknownNode++;
      return;
    }
    this.sendTo(bytes, peer.port, peer.host);
  }

  broadcast(bytes: DatagramBytes): void {
    if (this.group) {
      this.sendTo(bytes, this.group.port, this.group.host);
      return;
    }
    for (const p of this.peers) this.sendTo(bytes, p.port, p.host);
  }

  private sendTo(bytes: DatagramBytes, port: number, host: string): void {
    if (this.closed || !this.sock) {
      this.counters.sendErrors++;
      return;
    }
    try {
      // A list of parts goes out as one datagram (sendmsg gathers them).
      this.sock.send(bytes as Uint8Array | Uint8Array[], port, host, this.onSent);
      this.pending++;
      this.counters.sentDatagrams++;
      this.counters.sentBytes += bytes instanceof Uint8Array ? bytes.length : bytes.reduce((n, b) => n + b.length, 0);
    } catch (e) {
      this.countSendError(e as Error);
    }
  }

  private countSendError(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
    this.counters.sendErrors++;
    const key = `sendError_${code}`;
    this.counters[key] = (this.counters[key] ?? 0) + 1;
  }

  private socketError(e: Error): void {
    this.counters.socketErrors++;
    this.opts.log?.('warn', 'udp socket error', { error: e.message, code: (e as NodeJS.ErrnoException).code });
  }

  onDatagram(cb: (from: number, bytes: Buffer) => void): void {
    this.receiver = cb;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pending > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_DRAIN_MS);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    await Promise.all([this.sock, this.groupSock].map((s) => (s ? new Promise<void>((r) => s.close(() => r())) : undefined)));
    this.sock = undefined;
    this.groupSock = undefined;
  }

  stats(): Record<string, number> {
    return { ...this.counters, sendsInFlight: this.pending };
  }
}

function bindError(e: NodeJS.ErrnoException, at: Endpoint): ClusterError {
  const where = `${at.host}:${at.port}`;
  if (e.code === 'EADDRINUSE') return new ClusterError('EADDRINUSE', `cannot listen on ${where}: address in use; is another node already running with this config?`);
  if (e.code === 'EADDRNOTAVAIL') return new ClusterError('EINVAL', `cannot listen on ${where}: no local interface has this address; fix node.listen or this node's entry in cluster.nodes`);
  if (e.code === 'EACCES') return new ClusterError('EACCES', `cannot listen on ${where}: permission denied (ports below 1024 need privileges)`);
  return new ClusterError('EINVAL', `cannot listen on ${where}: ${e.message}`);
}
