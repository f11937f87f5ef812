// The bridge core in memory, for unit tests: a GroupService over a loopback driver and BridgeCore
// over a fake host (no sockets, a manual clock, identities set per client path).
import { GroupService } from '../../core/groups/service.ts';
import type { MessageBytes, Order } from '../../core/driver/types.ts';
import type { SocketEvent } from '../../core/api/types.ts';
import { decodeDaemonDatagram, encodeRequest, SEND_PART_DATA_MAX, type MessagePart, type Reply, type Request } from '../../core/af/codec.ts';
import { BridgeCore, type BridgeHost, type ClientIdentity } from '../../core/af/server.ts';
import type { AccessPolicy } from '../../core/af/access.ts';
import type { NodeConfig } from '../../core/config/types.ts';
import { concatBytes } from '../../core/wire/bytes.ts';
import { anchor, drop, own } from '../../core/wire/lease.ts';
import { cutInto } from './bus.ts';

export const MiB = 1024 * 1024;
export const limits: NodeConfig['limits'] = {
  messageSizeMax: MiB, socketsMax: 64, groupsMax: 8, groupNameMax: 32, recvQueueMax: 4096,
  recvQueueBytesMax: 8 * MiB, recvStallMs: 2000, membersMax: 64,
};

/** One node in memory: a GroupService over a loopback driver, the bridge core over a fake host. */
export class FakeNode {
  t = 0;
  private readonly deferred: (() => void)[] = [];
  private readonly deliveries: [Uint8Array, Order][] = [];
  /** Messages delivered so far: every other one goes through deliverAt(). */
  private delivered = 0;
  /** Every message handed to the driver, as the group layer passed it (its parts, not joined). */
  readonly multicasts: MessageBytes[] = [];
  /** Datagrams the daemon sent to each client path, decoded. */
  readonly inbox = new Map<string, ReturnType<typeof decodeDaemonDatagram>[]>();
  readonly identities = new Map<string, Omit<ClientIdentity, 'pid'>>();
  /** Paths whose socket table entry is a dead client's: its connected channel reaches nobody. */
  readonly stale = new Set<string>();
  /** What the bridge logged, as "level message". */
  readonly logs: string[] = [];
  /** How many parts each datagram sent gathered to a client had (its header included). */
  readonly gathered: number[] = [];
  /** Paths whose client's kernel queue is full: the connected channel answers 'again'. */
  readonly full = new Set<string>();
  private readonly onWritable = new Map<string, () => void>();
  readonly svc: GroupService;
  readonly bridge: BridgeCore;
  private nextId = 1;

  /** largeDatagrams: the host's sockets take version 5's datagrams (the native sockets);
   *  smallClientSockets: but the sockets it opens for clients do not (their send buffer);
   *  fragmentBytes: the loopback driver delivers a message longer than this in pieces of this
   *  size (deliverParts), as a driver does a message that spans frames;
   *  multicastCopiesUpTo: the driver says it copies messages up to this size (the bridge's option);
   *  anchored: each request's datagram is owned and anchored for the call, as the daemon's shell
   *  does (core/af/bridge.ts), so with a releaser set (core/wire/lease.ts) it goes back once the
   *  bridge lets go of it (the loopback driver copies what it is given). */
  constructor(private readonly opts: { access?: AccessPolicy; largeDatagrams?: boolean; smallClientSockets?: boolean; fragmentBytes?: number; multicastCopiesUpTo?: number; anchored?: boolean } = {}) {
    const receive = (path: string, bytes: Uint8Array): void => {
      const list = this.inbox.get(path) ?? [];
      const d = decodeDaemonDatagram(bytes.slice());
      if (d.type === 'batch') list.push(...d.items.map((item) => decodeDaemonDatagram(item))); // version 2 and later
      else list.push(d);
      this.inbox.set(path, list);
    };
    const host: BridgeHost = {
      now: () => this.t,
      defer: (fn) => { this.deferred.push(fn); },
      connect: (path, onWritable, large) => (large && opts.smallClientSockets ? 'EMSGSIZE' : (this.onWritable.set(path, onWritable), {
        send: (b) => {
          if (this.stale.has(path)) return 'ECONNREFUSED';
          if (this.full.has(path)) return 'again';
          if (!(b instanceof Uint8Array)) this.gathered.push(b.length);
          receive(path, b instanceof Uint8Array ? b : concatBytes(b));
          return 'sent';
        },
        close: () => undefined,
      })),
      sendTo: (path, bytes) => receive(path, bytes),
      processAlive: () => true,
      largeDatagrams: opts.largeDatagrams ?? false,
      clientExists: () => true,
      identify: (path, pid) => {
        const id = this.identities.get(path);
        return id ? { ...id, pid } : 'ESRCH';
      },
    };
    this.svc = new GroupService({
      nodeId: 1, limits, guarantees: { fifo: true, agreed: true, safe: true, virtualSynchrony: true }, driverName: 'loopback',
      log: () => undefined, onWritable: () => this.bridge.writable(),
      multicast: (p, order) => {
        this.multicasts.push(p);
        this.deliveries.push([concatBytes(p instanceof Uint8Array ? [p] : p), order]);
      },
    });
    this.svc.configuration({ kind: 'regular', ringId: { rep: 1, seq: 4 }, members: [1], left: [], joined: [1] });
    this.bridge = new BridgeCore({
      nodeId: 1, driver: 'loopback', groups: this.svc, runtimeStats: () => ({}), limits, messageSizeMax: limits.messageSizeMax,
      log: (level, msg) => { this.logs.push(`${level} ${msg}`); }, ...(opts.access ? { access: opts.access } : {}),
      ...(opts.multicastCopiesUpTo !== undefined ? { multicastCopiesUpTo: opts.multicastCopiesUpTo } : {}),
    }, host);
  }

  /** Runs what the host deferred and what the loopback delivers, until nothing is left. */
  pump(): void {
    for (;;) {
      const d = this.deliveries.shift();
      if (d) { this.deliver(d[0], d[1]); continue; }
      const fn = this.deferred.shift();
      if (fn) { fn(); continue; }
      return;
    }
  }

  private deliver(payload: Uint8Array, order: Order): void {
    const cut = this.opts.fragmentBytes ?? Infinity;
    if (payload.length <= cut && this.delivered++ % 2 === 0) {
      // As a driver's deliverAt() gives a message that came whole: where it lies in a frame.
      const frame = new Uint8Array(payload.length + 9).fill(0xaa);
      frame.set(payload, 4);
      this.svc.deliverAt(1, frame, 4, 4 + payload.length, order);
      return;
    }
    if (payload.length <= cut) { this.svc.deliver(1, payload, order); return; }
    this.svc.deliverParts(1, cutInto(payload, cut), order);
  }

  /** The client at `path` read its queue: its channel takes datagrams again. */
  drained(path: string): void {
    this.full.delete(path);
    this.onWritable.get(path)?.();
    this.pump();
  }

  /** A client at `path` of user `uid` (groups: its gid and `groups`). */
  client(path: string, uid: number, gid = uid, groups: number[] = []): FakeClient {
    this.identities.set(path, { uid, gid, groups: [gid, ...groups], verified: true });
    return new FakeClient(this, path, 10_000 + this.identities.size);
  }

  request(path: string, req: Request): Reply {
    const id = this.nextId++;
    const encoded = encodeRequest({ ...req, id } as Request);
    // As the native socket reads it: memory of its own (an encoding may share a slab).
    const bytes = this.opts.anchored ? new Uint8Array(encoded) : encoded;
    if (this.opts.anchored) { own(bytes); anchor(bytes); }
    try {
      this.bridge.datagram(bytes, path);
    } finally {
      if (this.opts.anchored) drop(bytes);
    }
    this.pump();
    const got = this.inbox.get(path)?.find((d) => d.type === 'reply' && d.reply.id === id);
    if (got?.type !== 'reply') throw new Error(`no reply to ${req.type} from ${path}`);
    return got.reply;
  }

  stats(): Record<string, number> { return this.bridge.stats(); }
}

export class FakeClient {
  constructor(readonly node: FakeNode, readonly path: string, readonly pid: number) {}
  request(req: Request): Reply { return this.node.request(this.path, req); }
  status(req: Request): number { return this.request(req).status; }
  hello(version?: number): number { return this.status({ type: 'hello', id: 0, pid: this.pid, ...(version ? { version } : {}) }); }
  events(): SocketEvent[] {
    return (this.node.inbox.get(this.path) ?? []).flatMap((d) => (d.type === 'event' ? [d.event] : []));
  }
  parts(): MessagePart[] {
    return (this.node.inbox.get(this.path) ?? []).flatMap((d) => (d.type === 'part' ? [d.part] : []));
  }
  /** A whole message in SEND_PART fragments, as the reference clients send it; the last status. */
  sendLarge(msgId: number, data: Uint8Array): number {
    let status = 0;
    for (let offset = 0; offset < data.length && status === 0; offset += SEND_PART_DATA_MAX) {
      status = this.status({ type: 'sendPart', id: 0, order: 'agreed', msgId, total: data.length, offset, data: data.subarray(offset, offset + SEND_PART_DATA_MAX) });
    }
    return status;
  }
}

