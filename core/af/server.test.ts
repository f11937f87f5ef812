// Proves the bridge core's local security rules with a fake host (no sockets, a manual clock): half-sent large messages are charged by the bytes that arrived, within per-socket, per-user and per-node bounds, so the reservation attack (many sockets, many first parts of 1 byte announcing 1 MiB) costs the attacker its bytes, honest users' large sends go on during it, and everything is given back when the parts expire.
import { describe, expect, it } from 'vitest';
import { GroupService } from '../groups/service.ts';
import { ERROR_NUMBERS } from '../api/errors.ts';
import type { Order } from '../driver/types.ts';
import type { SocketEvent } from '../api/types.ts';
import { decodeDaemonDatagram, encodeRequest, SEND_PART_DATA_MAX, type MessagePart, type Reply, type Request } from './codec.ts';
import { BridgeCore, PARTIAL_IDLE_MS, PARTIAL_OVERHEAD, PARTIALS_PER_SOCKET_MAX, partialLimits, type BridgeHost, type ClientIdentity } from './server.ts';
import type { NodeConfig } from '../config/types.ts';

const MiB = 1024 * 1024;
const limits: NodeConfig['limits'] = {
  messageSizeMax: MiB, socketsMax: 64, groupsMax: 8, groupNameMax: 32, recvQueueMax: 4096,
  recvQueueBytesMax: 8 * MiB, recvStallMs: 2000, membersMax: 64,
};

/** One node in memory: a GroupService over a loopback driver, the bridge core over a fake host. */
export class FakeNode {
  t = 0;
  private readonly deferred: (() => void)[] = [];
  private readonly deliveries: [Uint8Array, Order][] = [];
  /** Datagrams the daemon sent to each client path, decoded. */
  readonly inbox = new Map<string, ReturnType<typeof decodeDaemonDatagram>[]>();
  readonly identities = new Map<string, Omit<ClientIdentity, 'pid'>>();
  readonly svc: GroupService;
  readonly bridge: BridgeCore;
  private nextId = 1;

  constructor() {
    const receive = (path: string, bytes: Uint8Array): void => {
      const list = this.inbox.get(path) ?? [];
      list.push(decodeDaemonDatagram(bytes.slice()));
      this.inbox.set(path, list);
    };
    const host: BridgeHost = {
      now: () => this.t,
      defer: (fn) => { this.deferred.push(fn); },
      connect: (path) => ({ send: (b) => { receive(path, b); return 'sent'; }, close: () => undefined }),
      sendTo: (path, bytes) => receive(path, bytes),
      processAlive: () => true,
      clientExists: () => true,
      identify: (path, pid) => {
        const id = this.identities.get(path);
        return id ? { ...id, pid } : 'ESRCH';
      },
    };
    this.svc = new GroupService({
      nodeId: 1, limits, guarantees: { fifo: true, agreed: true, safe: true, virtualSynchrony: true }, driverName: 'loopback',
      log: () => undefined, onWritable: () => this.bridge.writable(),
      multicast: (p, order) => { this.deliveries.push([p.slice(), order]); },
    });
    this.svc.configuration({ kind: 'regular', ringId: { rep: 1, seq: 4 }, members: [1], left: [], joined: [1] });
    this.bridge = new BridgeCore({
      nodeId: 1, driver: 'loopback', groups: this.svc, runtimeStats: () => ({}), limits, messageSizeMax: limits.messageSizeMax,
      log: () => undefined,
    }, host);
  }

  /** Runs what the host deferred and what the loopback delivers, until nothing is left. */
  pump(): void {
    for (;;) {
      const d = this.deliveries.shift();
      if (d) { this.svc.deliver(1, d[0], d[1]); continue; }
      const fn = this.deferred.shift();
      if (fn) { fn(); continue; }
      return;
    }
  }

  /** A client at `path` of user `uid` (groups: its gid and `groups`). */
  client(path: string, uid: number, gid = uid, groups: number[] = []): FakeClient {
    this.identities.set(path, { uid, gid, groups: [gid, ...groups], verified: true });
    return new FakeClient(this, path, 10_000 + this.identities.size);
  }

  request(path: string, req: Request): Reply {
    const id = this.nextId++;
    this.bridge.datagram(encodeRequest({ ...req, id } as Request), path);
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
  hello(): number { return this.status({ type: 'hello', id: 0, pid: this.pid }); }
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

const firstPart = (msgId: number, total: number, data: Uint8Array): Request =>
  ({ type: 'sendPart', id: 0, order: 'agreed', msgId, total, offset: 0, data });

describe('bridge core: half-sent messages', () => {
  const max = partialLimits(limits.messageSizeMax);

  it('has bounds that let every user send a largest message and no user take more than a quarter of the node', () => {
    expect(max).toEqual({ node: 64 * MiB, user: 16 * MiB, socket: 4 * MiB });
    for (const m of [1, 60_000, MiB, 16 * MiB, 64 * MiB]) {
      const b = partialLimits(m);
      expect(b.socket).toBeGreaterThanOrEqual(2 * m);
      expect(b.user).toBeGreaterThanOrEqual(b.socket);
      expect(b.user * 4).toBeLessThanOrEqual(b.node);
    }
  });

  it('the reservation attack costs the attacker its bytes; honest large sends go on; all is given back at expiry', () => {
    const node = new FakeNode();
    const honest = node.client('/h.sock', 0);
    const receiver = node.client('/r.sock', 0);
    for (const c of [honest, receiver]) {
      expect(c.hello()).toBe(0);
      expect(c.status({ type: 'bind', id: 0, group: 'big', selfDelivery: false })).toBe(0);
    }
    const arrayBuffersBefore = process.memoryUsage().arrayBuffers;
    // 17 sockets of user 1000, each 16 first parts of 1 byte announcing 1 MiB (the report's attack).
    const attackers = Array.from({ length: 17 }, (_, i) => node.client(`/a${i}.sock`, 1000));
    for (const a of attackers) {
      expect(a.hello()).toBe(0);
      expect(a.status({ type: 'bind', id: 0, group: 'big', selfDelivery: false })).toBe(0);
      for (let m = 1; m <= PARTIALS_PER_SOCKET_MAX; m++) expect(a.status(firstPart(m, MiB, Uint8Array.of(7)))).toBe(0);
      expect(a.status(firstPart(99, MiB, Uint8Array.of(7)))).toBe(ERROR_NUMBERS.EAGAIN); // 16 a socket
    }
    const reserved = 17 * PARTIALS_PER_SOCKET_MAX * (PARTIAL_OVERHEAD + 1);
    expect(node.stats()).toMatchObject({ partials: 17 * 16, partialBytes: reserved });
    // The attacker now sends real bytes on fresh sockets: it gets its user's share and no more.
    const fillers = Array.from({ length: 8 }, (_, i) => node.client(`/f${i}.sock`, 1000));
    let refused = 0;
    for (const f of fillers) {
      expect(f.hello()).toBe(0);
      expect(f.status({ type: 'bind', id: 0, group: 'big', selfDelivery: false })).toBe(0);
      for (let m = 1; m <= 3; m++) {
        const chunk = new Uint8Array(SEND_PART_DATA_MAX);
        let offset = 0;
        while (offset < MiB - SEND_PART_DATA_MAX) {
          const st = f.status({ type: 'sendPart', id: 0, order: 'agreed', msgId: m, total: MiB, offset, data: chunk });
          if (st !== 0) { expect(st).toBe(ERROR_NUMBERS.EAGAIN); refused++; break; }
          offset += chunk.length;
        }
      }
      expect(node.stats().partialBytes).toBeLessThanOrEqual(max.user);
    }
    expect(refused).toBeGreaterThan(0);
    const during = node.stats();
    expect(during.partialBytes).toBeLessThanOrEqual(max.user);
    expect(during.partialsRefused).toBeGreaterThan(0);
    // The daemon's own memory for it stays under the node's bound (no 256 MB of reservations).
    expect(process.memoryUsage().arrayBuffers - arrayBuffersBefore).toBeLessThan(max.node);
    // Meanwhile root's 1 MiB messages, two at a time on two sockets, go through whole.
    const honest2 = node.client('/h2.sock', 0);
    expect(honest2.hello()).toBe(0);
    expect(honest2.status({ type: 'bind', id: 0, group: 'big', selfDelivery: false })).toBe(0);
    const payload = Uint8Array.from({ length: MiB }, (_, i) => (i * 31) % 251);
    expect(honest.sendLarge(1, payload)).toBe(0);
    expect(honest2.sendLarge(1, payload.slice().reverse())).toBe(0);
    const parts = receiver.parts();
    const got = new Map<number, Uint8Array>();
    for (const p of parts) {
      const buf = got.get(p.msgId) ?? new Uint8Array(p.total);
      buf.set(p.data, p.offset);
      got.set(p.msgId, buf);
    }
    const same = (x: Uint8Array | undefined, y: Uint8Array): boolean => x !== undefined && Buffer.from(x).equals(Buffer.from(y));
    expect(got.size).toBe(2);
    expect(same([...got.values()][0], payload) && same([...got.values()][1], payload.slice().reverse())).toBe(true);
    // Abandoned parts expire, and every byte is given back.
    node.t += PARTIAL_IDLE_MS + 1;
    node.bridge.tick();
    const after = node.stats();
    expect(after).toMatchObject({ partials: 0, partialBytes: 0 });
    expect(after.partialsExpired).toBe(during.partials);
    expect(honest.sendLarge(2, payload)).toBe(0); // and room for everyone again
  });

  it('refuses a part that would pass the socket\'s bound, dropping the message; other sockets of the user go on', () => {
    const node = new FakeNode();
    const a = node.client('/a.sock', 1000);
    const b = node.client('/b.sock', 1000);
    for (const c of [a, b]) {
      expect(c.hello()).toBe(0);
      expect(c.status({ type: 'bind', id: 0, group: 'g', selfDelivery: false })).toBe(0);
    }
    const chunk = new Uint8Array(SEND_PART_DATA_MAX);
    let sent = 0, status = 0;
    for (let m = 1; status === 0; m++) {
      for (let offset = 0; offset + chunk.length < MiB && status === 0; offset += chunk.length) {
        status = a.status({ type: 'sendPart', id: 0, order: 'agreed', msgId: m, total: MiB, offset, data: chunk });
        if (status === 0) sent += chunk.length;
      }
    }
    expect(status).toBe(ERROR_NUMBERS.EAGAIN);
    expect(sent).toBeLessThanOrEqual(max.socket);
    expect(sent).toBeGreaterThan(max.socket - MiB - chunk.length);
    expect(b.sendLarge(1, new Uint8Array(MiB))).toBe(0);
    // A first part from a socket that is not bound is refused at once.
    const c = node.client('/c.sock', 1000);
    expect(c.hello()).toBe(0);
    expect(c.status(firstPart(1, MiB, Uint8Array.of(1)))).toBe(ERROR_NUMBERS.ENOTCONN);
    expect(c.status(firstPart(2, MiB + 1, Uint8Array.of(1)))).toBe(ERROR_NUMBERS.EMSGSIZE);
    // A socket that closes gives its parts back.
    expect(a.status({ type: 'close', id: 0 })).toBe(0);
    expect(node.stats().partialBytes).toBe(0);
  });
});
