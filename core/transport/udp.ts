// UDP transport. 'udpu': one socket on node.listen, unicast fan-out to every other configured
// node (works on one host with 127.0.0.N). 'multicast': the same socket sends unicast and the
// group datagrams (TTL 1, loopback on, so nodes on one host hear each other), and a second
// socket bound to the group receives them. A datagram's source address and port map it to a
// node id through the configured node list; anything else is dropped, counted and logged (at
// most one line per 10 s for all unknown sources together: their number is not bounded).
// Two implementations of the sockets behind one face (UdpIo): the native helper's (core/native:
// each datagram in a buffer of its own size, its source a number, sends synchronous) and, where
// the helper was not built, Node's dgram. AFCLUSTER_UDP=dgram in the environment picks dgram's.
import dgram from 'node:dgram';
import { isIP, isIPv6 } from 'node:net';
import { constants, networkInterfaces } from 'node:os';
import { ClusterError } from '../api/errors.ts';
import type { Endpoint, NodeConfig, NodeEntry } from '../config/types.ts';
import { errnoName, loadNative, type NativeHandle, type NativeUdpSockets, type UdpSourceKey } from '../native/index.ts';
import { bytePartsLength } from '../wire/bytes.ts';
import { dropParts, holdParts, own } from '../wire/lease.ts';
import type { DatagramBytes, Transport } from './types.ts';
import { RateLimiter } from './ratelimit.ts';
import { interfaceOf } from './mtu.ts';
import { keepShapes } from './shapes.ts';

/** Socket buffer size asked for (the kernel may cap it at net.core.[rw]mem_max). */
export const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** close() waits at most this long for queued sends to leave. */
const CLOSE_DRAIN_MS = 1000;
/** The most bytes the native sockets keep queued behind a full send buffer; past it a datagram
 *  is dropped and counted (sendError_EAGAIN), as the network would drop it. Node's dgram queues
 *  without a bound. */
export const SEND_QUEUE_BYTES_MAX = SOCKET_BUFFER_BYTES;
const EAGAIN = constants.errno.EAGAIN;
const EBADF = constants.errno.EBADF;
const ENODEV = constants.errno.ENODEV;

export interface UdpTransportOptions {
  readonly config: NodeConfig;
  /** Where to report socket errors that are not tied to one send. */
  readonly log?: (level: 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** Which sockets: the native helper's where it was built (the default), Node's dgram, or (for
   *  tests) a stand-in for the helper's. */
  readonly sockets?: 'native' | 'dgram' | { readonly native: NativeUdpSockets };
}

interface Peer {
  readonly id: number;
  readonly host: string;
  readonly port: number;
  /** The address as the sockets take it (the native helper's sockaddr, or undefined for dgram). */
  readonly to: Buffer | undefined;
}

/** What the transport needs of a family of sockets. */
interface UdpIo {
  /** The key a datagram from host:port arrives with. */
  sourceKey(host: string, port: number): UdpSourceKey;
  /** host:port of a key, for a log line. */
  describe(key: UdpSourceKey): string;
  /** The address a send to host:port takes. */
  address(host: string, port: number): Buffer | undefined;
  open(at: Endpoint, family: 4 | 6, reuse: boolean, on: SockCallbacks): Promise<UdpSock>;
}

/** What a socket reports: datagrams, errors not tied to one send, and failed sends (by errno
 *  name, when the send was made or when a queued one left). One set per transport: no closure
 *  per datagram. */
interface SockCallbacks {
  readonly message: (buf: Buffer, from: UdpSourceKey) => void;
  readonly error: (e: Error) => void;
  readonly failed: (code: string) => void;
}

/** This node's address, and the name of the interface that holds it (IPv6, when found). */
interface MulticastInterface {
  readonly addr: string;
  readonly name: string | undefined;
}

/** One bound socket. */
interface UdpSock {
  /** One datagram, now or queued behind a full send buffer: false when it failed at once; every
   *  failure, at once or later, goes to the `failed` callback. */
  send(bytes: DatagramBytes, to: Peer): boolean;
  /** Datagrams queued, not yet sent. */
  readonly pending: number;
  /** Sends to groups leave from the interface holding `iface.addr` (IPv6: named `iface.name`, when
   *  found), TTL 1, loopback on; `join` also joins `group` there. Throws. */
  multicast(group: string, iface: MulticastInterface, join: boolean): void;
  /** [receive, send] buffer sizes the kernel gave. */
  buffers(): [number, number];
  /** Waits at most `drainMs` for queued sends, then closes. */
  close(drainMs: number): Promise<void>;
}

export async function openUdpTransport(opts: UdpTransportOptions): Promise<Transport> {
  const t = new UdpTransport(opts);
  await t.open();
  return t;
}

/** The sockets the transport uses unless told: the native helper's where it was built, unless
 *  AFCLUSTER_UDP=dgram. */
export function defaultUdpSockets(): 'native' | 'dgram' {
  return process.env.AFCLUSTER_UDP !== 'dgram' && loadNative() ? 'native' : 'dgram';
}

class UdpTransport implements Transport {
  private readonly selfId: number;
  private readonly listen: Endpoint;
  private readonly group: Endpoint | undefined;
  private readonly groupPeer: Peer | undefined;
  private readonly io: UdpIo;
  private peers: Peer[] = [];
  private byId = new Map<number, Peer>();
  /** source key -> node id: no string building per datagram. */
  private sources = new Map<UdpSourceKey, number>();
  private readonly family: 4 | 6;
  private sock: UdpSock | undefined;
  private groupSock: UdpSock | undefined;
  private receiver: ((from: number, bytes: Buffer) => void) | undefined;
  private closed = false;
  private readonly unknownLog = new RateLimiter<'unknown'>({ now: () => performance.now(), keysMax: 1 });
  private readonly counters: Record<string, number> = {
    sentDatagrams: 0, sentBytes: 0, sendErrors: 0, sendUnknownNode: 0, recvDatagrams: 0, recvBytes: 0,
    droppedUnknownSource: 0, droppedSelf: 0, droppedNoReceiver: 0, socketErrors: 0,
    recvBufferBytes: 0, sendBufferBytes: 0, nativeSockets: 0,
  };
  private readonly callbacks: SockCallbacks = {
    message: (buf, key) => this.receive(buf, key),
    error: (e) => this.socketError(e),
    failed: (code) => {
      this.counters.sendErrors++;
      const key = `sendError_${code}`;
      this.counters[key] = (this.counters[key] ?? 0) + 1;
    },
  };

  constructor(private readonly opts: UdpTransportOptions) {
    keepShapes();
    const c = opts.config;
    this.selfId = c.node.id;
    this.listen = c.node.listen;
    this.family = isIPv6(this.listen.host) ? 6 : 4;
    this.group = c.cluster.transport === 'multicast' ? c.cluster.multicastAddr : undefined;
    if (c.cluster.transport === 'multicast' && !this.group) {
      throw new ClusterError('EINVAL', `${c.file}: transport "multicast" needs cluster.multicast_addr`);
    }
    const named = [c.node.listen, ...c.cluster.nodes.map((n) => n.addr)].find((e) => !isIP(e.host));
    if (named) throw new ClusterError('EINVAL', `${c.file}: host "${named.host}" is not resolved: resolve host names first (resolveConfig in core/config)`);
    const which = opts.sockets ?? defaultUdpSockets();
    const native = typeof which === 'object' ? which.native : which === 'native' ? loadNative()?.udpSocket : undefined;
    this.io = native ? new NativeIo(native) : new DgramIo();
    this.counters.nativeSockets = native ? 1 : 0;
    if (this.group) this.groupPeer = { id: 0, host: this.group.host, port: this.group.port, to: this.io.address(this.group.host, this.group.port) };
    this.setNodes(c.cluster.nodes);
  }

  /** The configured nodes (a reload may change them): whom to send to, and whose datagrams to take. */
  setNodes(nodes: readonly NodeEntry[]): void {
    const named = nodes.find((n) => !isIP(n.addr.host));
    if (named) throw new ClusterError('EINVAL', `node ${named.id}: host "${named.addr.host}" is not resolved`);
    const byId = new Map<number, Peer>();
    const sources = new Map<UdpSourceKey, number>();
    for (const n of nodes) {
      byId.set(n.id, { id: n.id, host: n.addr.host, port: n.addr.port, to: this.io.address(n.addr.host, n.addr.port) });
      sources.set(this.io.sourceKey(n.addr.host, n.addr.port), n.id);
    }
    this.byId = byId;
    this.sources = sources;
    this.peers = [...byId.values()].filter((p) => p.id !== this.selfId);
  }

  async open(): Promise<void> {
    this.sock = await this.bindSocket(this.listen, false);
    this.sizeBuffers(this.sock);
    if (this.group) {
      // An IPv6 group is bound on the interface that holds this node's address: a link-local
      // group (ff02::, ff12::) cannot be bound without one (EINVAL), and dgram's multicast calls
      // name an IPv6 interface by its scope.
      const ifaceName = this.family === 6 ? scopeOf(this.listen.host) ?? interfaceOf(this.listen.host, networkInterfaces()) : undefined;
      const scoped = ifaceName !== undefined && !this.group.host.includes('%');
      this.groupSock = await this.bindSocket(scoped ? { ...this.group, host: `${this.group.host}%${ifaceName}` } : this.group, true);
      this.sizeBuffers(this.groupSock);
      const iface = { addr: this.listen.host, name: ifaceName };
      try {
        this.groupSock.multicast(this.group.host, iface, true);
        this.sock.multicast(this.group.host, iface, false);
      } catch (e) {
        await this.close();
        throw new ClusterError('EINVAL', `cannot join multicast group ${this.group.host} on ${this.listen.host}: ${(e as Error).message}; check the interface supports multicast, or use transport = "udpu"`);
      }
    }
  }

  private async bindSocket(at: Endpoint, reuse: boolean): Promise<UdpSock> {
    try {
      return await this.io.open(at, this.family, reuse, this.callbacks);
    } catch (e) {
      throw bindError(e as NodeJS.ErrnoException, at);
    }
  }

  private sizeBuffers(sock: UdpSock): void {
    const [recv, send] = sock.buffers();
    this.counters.recvBufferBytes = Math.max(this.counters.recvBufferBytes, recv);
    this.counters.sendBufferBytes = Math.max(this.counters.sendBufferBytes, send);
  }

  private receive(msg: Buffer, key: UdpSourceKey): void {
    const from = this.sources.get(key);
    if (from === undefined) {
      this.counters.droppedUnknownSource++;
      const suppressed = this.unknownLog.take('unknown');
      if (suppressed !== undefined) {
        const source = this.io.describe(key);
        this.opts.log?.('warn', `dropped a datagram from ${source}, which is no configured node's address and port (cluster.nodes): a node missing from the list, a wrong port, or a stranger`,
          { source, bytes: msg.length, suppressed });
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
    this.sendTo(bytes, peer);
  }

  broadcast(bytes: DatagramBytes): void {
    if (this.groupPeer) {
      this.sendTo(bytes, this.groupPeer);
      return;
    }
    for (const p of this.peers) this.sendTo(bytes, p);
  }

  private sendTo(bytes: DatagramBytes, peer: Peer): void {
    if (this.closed || !this.sock) {
      this.counters.sendErrors++;
      return;
    }
    // A list of parts goes out as one datagram (sendmsg gathers them).
    if (!this.sock.send(bytes, peer)) return;
    this.counters.sentDatagrams++;
    this.counters.sentBytes += bytePartsLength(bytes);
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
    await Promise.all([this.sock, this.groupSock].map((s) => s?.close(CLOSE_DRAIN_MS)));
    this.sock = undefined;
    this.groupSock = undefined;
  }

  /** sendsInFlight: datagrams handed to a socket and not yet sent (the native sockets' queue
   *  behind a full send buffer; dgram's sends until their callback). */
  stats(): Record<string, number> {
    return { ...this.counters, sendsInFlight: (this.sock?.pending ?? 0) + (this.groupSock?.pending ?? 0) };
  }
}

function bindError(e: NodeJS.ErrnoException, at: Endpoint): ClusterError {
  const where = `${at.host}:${at.port}`;
  if (e.code === 'EADDRINUSE') return new ClusterError('EADDRINUSE', `cannot listen on ${where}: address in use; is another node already running with this config?`);
  if (e.code === 'EADDRNOTAVAIL') return new ClusterError('EINVAL', `cannot listen on ${where}: no local interface has this address; fix node.listen or this node's entry in cluster.nodes`);
  if (e.code === 'EACCES') return new ClusterError('EACCES', `cannot listen on ${where}: permission denied (ports below 1024 need privileges)`);
  return new ClusterError('EINVAL', `cannot listen on ${where}: ${e.message}`);
}

/** Resolves when `watch`'s callback is called (the last queued send left), or after `ms`. */
function drainedWithin(ms: number, watch: (done: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    watch(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** An Error with `code` the errno's name, as Node's own sockets throw. */
function errnoError(what: string, r: number): NodeJS.ErrnoException {
  const code = errnoName(-r);
  return Object.assign(new Error(`${what} ${code}`), { code });
}

// ---- the native helper's sockets ----

class NativeIo implements UdpIo {
  constructor(private readonly n: NativeUdpSockets) {}

  sourceKey(host: string, port: number): UdpSourceKey {
    const key = this.n.sourceKey(host, port);
    if (key === null) this.address(host, port); // throws, saying why
    return key as UdpSourceKey;
  }

  describe(key: UdpSourceKey): string {
    if (typeof key === 'string') {
      const at = key.lastIndexOf(' ');
      return `[${key.slice(0, at)}]:${key.slice(at + 1)}`;
    }
    if (key < 0) return 'a source that is no IP address';
    const ip = Math.floor(key / 65536);
    return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}:${key % 65536}`;
  }

  address(host: string, port: number): Buffer {
    const a = this.n.sockaddr(host, port);
    if (a === -ENODEV) throw new ClusterError('EINVAL', `address "${host}": no network interface has the scope it names (after the %)`);
    if (typeof a === 'number') throw new ClusterError('EINVAL', `address "${host}" port ${port}: not an IP address and port`);
    return a;
  }

  open(at: Endpoint, family: 4 | 6, reuse: boolean, on: SockCallbacks): Promise<UdpSock> {
    return Promise.resolve(new NativeSock(this.n, at, family, reuse, on));
  }
}

/** A datagram waiting for room in the send buffer. */
interface Queued {
  readonly bytes: DatagramBytes;
  readonly to: Buffer;
  readonly size: number;
}

class NativeSock implements UdpSock {
  private readonly h: NativeHandle;
  private readonly queue: Queued[] = [];
  private head = 0;
  private queuedBytes = 0;
  private drained: (() => void) | undefined;

  constructor(private readonly n: NativeUdpSockets, at: Endpoint, family: 4 | 6, reuse: boolean, private readonly on: SockCallbacks) {
    // A source that is no IP address cannot happen on an IP socket; null is dropped as unknown.
    // Each datagram has memory of its own (the helper's): released once its holders let go.
    const h = n.open(family, (buf, from) => { own(buf); on.message(buf, from ?? -1); }, () => { this.flush(); }, SOCKET_BUFFER_BYTES);
    if (typeof h === 'number') throw errnoError('socket', h);
    const r = n.bind(h, at.host, at.port, reuse);
    if (r < 0) {
      n.close(h);
      throw errnoError('bind', r);
    }
    this.h = h;
  }

  get pending(): number {
    return this.queue.length - this.head;
  }

  send(bytes: DatagramBytes, peer: Peer): boolean {
    const to = peer.to as Buffer;
    if (this.pending === 0) {
      const r = this.n.send(this.h, bytes, to);
      if (r === 0) return true;
      if (r !== -EAGAIN) { // a full buffer: queued, below
        this.on.failed(errnoName(-r));
        return false;
      }
    }
    const size = bytePartsLength(bytes);
    if (this.queuedBytes + size > SEND_QUEUE_BYTES_MAX) {
      this.on.failed('EAGAIN');
      return false;
    }
    this.queue.push({ bytes, to, size });
    holdParts(bytes); // a frame of the ring log's may be released before it leaves
    this.queuedBytes += size;
    return true;
  }

  /** Room in the send buffer: what waited goes, in order, until the buffer is full again. */
  private flush(): void {
    while (this.head < this.queue.length) {
      const q = this.queue[this.head];
      const r = this.n.send(this.h, q.bytes, q.to);
      if (r === -EAGAIN) return; // full again: the helper watches for room once more
      this.queue[this.head++] = undefined as unknown as Queued;
      this.queuedBytes -= q.size;
      dropParts(q.bytes);
      if (r < 0) this.on.failed(errnoName(-r));
      // A queue that never empties (a send buffer full again at every wake) drops what it sent.
      if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
    }
    this.queue.length = 0;
    this.head = 0;
    this.drained?.();
  }

  multicast(group: string, iface: MulticastInterface, join: boolean): void {
    const r = this.n.multicast(this.h, group, iface.addr, join);
    if (r < 0) throw errnoError('setsockopt', r);
  }

  buffers(): [number, number] {
    return [Math.max(0, this.n.recvBuffer(this.h)), Math.max(0, this.n.sendBuffer(this.h))];
  }

  async close(drainMs: number): Promise<void> {
    if (this.pending > 0) await drainedWithin(drainMs, (done) => { this.drained = done; });
    // What the drain did not send is lost, and counted as Node's dgram counts it.
    for (let i = this.head; i < this.queue.length; i++) {
      dropParts(this.queue[i].bytes);
      this.on.failed('ECANCELED');
    }
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
    const r = this.n.close(this.h);
    if (r < 0 && r !== -EBADF) this.on.error(errnoError('close', r));
  }
}

// ---- Node's dgram ----

class DgramIo implements UdpIo {

  sourceKey(host: string, port: number): UdpSourceKey {
    return `${canonicalIPv6(host)} ${port}`;
  }

  describe(key: UdpSourceKey): string {
    const [host, port] = String(key).split(' ');
    return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  }

  address(): undefined {
    return undefined;
  }

  open(at: Endpoint, family: 4 | 6, reuse: boolean, on: SockCallbacks): Promise<UdpSock> {
    // Every address is an IP literal (config refuses names): answer at once instead of a
    // dns.lookup and a tick per datagram.
    const lookup = (host: string, _opts: unknown, cb: (err: null, address: string, family: number) => void) => cb(null, host, family);
    const sock = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', reuseAddr: reuse, lookup: lookup as unknown as dgram.SocketOptions['lookup'] });
    return new Promise((resolve, reject) => {
      const fail = (e: NodeJS.ErrnoException) => {
        sock.close();
        reject(e);
      };
      sock.once('error', fail);
      sock.bind({ address: at.host, port: at.port, exclusive: true }, () => {
        sock.off('error', fail);
        sock.on('error', on.error);
        sock.on('message', (msg, rinfo) => on.message(msg, `${rinfo.address} ${rinfo.port}`));
        resolve(new DgramSock(sock, on));
      });
    });
  }
}

/** The scope an IPv6 address names ("fe80::1%eth0": "eth0"), if any. */
function scopeOf(host: string): string | undefined {
  const at = host.indexOf('%');
  return at < 0 ? undefined : host.slice(at + 1);
}

/** An IPv6 address as the kernel writes a source ("0:0::1" is "::1", "::FFFF:10.0.0.1" is
 *  "::ffff:10.0.0.1"): the URL parser writes IPv6 as RFC 5952 says, as inet_ntop does, except
 *  that inet_ntop keeps an IPv4 address in the last 32 bits dotted after 96 zero bits or after
 *  ::ffff:, and the parser does not. IPv4 and what the parser refuses (a scope) as given. */
function canonicalIPv6(host: string): string {
  if (!isIPv6(host)) return host;
  let text: string;
  try {
    text = new URL(`http://[${host}]/`).hostname.slice(1, -1);
  } catch {
    return host;
  }
  const v4 = /^::(ffff:)?([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(text);
  if (!v4) return text;
  const [hi, lo] = [parseInt(v4[2], 16), parseInt(v4[3], 16)];
  return `::${v4[1] ?? ''}${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

class DgramSock implements UdpSock {
  pending = 0;
  private drained: (() => void) | undefined;
  /** One callback for every send: no closure per datagram. */
  private readonly onSent = (err: Error | null): void => {
    this.pending--;
    if (err) this.on.failed((err as NodeJS.ErrnoException).code ?? 'unknown');
    if (this.pending === 0 && this.drained) this.drained();
  };

  constructor(private readonly sock: dgram.Socket, private readonly on: SockCallbacks) {
    try { // best effort: a refused size keeps the kernel default
      sock.setRecvBufferSize(SOCKET_BUFFER_BYTES);
      sock.setSendBufferSize(SOCKET_BUFFER_BYTES);
    } catch {
      // keep the defaults
    }
  }

  send(bytes: DatagramBytes, peer: Peer): boolean {
    try {
      this.sock.send(bytes as Uint8Array | Uint8Array[], peer.port, peer.host, this.onSent);
      this.pending++;
      return true;
    } catch (e) {
      this.on.failed((e as NodeJS.ErrnoException).code ?? 'unknown');
      return false;
    }
  }

  multicast(group: string, iface: MulticastInterface, join: boolean): void {
    // libuv takes an IPv6 interface as a scope ("::%eth0"); an address without one means any.
    const at = isIPv6(iface.addr) && iface.name !== undefined ? `::%${iface.name}` : iface.addr;
    if (join) this.sock.addMembership(group, at);
    this.sock.setMulticastInterface(at);
    this.sock.setMulticastTTL(1);
    this.sock.setMulticastLoopback(true);
  }

  buffers(): [number, number] {
    try {
      return [this.sock.getRecvBufferSize(), this.sock.getSendBufferSize()];
    } catch {
      return [0, 0];
    }
  }

  async close(drainMs: number): Promise<void> {
    if (this.pending > 0) await drainedWithin(drainMs, (done) => { this.drained = done; });
    await new Promise<void>((r) => this.sock.close(() => r()));
  }
}
