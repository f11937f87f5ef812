// A test double of the cluster: GroupSockets in one process over one shared queue. Ordered
// (default): every action (bind, send, leave) is applied in one global order and each event
// reaches every member in that order, like an agreed-order driver with virtual synchrony.
// Unordered (give an rng): each receiver gets the messages of one drain in its own random
// interleaving (FIFO per sender only), like cman; membership events stay barriers.
import { ClusterError } from '../../core/api/errors.ts';
import { callUser, settleTo } from '../../core/api/queue.ts';
import type {
  BindOptions, ChangeReason, GroupSocket, LocalNode, QuorumInfo, QuorumState, Member, SendCallback, SendOptions, SocketEvent,
} from '../../core/api/types.ts';

type Action =
  | { readonly type: 'bind'; readonly sock: BusSocket; readonly group: string }
  | { readonly type: 'leave'; readonly sock: BusSocket; readonly reason: ChangeReason }
  | { readonly type: 'send'; readonly sock: BusSocket; readonly data: Uint8Array; readonly order: SendOptions['order'] };

const EVENTS_MAX = 1_000_000;

export interface OrderedBusOptions {
  /** Present: unordered delivery (FIFO per sender), drawn from this generator. */
  readonly rng?: () => number;
}

export class OrderedBus {
  private readonly actions: Action[] = [];
  private readonly groups = new Map<string, BusSocket[]>();
  private scheduled = false;
  private nextPort = 1;
  /** Total events handed to sockets (for tests' sanity checks). */
  delivered = 0;

  constructor(readonly options: OrderedBusOptions = {}) {}

  get ordered(): boolean {
    return this.options.rng === undefined;
  }

  socket(nodeId: number, pid = 1000 + nodeId): BusSocket {
    return new BusSocket(this, { nodeId, pid, port: this.nextPort++ });
  }

  /** The process of `sock` died: it leaves with reason procdown. */
  crash(sock: BusSocket): void {
    sock.kill();
    this.enqueue({ type: 'leave', sock, reason: 'procdown' });
  }

  /** `sock`'s node was cut off: the others see it leave with reason nodedown, and it hears
   *  nothing more but, when `quorum` is given, one QUORUM event saying its part lost quorum. */
  cutOff(sock: BusSocket, quorum?: QuorumState): void {
    const group = sock.group;
    this.enqueue({ type: 'leave', sock, reason: 'nodedown' });
    if (quorum && group !== undefined) sock.push({ type: 'quorum', group, ringId: { rep: sock.self.nodeId, seq: 2 }, quorum });
  }

  membersOf(group: string): Member[] {
    return (this.groups.get(group) ?? []).map((s) => s.self).sort(cmp);
  }

  /** Resolves once every queued action has been applied and the event loop has settled. */
  async settle(): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      await new Promise<void>((r) => setImmediate(r));
      if (this.actions.length === 0 && !this.scheduled) return;
    }
  }

  enqueue(a: Action): void {
    this.actions.push(a);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    const batch = this.actions.splice(0);
    const perReceiver = new Map<BusSocket, SocketEvent[]>();
    const flush = (): void => {
      for (const [sock, evs] of perReceiver) sock.push(...this.interleave(evs));
      perReceiver.clear();
    };
    for (const a of batch) {
      if (a.type === 'send') {
        for (const r of this.groups.get(a.sock.group ?? '') ?? []) {
          const ev: SocketEvent = { type: 'message', group: a.sock.group ?? '', sender: a.sock.self, order: a.order ?? 'agreed', data: a.data.slice() };
          perReceiver.set(r, [...(perReceiver.get(r) ?? []), ev]);
        }
        continue;
      }
      flush();
      this.membership(a);
    }
    flush();
  }

  /** Ordered: as sent. Unordered: a random merge of the senders' FIFO streams. */
  private interleave(evs: SocketEvent[]): SocketEvent[] {
    const rng = this.options.rng;
    if (!rng) return evs;
    const bySender = new Map<string, SocketEvent[]>();
    for (const ev of evs) {
      const k = ev.type === 'message' ? `${ev.sender.nodeId}/${ev.sender.pid}/${ev.sender.port}` : '';
      bySender.set(k, [...(bySender.get(k) ?? []), ev]);
    }
    const streams = [...bySender.values()];
    const out: SocketEvent[] = [];
    while (streams.length > 0) {
      const i = Math.floor(rng() * streams.length);
      out.push(streams[i].shift() as SocketEvent);
      if (streams[i].length === 0) streams.splice(i, 1);
    }
    return out;
  }

  private membership(a: Exclude<Action, { type: 'send' }>): void {
    const group = a.type === 'bind' ? a.group : a.sock.group;
    if (group === undefined) return;
    const list = this.groups.get(group) ?? [];
    if (a.type === 'bind') {
      list.push(a.sock);
      a.sock.group = group;
    } else {
      const i = list.indexOf(a.sock);
      if (i < 0) return;
      list.splice(i, 1);
      a.sock.group = undefined;
    }
    this.groups.set(group, list);
    const members = list.map((s) => s.self).sort(cmp);
    const change = { member: a.sock.self, reason: a.type === 'bind' ? 'join' as const : a.reason };
    const ev: SocketEvent = {
      type: 'membership', group, kind: 'regular', ringId: { rep: 1, seq: 1 }, members,
      joined: a.type === 'bind' ? [change] : [], left: a.type === 'bind' ? [] : [change],
    };
    for (const s of list) s.push(ev);
  }
}

function cmp(a: Member, b: Member): number {
  return a.nodeId - b.nodeId || a.pid - b.pid || a.port - b.port;
}

export class BusSocket implements GroupSocket {
  group: string | undefined;
  private bindRequested = false;
  private readonly queue: SocketEvent[] = [];
  private wake: (() => void) | undefined;
  private closed = false;
  private listener: ((ev: SocketEvent) => void) | undefined;

  constructor(private readonly bus: OrderedBus, readonly self: Member) {}

  listen(listener: ((ev: SocketEvent) => void) | undefined): void {
    if (listener && this.wake) throw new ClusterError('EINVAL', 'a reader is waiting in for await: one reader at a time');
    this.listener = listener;
    this.feed();
  }

  /** The queued events to the listener, in order, while one is set. */
  private feed(): void {
    while (this.listener && this.queue.length > 0) callUser(this.listener, this.queue.shift() as SocketEvent);
  }

  push(...evs: SocketEvent[]): void {
    if (this.closed) return;
    if (this.queue.length + evs.length > EVENTS_MAX) throw new Error('test bus: a socket fell behind by a million events');
    this.queue.push(...evs);
    this.bus.delivered += evs.length;
    if (this.listener) queueMicrotask(() => this.feed()); // after the bus's step, not inside it
    else this.wake?.();
  }

  async bind(group: string, _options?: BindOptions): Promise<void> {
    if (this.bindRequested) throw new ClusterError('EADDRINUSE', 'this socket is already bound; unbind first');
    this.bindRequested = true;
    this.bus.enqueue({ type: 'bind', sock: this, group });
  }

  async unbind(): Promise<void> {
    if (!this.bindRequested) throw new ClusterError('ENOTCONN', 'not bound');
    this.bindRequested = false;
    this.bus.enqueue({ type: 'leave', sock: this, reason: 'leave' });
  }

  send(data: Uint8Array | string, options?: SendOptions): Promise<void>;
  send(data: Uint8Array | string, options: SendOptions, callback: SendCallback): void;
  send(data: Uint8Array | string, options?: SendOptions, callback?: SendCallback): Promise<void> | void {
    const p = this.sendNow(data, options);
    if (!callback) return p;
    settleTo(p, callback);
  }

  private async sendNow(data: Uint8Array | string, options?: SendOptions): Promise<void> {
    if (!this.bindRequested || this.closed) throw new ClusterError('ENOTCONN', 'bind the socket to a group first');
    const order = options?.order ?? 'agreed';
    if (!this.bus.ordered && order !== 'fifo') throw new ClusterError('EOPNOTSUPP', `this bus is unordered: it cannot give ${order} order`);
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    this.bus.enqueue({ type: 'send', sock: this, data: bytes.slice(), order });
  }

  async members(): Promise<Member[]> {
    if (this.group === undefined) throw new ClusterError('ENOTCONN', 'not bound');
    return this.bus.membersOf(this.group);
  }

  async localNode(): Promise<LocalNode> {
    return { nodeId: this.self.nodeId, driver: this.bus.ordered ? 'bus' : 'unordered-bus', ringId: { rep: 1, seq: 1 }, members: [this.self.nodeId] };
  }

  async quorum(): Promise<QuorumInfo> {
    return { state: { quorate: true, votes: 1, expected: 1, quorum: 1, flags: ['disabled'] }, nodes: [{ nodeId: this.self.nodeId, votes: 1, present: true }] };
  }

  /** The process died: no more sends, the stream ends (the bus announces procdown). */
  kill(): void {
    this.bindRequested = false;
    this.closed = true;
    this.wake?.();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.bindRequested) this.bus.enqueue({ type: 'leave', sock: this, reason: 'leave' });
    this.bindRequested = false;
    this.closed = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SocketEvent> {
    while (true) {
      if (this.listener) throw new ClusterError('EINVAL', 'a listener reads this socket; remove it to read with for await');
      const ev = this.queue.shift();
      if (ev !== undefined) { yield ev; continue; }
      if (this.closed) return;
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = undefined;
    }
  }
}
