// An ideal in-process driver for testing the layers above drivers: a totally ordered bus per
// network component, with configuration changes (transitional + regular, as Totem reports
// them), partitions, merges, crashes and a bounded per-node send queue (EAGAIN, then
// writable()). It is a test double of the driver's upcall behaviour, not of any protocol.
import { ClusterError } from '../../core/api/errors.ts';
import type { Configuration, DriverUpcalls, Guarantees, MessageBytes, Order, RingId } from '../../core/driver/types.ts';
import { concatBytes } from '../../core/wire/bytes.ts';

export const ALL_GUARANTEES: Guarantees = { fifo: true, agreed: true, safe: true, virtualSynchrony: true };

interface Pending { readonly sender: number; readonly payload: Uint8Array; readonly order: Order }

interface Component {
  readonly members: number[];
  readonly ringId: RingId;
  readonly queue: Pending[];
}

export interface BusOptions {
  /** Messages one node may have waiting in the bus before multicast throws EAGAIN. */
  sendQueueMax?: number;
  /** Report transitional configurations (Totem does; a driver may not). Default true. */
  transitional?: boolean;
  guarantees?: Guarantees;
  messageSizeMax?: number;
  /** Deliver a message longer than this through deliverParts(), in pieces of at most this many
   *  bytes, as a driver does a message that spans frames (default: always whole). */
  fragmentBytes?: number;
}

/** `payload` as views of `size` bytes each (the last shorter), as a driver's fragments come. */
export function cutInto(payload: Uint8Array, size: number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < payload.length; at += size) pieces.push(payload.subarray(at, at + size));
  return pieces;
}

export class TestBus {
  private readonly upcalls = new Map<number, DriverUpcalls>();
  private components: Component[] = [];
  private seq = 0;
  private readonly blocked = new Set<number>();
  readonly guarantees: Guarantees;
  /** Messages delivered so far (each counted once, however many nodes got it). */
  delivered = 0;
  /** Names the upcall in progress the same way on every node: `m<index>` for a message,
   *  `c<ring seq>` for a configuration. Tests stamp events with it to compare them across nodes. */
  tick = '';

  constructor(private readonly opts: BusOptions = {}) {
    this.guarantees = opts.guarantees ?? ALL_GUARANTEES;
  }

  /** Registers a node's upcalls; nodes start alone until configure() puts them together. */
  attach(nodeId: number, up: DriverUpcalls): void {
    this.upcalls.set(nodeId, up);
  }

  /** The multicast function a GroupService gets for `nodeId`. */
  multicastFor(nodeId: number): (message: MessageBytes, order: Order) => void {
    return (message, order) => this.multicast(nodeId, message, order);
  }

  multicast(from: number, message: MessageBytes, order: Order): void {
    const payload = concatBytes(message instanceof Uint8Array ? [message] : message);
    if (!this.guarantees[order]) throw new ClusterError('EOPNOTSUPP', `bus cannot give ${order}`);
    if (payload.length > (this.opts.messageSizeMax ?? 1 << 20)) throw new ClusterError('EMSGSIZE', 'too big');
    const comp = this.componentOf(from);
    if (!comp) throw new ClusterError('ENOTCONN', `node ${from} is not in any component`);
    if (this.pendingOf(from) >= (this.opts.sendQueueMax ?? Infinity)) {
      this.blocked.add(from);
      throw new ClusterError('EAGAIN', 'bus send queue full');
    }
    comp.queue.push({ sender: from, payload, order });
  }

  /** Sets the network components. Messages still queued are delivered first in their old
   *  component (`flush`, the default), or carried into the sender's new component and delivered
   *  there after the new configuration (what Totem does with messages not yet on the ring). */
  configure(groups: number[][], opts: { flush?: boolean } = {}): void {
    const flush = opts.flush ?? true;
    if (flush) this.run();
    const carried = new Map<number, Pending[]>();
    for (const c of this.components) for (const p of c.queue) {
      const list = carried.get(p.sender) ?? [];
      list.push(p); carried.set(p.sender, list);
    }
    const old = new Map<number, Component>();
    for (const c of this.components) for (const n of c.members) old.set(n, c);
    const next = groups.map((g) => [...g].sort((a, b) => a - b)).filter((g) => g.length > 0)
      .map((members): Component => ({ members, ringId: { rep: members[0], seq: ++this.seq }, queue: [] }));
    this.components = next;
    // Carried messages were queued before the configuration, so they go out ahead of anything
    // the configuration makes the nodes send (the state exchange).
    for (const c of next) for (const n of c.members) c.queue.push(...(carried.get(n) ?? []));
    for (const c of next) this.announce(c, old);
  }

  /** A node crashes: it leaves its component (the rest get a configuration change) and hears nothing more. */
  crash(nodeId: number, opts: { flush?: boolean } = {}): void {
    const groups = this.components.map((c) => c.members.filter((n) => n !== nodeId));
    this.upcalls.delete(nodeId);
    this.configure(groups, opts);
  }

  /** Hands a raw payload to every member of the sender's component (for hostile-input tests). */
  inject(sender: number, payload: Uint8Array, order: Order = 'agreed'): void {
    const comp = this.componentOf(sender);
    if (comp) comp.queue.push({ sender, payload, order });
  }

  /** Delivers everything queued (including what deliveries queue), component by component. */
  run(maxSteps = 1_000_000): void {
    for (let i = 0; i < maxSteps; i++) if (!this.step()) return;
    throw new Error('bus did not go quiet');
  }

  /** Delivers one message per non-empty component; false when nothing was queued. */
  step(): boolean {
    let any = false;
    for (const c of this.components) {
      const p = c.queue.shift();
      if (!p) continue;
      any = true;
      this.tick = `m${this.delivered}`;
      const cut = this.opts.fragmentBytes ?? Infinity;
      for (const n of c.members) {
        // Each node gets its own copy, scribbled over after the call: a driver never writes a
        // payload again, but whoever keeps a view past the call (keeping a driver's frame alive,
        // where keepEvent() should have copied) shows garbage here.
        const up = this.upcalls.get(n);
        if (p.payload.length <= cut && up?.deliverAt && this.delivered % 2 === 1) {
          // Every other message as a driver's deliverAt() gives it: where it lies in a frame, with
          // other bytes around it (scribbled over after the call too).
          const frame = new Uint8Array(p.payload.length + 7).fill(0xaa);
          frame.set(p.payload, 3);
          up.deliverAt(p.sender, frame, 3, 3 + p.payload.length, p.order);
          frame.fill(0xee);
          continue;
        }
        const payload = p.payload.slice();
        if (payload.length > cut && up?.deliverParts) {
          up.deliverParts(p.sender, cutInto(payload, cut), p.order);
        } else {
          up?.deliver(p.sender, payload, p.order);
        }
        payload.fill(0xee);
      }
      this.delivered++;
    }
    this.wakeWriters();
    return any;
  }

  ringOf(nodeId: number): RingId | undefined {
    return this.componentOf(nodeId)?.ringId;
  }

  private announce(c: Component, old: Map<number, Component>): void {
    this.tick = `c${c.ringId.seq}`;
    for (const n of c.members) {
      const up = this.upcalls.get(n);
      if (!up) continue;
      const prev = old.get(n)?.members ?? [n];
      const trans = prev.filter((m) => c.members.includes(m));
      if ((this.opts.transitional ?? true) && trans.length < prev.length) {
        up.configuration(conf('transitional', c.ringId, trans, prev.filter((m) => !trans.includes(m)), []));
      }
      up.configuration(conf('regular', c.ringId, c.members,
        prev.filter((m) => !c.members.includes(m)), c.members.filter((m) => !prev.includes(m))));
    }
  }

  private wakeWriters(): void {
    for (const n of [...this.blocked]) {
      if (this.pendingOf(n) >= (this.opts.sendQueueMax ?? Infinity)) continue;
      this.blocked.delete(n);
      this.upcalls.get(n)?.writable?.();
    }
  }

  private pendingOf(n: number): number {
    let k = 0;
    for (const c of this.components) for (const p of c.queue) if (p.sender === n) k++;
    return k;
  }

  private componentOf(n: number): Component | undefined {
    return this.components.find((c) => c.members.includes(n));
  }
}

function conf(kind: 'regular' | 'transitional', ringId: RingId, members: number[], left: number[], joined: number[]): Configuration {
  const s = (a: number[]): number[] => [...a].sort((x, y) => x - y);
  return { kind, ringId, members: s(members), left: s(left), joined: s(joined) };
}
