// The embedded node ("totem as a linkable library", the 2006 thread): one call builds a whole
// node inside the calling process — driver from the registry, GroupService, UDP runtime — and
// hands out sockets with the same surface as ClusterSocket (core/api/types.ts GroupSocket), with
// no daemon in between.
import type { NodeConfig } from '../config/types.ts';
import type { DriverRegistry } from '../driver/registry.ts';
import type { MessageBytes, Order } from '../driver/types.ts';
import { ClusterError } from '../api/errors.ts';
import { copyBytes } from '../wire/bytes.ts';
import { startRuntime, type Runtime, type RuntimeLog } from '../runtime/index.ts';
import type { BindOptions, GroupSocket, LocalNode, Member, MemberIdentity, MemberInfo, QuorumInfo, SendCallback, SendOptions, SocketEvent } from '../api/types.ts';
import { EventQueue, WritableSignal, badCallback, badSignal, eventBytes, retryEagain, settleTo } from '../api/queue.ts';
import { GroupService, driverMessageSizeMax, keepEvent, type LocalEndpoint } from './service.ts';
import { quorumOptions } from '../quorum/quorum.ts';

export interface CreateNodeOptions {
  readonly config: NodeConfig;
  /** The drivers to choose from (`builtinRegistry()` from drivers/builtin.ts for totem and cman;
   *  sockapi/node.ts passes it for you). */
  readonly registry: DriverRegistry;
  readonly log?: RuntimeLog;
}

export interface SocketOptions {
  /** Receive queue bound in events (default limits.recvQueueMax). */
  readonly eventQueueMax?: number;
  /** Receive queue bound in bytes (default limits.recvQueueBytesMax). */
  readonly eventQueueBytesMax?: number;
}

export interface EmbeddedNode {
  readonly nodeId: number;
  /** The config it was built from (limits.messageSizeMax is the largest message send() takes). */
  readonly config: NodeConfig;
  readonly driver: string;
  /** The node's GroupService (for status displays and tests). */
  readonly groups: GroupService;
  /** Open a socket on this node; EMFILE past limits.sockets_max. */
  socket(opts?: SocketOptions): Promise<EmbeddedSocket>;
  localNode(): LocalNode;
  /** groups.* and driver.* counters. */
  stats(): Record<string, unknown>;
  /** Close every socket, leave the ring cleanly (unless leave: false), stop the transport. */
  close(opts?: { leave?: boolean }): Promise<void>;
}

export async function createNode(opts: CreateNodeOptions): Promise<EmbeddedNode> {
  const { config } = opts;
  const { registry } = opts;
  const entry = registry.get(config.cluster.driver);
  const log: RuntimeLog = opts.log ?? (() => undefined);
  const writable = new WritableSignal();
  // The service needs the driver's multicast and the runtime needs the service: tie the knot late.
  const late: { runtime?: Runtime } = {};
  const groups = new GroupService({
    nodeId: config.node.id, limits: config.limits, guarantees: entry.guarantees, driverName: entry.name,
    log: (level, msg, fields) => log(level, msg, { ...fields, layer: 'groups' }),
    onWritable: () => writable.notify(),
    multicast: (message: MessageBytes, order: Order) => {
      if (!late.runtime) throw new ClusterError('EAGAIN', 'the driver is starting');
      late.runtime.multicast(message, order);
    },
    quorum: quorumOptions(config),
    now: () => performance.now(),
  });
  const runtimeConfig: NodeConfig = { ...config, limits: { ...config.limits, messageSizeMax: driverMessageSizeMax(config.limits) } };
  late.runtime = await startRuntime({ config: runtimeConfig, registry, upcalls: groups, log });
  groups.writable();
  return new Node(config, entry.name, groups, late.runtime, writable);
}

class Node implements EmbeddedNode {
  private readonly sockets = new Set<EmbeddedSocket>();
  private nextPort = 1;
  private closing: Promise<void> | undefined;
  /** last_man_standing's clock (GroupService.tick), about once a second. */
  private readonly ticker: NodeJS.Timeout;

  constructor(readonly config: NodeConfig, readonly driver: string, readonly groups: GroupService,
    private readonly runtime: Runtime, private readonly writable: WritableSignal) {
    this.ticker = setInterval(() => groups.tick(), 1000);
    this.ticker.unref();
  }

  get nodeId(): number { return this.config.node.id; }

  async socket(opts: SocketOptions = {}): Promise<EmbeddedSocket> {
    if (this.closing) throw new ClusterError('ENOTCONN', 'this node is closed; create a new one');
    const port = this.takePort();
    const s = new EmbeddedSocket({
      groups: this.groups, pid: process.pid, port, writable: this.writable,
      eventQueueMax: opts.eventQueueMax ?? this.config.limits.recvQueueMax,
      eventQueueBytesMax: opts.eventQueueBytesMax ?? this.config.limits.recvQueueBytesMax,
      onClose: () => this.sockets.delete(s),
    });
    this.sockets.add(s);
    return s;
  }

  localNode(): LocalNode { return this.groups.localNode(); }

  stats(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.groups.stats())) out[`groups.${k}`] = v;
    for (const [k, v] of Object.entries(this.runtime.stats())) out[`driver.${k}`] = v;
    return out;
  }

  close(opts: { leave?: boolean } = {}): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.ticker);
      for (const s of [...this.sockets]) await s.close();
      await this.runtime.stop({ leave: opts.leave ?? true });
      this.writable.notify();
    })();
    return this.closing;
  }

  /** Ports tell this process's sockets apart: a counter, so a closed socket's port comes back last. */
  private takePort(): number {
    const port = this.nextPort;
    this.nextPort = this.nextPort >= 0xffffffff ? 1 : this.nextPort + 1;
    return port;
  }
}

interface EmbeddedSocketOptions {
  readonly groups: GroupService;
  readonly pid: number;
  readonly port: number;
  readonly writable: WritableSignal;
  readonly eventQueueMax: number;
  readonly eventQueueBytesMax: number;
  readonly onClose: () => void;
  /** Who the socket's process is (default: this process's user and group). */
  readonly identity?: MemberIdentity;
}

/** This process's user and group, where the platform has them. */
export function processIdentity(): MemberIdentity | undefined {
  return process.getuid && process.getgid ? { uid: process.getuid(), gid: process.getgid(), verified: true } : undefined;
}

/** A socket of an embedded node: GroupSocket over a GroupService endpoint in this process. */
export class EmbeddedSocket implements GroupSocket {
  private readonly queue: EventQueue<SocketEvent>;
  private readonly endpoint: LocalEndpoint;
  private closed = false;

  constructor(private readonly opts: EmbeddedSocketOptions) {
    this.queue = new EventQueue<SocketEvent>({ max: opts.eventQueueMax, bytesMax: opts.eventQueueBytesMax, sizeOf: eventBytes });
    const identity = opts.identity ?? processIdentity();
    this.endpoint = opts.groups.open({ pid: opts.pid, port: opts.port, ...(identity ? { identity } : {}) }, {
      event: (ev) => this.queue.push(keepEvent(ev)),
      overrun: () => this.queue.force({ type: 'error', code: 'ENOBUFS',
        message: 'this socket fell behind (its receive queue overflowed) and was removed from its group; read faster, then bind again' }),
    });
  }

  get self(): Member { return this.endpoint.member; }

  /** Events waiting to be read. */
  get queued(): number { return this.queue.size; }

  async bind(group: string, options: BindOptions = {}): Promise<void> {
    this.check(options.signal);
    await retryEagain(() => this.endpoint.bind(group, { selfDelivery: options.selfDelivery ?? true }),
      { signal: options.signal, writable: this.opts.writable });
  }

  async unbind(options: { signal?: AbortSignal } = {}): Promise<void> {
    this.check(options.signal);
    this.endpoint.unbind();
  }

  /** As ClusterSocket.send: a promise, or with a callback none (the callback is called once, with
   *  null or the error, never before send returns). */
  send(data: Uint8Array | string, options?: SendOptions): Promise<void>;
  send(data: Uint8Array | string, options: SendOptions, callback: SendCallback): void;
  send(data: Uint8Array | string, options: SendOptions = {}, callback?: SendCallback): Promise<void> | void {
    const bad = badCallback(callback);
    if (bad) return Promise.reject(bad);
    const p = this.sendNow(data, options);
    if (!callback) return p;
    settleTo(p, callback);
  }

  private async sendNow(data: Uint8Array | string, options: SendOptions): Promise<void> {
    this.check(options.signal);
    // The driver keeps what it is given (Driver.multicast) and the application may reuse its buffer.
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : copyBytes(data);
    const order = options.order ?? 'agreed';
    await retryEagain(() => {
      if (this.closed) throw new ClusterError('ENOTCONN', 'the socket is closed; open a new one');
      this.endpoint.send(bytes, order);
    }, { wait: options.wait, signal: options.signal, writable: this.opts.writable });
  }

  async members(options: { signal?: AbortSignal } = {}): Promise<Member[]> {
    this.check(options.signal);
    return this.endpoint.members();
  }

  /** The members of its group with who they are (uid and gid, as their nodes said). */
  async memberInfo(options: { signal?: AbortSignal } = {}): Promise<MemberInfo[]> {
    this.check(options.signal);
    return this.endpoint.memberInfo();
  }

  async localNode(options: { signal?: AbortSignal } = {}): Promise<LocalNode> {
    this.check(options.signal);
    return this.opts.groups.localNode();
  }

  async quorum(options: { signal?: AbortSignal } = {}): Promise<QuorumInfo> {
    this.check(options.signal);
    return this.opts.groups.quorumInfo();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.endpoint.close('leave');
    this.queue.end();
    this.opts.onClose();
  }

  [Symbol.asyncIterator](): AsyncIterator<SocketEvent> {
    return this.queue[Symbol.asyncIterator]();
  }

  /** As ClusterSocket.listen: every event to `listener`, in order, in place of `for await`;
   *  called in a microtask just after the node's delivery that brought it, never from inside it
   *  (what the listener calls on this node would re-enter the group layer mid-delivery). */
  listen(listener: ((ev: SocketEvent) => void) | undefined): void {
    this.queue.listen(listener);
  }

  private check(signal: AbortSignal | undefined): void {
    const bad = badSignal(signal);
    if (bad) throw bad;
    if (signal?.aborted) throw new ClusterError('ECANCELED', 'the operation was aborted');
    if (this.closed) throw new ClusterError('ENOTCONN', 'the socket is closed; open a new one');
  }
}
