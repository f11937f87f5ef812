// Whole-node simulation: on every simulated host, the real group layer (GroupService) and the real
// bridge state machine (BridgeCore) over the driver, and simulated client processes that speak
// the bridge protocol to it (HELLO version 3, BIND, one SEND at a time, CLOSE), all on the
// simulator's virtual clock and network with the same faults as the driver-level runs, plus the
// faults of clients: a process that dies, one that closes, one that stops reading (evicted for
// overrun), one that unbinds and binds again. Every client logs what it receives; the
// group-level checker (group-checker.ts) then judges virtual synchrony as clients see it: views
// named alike agree on members and messages, survivors end in one view and delivered the same,
// in one order, without duplicates or FIFO inversions.
import type { Member, Order } from '../core/api/types.ts';
import type { Configuration, DriverEntry } from '../core/driver/types.ts';
import { formatRingId } from '../core/driver/types.ts';
import { viewName } from './group-checker.ts';
import { GroupService } from '../core/groups/service.ts';
import { quorumOff } from '../core/quorum/quorum.ts';
import { BridgeCore, type BridgeHost } from '../core/af/server.ts';
import type { ClientChannel } from '../core/af/outbox.ts';
import { concatBytes } from '../core/wire/bytes.ts';
import { anchor, drop, own } from '../core/wire/lease.ts';
import { decodeDaemonDatagram, encodeRequest, OP, REPLY_BIT, type Request } from '../core/af/codec.ts';
import type { NodeConfig } from '../core/config/types.ts';
import { ERROR_NUMBERS } from '../core/api/errors.ts';
import { checkFaultLogs, type ClientLog, type DrillRecord, type FaultReport } from './group-checker.ts';
import type { Violation } from './checker.ts';
import { Rng } from './rng.ts';
import { SimBudgetError, Simulation, type NetworkOptions, type SimNode, type SimNodeContext } from './sim.ts';
import { timeScaleOf, type FaultMix } from './scenario.ts';

export interface WholeNodeOptions {
  readonly driver: DriverEntry<unknown>;
  readonly seed: number;
  /** Draw nodes (2..6), fault mix and rates from the seed. */
  readonly swarm?: boolean;
  readonly nodes?: number;
  readonly faults?: FaultMix;
  readonly driverOptions?: Record<string, unknown>;
  readonly timeScaleMs?: number;
  readonly maxEvents?: number;
  /** 'evs': judge total order and virtual synchrony whatever the driver declares (default 'declared'). */
  readonly check?: 'declared' | 'evs';
  readonly onNote?: (line: string) => void;
}

export interface WholeNodeResult {
  readonly seed: number;
  readonly nodes: number;
  readonly faults: FaultMix;
  readonly clients: number;
  /** How the clients ended: evicted for overrun, died, closed, or bound at the end. */
  readonly fates: Readonly<Record<'evicted' | 'dead' | 'closed' | 'bound', number>>;
  readonly violations: Violation[];
  readonly report: FaultReport | null;
  readonly convergedAt: number | null;
  readonly virtualMs: number;
  readonly traceHash: string;
}

const GROUP = 'g';
/** Small queues, so that a client that stops reading is evicted within the run. */
const LIMITS: NodeConfig['limits'] = {
  messageSizeMax: 60_000, socketsMax: 32, groupsMax: 4, groupNameMax: 32, recvQueueMax: 64,
  recvQueueBytesMax: 1 << 20, recvStallMs: 2000, membersMax: 64,
};
/** Datagrams a client that stops reading lets its kernel queue hold (net.unix.max_dgram_qlen). */
const SLOW_QUEUE = 10;
/** One way through a unix socket. */
const UNIX_MS = 0.01;
const END = 'end';

type ClientState = 'opening' | 'binding' | 'bound' | 'evicted' | 'closing' | 'closed' | 'dead';

/** A simulated client process: one cluster socket of group GROUP on its node's daemon. */
class SimClient {
  readonly path: string;
  readonly records: DrillRecord[] = [];
  self?: Member;
  state: ClientState = 'opening';
  slow = false;
  private nextId = 1;
  private seq = 0;
  private inFlight?: { id: number; text: string };
  private stopping = false;
  endSent = false;
  private readonly held: Uint8Array[] = [];
  /** The daemon's channel waits for this after 'again' (the kernel queue drained). */
  wake?: () => void;
  /** Times it stopped reading for less than recv_stall_ms (the stall rule must never evict it for
   *  them; the burst rule may, when its queue reached twice its bound meanwhile). */
  hiccups = 0;
  /** Set when the daemon evicted it (ENOBUFS) by the stall rule though it never stopped reading for good. */
  evictedWhileReading = false;
  /** The ENOBUFS event's message: which rule evicted it. */
  private evictedWhy = '';

  constructor(private readonly w: World, readonly name: string, readonly node: number, readonly pid: number, private readonly rate: number) {
    this.path = `/sim/${name}.sock`;
  }

  get live(): boolean { return this.state !== 'dead' && this.state !== 'closed'; }

  start(): void { this.request({ type: 'hello', id: 0, pid: this.pid, version: 3 }); }

  private request(req: Request): number {
    const id = this.nextId++;
    this.w.toDaemon(this, encodeRequest({ ...req, id } as Request));
    return id;
  }

  /** A datagram from the daemon (the channel's send): processed now, or held by a slow reader. */
  receive(bytes: Uint8Array): 'sent' | 'again' | string {
    if (!this.live) return 'ECONNREFUSED';
    if (this.slow) {
      if (this.held.length >= SLOW_QUEUE) return 'again';
      this.held.push(bytes.slice());
      return 'sent';
    }
    this.handle(bytes);
    return 'sent';
  }

  private handle(bytes: Uint8Array): void {
    const d = decodeDaemonDatagram(bytes);
    switch (d.type) {
      case 'batch': for (const item of d.items) this.handle(item); return;
      case 'reply': return this.onReply(d.reply.op & ~REPLY_BIT, d.reply.id, d.reply.status, d.reply);
      case 'event': return this.onEvent(d.event);
      case 'writable': return;
      case 'part': this.records.push({ type: 'other' }); return;
      case 'bad': throw new Error(`${this.name}: undecodable datagram from the daemon: ${d.reason}`);
    }
  }

  private onReply(op: number, id: number, status: number, reply: Extract<ReturnType<typeof decodeDaemonDatagram>, { type: 'reply' }>['reply']): void {
    if (op === OP.hello && status === 0 && reply.result.type === 'hello') {
      const h = reply.result.hello;
      this.self = { nodeId: h.nodeId, pid: h.pid, port: h.port };
      this.state = 'binding';
      this.request({ type: 'bind', id: 0, group: GROUP, selfDelivery: true });
    } else if (op === OP.bind) {
      if (status === 0) { this.state = 'bound'; this.scheduleSend(); }
      else this.w.after(5, () => { if (this.state === 'binding') this.request({ type: 'bind', id: 0, group: GROUP, selfDelivery: true }); });
    } else if (op === OP.send && this.inFlight?.id === id) {
      this.onSendReply(status);
    } else if (op === OP.close) {
      this.state = 'closed';
    }
  }

  private onSendReply(status: number): void {
    const f = this.inFlight!;
    this.inFlight = undefined;
    if (status === 0) {
      if (f.text.endsWith(`:${END}`)) this.endSent = true; else this.seq++;
      this.scheduleSend();
    } else if (status === ERROR_NUMBERS.EAGAIN) {
      this.w.after(this.w.rng.range(1, 10), () => this.sendNext());
    }
    // ENOBUFS, ENOTCONN: this socket is out of the group; it sends no more.
  }

  private onEvent(ev: import('../core/api/types.ts').SocketEvent): void {
    if (ev.type === 'membership') {
      this.records.push({
        type: 'membership', kind: ev.kind, ringId: formatRingId(ev.ringId), members: ev.members,
        ...(ev.viewId ? { viewId: viewName(ev.kind, ev.ringId, ev.viewId) } : {}),
      });
    } else if (ev.type === 'message') {
      this.records.push({ type: 'message', sender: ev.sender, text: new TextDecoder().decode(ev.data) });
    } else if (ev.type === 'error' && ev.code === 'ENOBUFS') {
      this.state = 'evicted';
      this.evictedWhy = ev.message;
    }
  }

  /** Marks an eviction by the stall rule of a client that never stopped reading for good (a
   *  hiccup at most). A hiccup during a burst (a merge, a paused node's backlog) may fill the
   *  queue to twice its bound: that eviction is the burst rule's, and allowed. */
  checkEviction(): void {
    if (this.state === 'evicted' && !this.everSlow && !this.evictedWhy.includes('reached twice its bound')) this.evictedWhileReading = true;
  }

  private scheduleSend(): void {
    if (this.state !== 'bound' || this.inFlight || this.endSent) return;
    const delay = this.stopping ? 0.1 : this.w.rng.exponential(1000 / this.rate);
    this.w.after(delay, () => this.sendNext());
  }

  private sendNext(): void {
    if (this.state !== 'bound' || this.inFlight || this.endSent || !this.live) return;
    const text = `${this.name}:${this.stopping ? END : this.seq}`;
    const data = new TextEncoder().encode(text);
    const id = this.nextId;
    this.inFlight = { id, text };
    this.request({ type: 'send', id: 0, order: this.w.order, data, resume: true });
  }

  /** The liveness phase: stop sending and send the fence "NAME:end". */
  stop(): void {
    this.stopping = true;
    if (!this.inFlight) this.scheduleSend();
  }

  close(): void {
    if (this.state !== 'bound') return;
    this.state = 'closing';
    this.request({ type: 'close', id: 0 });
  }

  unbindAndRebind(): void {
    if (this.state !== 'bound') return;
    this.state = 'binding';
    // A send still unanswered may or may not be delivered: never send its text again.
    if (this.inFlight) { this.inFlight = undefined; this.seq++; }
    this.request({ type: 'unbind', id: 0 });
    this.request({ type: 'bind', id: 0, group: GROUP, selfDelivery: true });
  }

  die(): void { this.state = 'dead'; }

  /** It stopped reading for good at some point (client-slow), not just a hiccup. */
  everSlow = false;

  /** Reads again: what its queue held first, then the daemon may send more. */
  unslow(): void {
    if (!this.slow) return;
    this.slow = false;
    for (const b of this.held.splice(0)) if (this.live) this.handle(b);
    this.wake?.();
  }
}

/** The daemon of one host incarnation: the group layer and the bridge over the simulator's driver. */
class SimDaemon implements SimNode {
  readonly groups: GroupService;
  readonly bridge: BridgeCore;
  private readonly held: (() => void)[] = [];

  constructor(private readonly w: World, readonly ctx: SimNodeContext) {
    const host: BridgeHost = {
      now: () => w.sim.now,
      defer: (fn) => w.after(0, () => this.run(fn)),
      connect: (path, onWritable): ClientChannel | string => {
        const c = w.clients.get(path);
        if (!c || !c.live) return 'ECONNREFUSED';
        c.wake = () => this.run(onWritable);
        return { send: (b) => c.receive(b instanceof Uint8Array ? b : concatBytes(b)), close: () => undefined };
      },
      sendTo: (path, bytes, onFailed) => { const c = w.clients.get(path); if (!c || c.receive(bytes) !== 'sent') onFailed(); },
      processAlive: (pid) => [...w.clients.values()].some((c) => c.pid === pid && c.state !== 'dead'),
      clientExists: (path) => w.clients.get(path)?.live ?? false,
      identify: (_path, pid) => ([...w.clients.values()].some((c) => c.pid === pid && c.state !== 'dead') ? { pid, uid: 0, gid: 0, groups: [0], verified: true } : 'ESRCH'),
    };
    this.groups = new GroupService({
      nodeId: ctx.nodeId, limits: LIMITS, guarantees: w.guarantees, driverName: 'sim', log: () => undefined,
      multicast: (p, o) => ctx.multicast(p, o), onWritable: () => this.bridge.writable(),
      quorum: quorumOff(w.nodes), now: () => w.sim.now,
    });
    this.bridge = new BridgeCore({
      nodeId: ctx.nodeId, driver: 'sim', groups: this.groups, runtimeStats: () => ({}), limits: LIMITS,
      messageSizeMax: LIMITS.messageSizeMax, log: () => undefined,
    }, host);
    const tick = (): void => { if (this.current()) { this.run(() => this.bridge.tick()); w.after(1000, tick); } };
    w.after(1000, tick);
  }

  /** Still the live incarnation of its host (a crash or restart replaces it). */
  current(): boolean {
    const h = this.w.sim.host(this.ctx.nodeId);
    return h.alive && h.incarnation === this.ctx.incarnation;
  }

  /** Runs work of the daemon's process: not while it is paused (held until resumed), never after it died. */
  run(fn: () => void): void {
    if (!this.current()) return;
    if (this.w.sim.host(this.ctx.nodeId).paused) { this.held.push(fn); return; }
    fn();
  }

  deliver(sender: number, payload: Uint8Array, order: Order): void { this.groups.deliver(sender, payload, order); }
  deliverParts(sender: number, parts: readonly Uint8Array[], order: Order): void { this.groups.deliverParts(sender, parts, order); }
  deliverAt(sender: number, frame: Uint8Array, start: number, end: number, order: Order): void { this.groups.deliverAt(sender, frame, start, end, order); }
  configuration(conf: Configuration): void { this.groups.configuration(conf); }
  writable(): void { this.groups.writable(); }
  resumed(): void { for (const fn of this.held.splice(0)) this.run(fn); }
}

class World {
  readonly clients = new Map<string, SimClient>();
  readonly daemons = new Map<number, SimDaemon>();
  readonly rng: Rng;
  sim!: Simulation;
  private nextPid = 1000;

  constructor(seed: number, readonly nodes: readonly number[], readonly guarantees: DriverEntry<unknown>['guarantees'], readonly order: Order) {
    this.rng = new Rng(seed).fork('clients');
  }

  after(ms: number, fn: () => void): void { this.sim.after(ms, fn); }

  daemon(ctx: SimNodeContext): SimDaemon {
    const d = new SimDaemon(this, ctx);
    this.daemons.set(ctx.nodeId, d);
    return d;
  }

  toDaemon(c: SimClient, bytes: Uint8Array): void {
    this.after(UNIX_MS, () => {
      const d = this.daemons.get(c.node);
      if (!c.live || !d) return;
      // As the daemon's shell does with the datagrams its native sockets read (core/af/bridge.ts):
      // the daemon's own copy, released once the bridge and the driver let go of it.
      d.run(() => {
        const copy = bytes.slice();
        own(copy);
        anchor(copy);
        try {
          d.bridge.datagram(copy, c.path);
        } finally {
          drop(copy);
        }
      });
    });
  }

  addClient(node: number, rate: number): SimClient {
    const pid = this.nextPid++;
    const c = new SimClient(this, `c${node}.${pid}`, node, pid, rate);
    this.clients.set(c.path, c);
    c.start();
    return c;
  }

  /** A node crashed: its daemon is gone, and so are the client processes on it. */
  nodeDown(node: number): void {
    for (const c of this.clients.values()) if (c.node === node) c.die();
  }

  logs(): ClientLog[] {
    const finalRing = (node: number): number[] | undefined => {
      const h = this.sim.host(node);
      return h.alive && h.driver ? this.daemons.get(node)?.groups.localNode().members as number[] : undefined;
    };
    return [...this.clients.values()].filter((c) => c.self).map((c) => ({
      name: c.name, self: c.self!, records: c.records,
      survivor: c.state === 'bound' && finalRing(c.node) !== undefined,
    }));
  }
}

interface Plan { nodes: number; faults: FaultMix; network: NetworkOptions; clientsPerNode: number; rate: number; episodes: number }

function plan(o: WholeNodeOptions, rng: Rng, safetyMs: number): Plan {
  const nodes = o.swarm ? rng.int(2, 6) : (o.nodes ?? 3);
  const faults: FaultMix = o.faults ?? (o.swarm ? rng.pick(['none', 'loss', 'all', 'all'] as const) : 'all');
  const network: NetworkOptions = { latencyMs: 0.1, jitterMs: 0.05, loss: 0, duplicate: 0 };
  if (faults !== 'none') {
    network.loss = rng.range(0, rng.chance(0.5) ? 0.1 : 0.02);
    network.duplicate = rng.range(0, 0.02);
    network.jitterMs = rng.pick([0.05, 0.2, 1]);
  }
  const clientsPerNode = rng.int(1, 2);
  // A few hundred messages a run, as the driver-level runs send: enough to cross every fault.
  const rate = rng.int(100, 600) / (nodes * clientsPerNode) / (safetyMs / 1000);
  return { nodes, faults, network, clientsPerNode, rate, episodes: faults === 'all' || faults === 'pause' ? rng.int(1, 4) : 0 };
}

/** One fault: of the network, a node or a client, undone after a while (the liveness phase heals the rest). */
function scheduleEpisode(w: World, rng: Rng, scale: number, safetyMs: number, note: (l: string) => void): void {
  const sim = w.sim;
  const at = rng.range(0, safetyMs * 0.8);
  const lasts = rng.range(0.2, 3) * scale;
  const kind = rng.pick(['partition', 'crash', 'pause', 'loss', 'client-crash', 'client-close', 'client-slow', 'client-rebind', 'client-hiccup'] as const);
  const say = (what: string) => note(`${sim.now.toFixed(3)} fault: ${what}`);
  sim.after(at, () => {
    if (sim.now >= safetyMs) return;
    const ids = sim.nodes;
    const clients = [...w.clients.values()].filter((c) => c.state === 'bound');
    switch (kind) {
      case 'partition': {
        const a = rng.shuffle(ids);
        const cut = rng.int(1, Math.max(1, a.length - 1));
        const groups = [a.slice(0, cut).sort((x, y) => x - y), a.slice(cut).sort((x, y) => x - y)].filter((g) => g.length);
        say(`partition ${groups.map((g) => `[${g.join(',')}]`).join(' ')} for ${lasts.toFixed(0)} ms`);
        sim.partition(groups);
        sim.after(lasts, () => { say('partition healed'); sim.partition([[...ids]]); });
        return;
      }
      case 'crash': {
        const id = rng.pick(ids);
        say(`crash node ${id}, restart after ${lasts.toFixed(0)} ms`);
        sim.crash(id);
        w.nodeDown(id);
        sim.after(lasts, () => { if (!sim.host(id).alive) { say(`restart node ${id}`); sim.restart(id); w.addClient(id, 20); } });
        return;
      }
      case 'pause': {
        const id = rng.pick(ids);
        say(`pause node ${id} for ${lasts.toFixed(0)} ms`);
        sim.pause(id);
        sim.after(lasts, () => { say(`resume node ${id}`); sim.resume(id); });
        return;
      }
      case 'loss': {
        const rate = rng.range(0.05, 0.4);
        say(`loss ${(rate * 100).toFixed(0)}% everywhere for ${lasts.toFixed(0)} ms`);
        const before = sim.network().loss ?? 0;
        sim.setNetwork({ loss: rate });
        sim.after(lasts, () => sim.setNetwork({ loss: before }));
        return;
      }
      default: {
        if (clients.length === 0) return;
        const c = rng.pick(clients);
        say(`${kind} ${c.name}`);
        if (kind === 'client-crash') c.die();
        else if (kind === 'client-close') c.close();
        else if (kind === 'client-slow') { c.slow = true; c.everSlow = true; }
        else if (kind === 'client-hiccup') {
          // Stops reading for a while, as a busy or paused process does, then catches up: its queue
          // may go past its bound, but it reads within recv_stall_ms, so it must stay a member.
          c.slow = true;
          const ms = rng.range(50, LIMITS.recvStallMs * 0.8);
          c.hiccups++;
          sim.after(ms, () => c.unslow());
        } else c.unbindAndRebind();
      }
    }
  });
}

/** Why the clients have not settled yet (undefined once they have): every survivor's last view
 *  lists exactly the survivors, and (with `fences`) every survivor holds every survivor's fence. */
function unsettled(w: World, fencesToo: boolean): string | undefined {
  const joining = [...w.clients.values()].find((c) => c.state === 'opening' || c.state === 'binding');
  if (joining) return `${joining.name} is still ${joining.state}`;
  const logs = w.logs().filter((l) => l.survivor);
  const key = (m: Member): string => `${m.nodeId}/${m.pid}/${m.port}`;
  const want = logs.map((l) => key(l.self)).sort().join(' ');
  const fences = logs.map((l) => `${l.name}:${END}`);
  for (const l of logs) {
    const last = [...l.records].reverse().find((r) => r.type === 'membership');
    if (!last || last.type !== 'membership') return `${l.name} has no view`;
    const members = last.members.map(key).sort().join(' ');
    if (last.kind !== 'regular' || members !== want) return `${l.name} is in ${last.kind} view ${last.viewId} [${members}], the survivors are [${want}]`;
    if (!fencesToo) continue;
    const texts = new Set(l.records.flatMap((r) => (r.type === 'message' ? [r.text] : [])));
    const lacking = fences.filter((f) => !texts.has(f));
    if (lacking.length) return `${l.name} lacks the fences ${lacking.join(', ')}`;
  }
  return undefined;
}

export function runWholeNodeSeed(o: WholeNodeOptions): WholeNodeResult {
  const scale = o.timeScaleMs ?? timeScaleOf(o.driver, o.driverOptions);
  const safetyMs = 6 * scale;
  const livenessMs = 40 * scale;
  const rng = new Rng(o.seed).fork('whole-node');
  const p = plan(o, rng, safetyMs);
  const note = o.onNote ?? (() => undefined);
  const nodes = Array.from({ length: p.nodes }, (_, i) => i + 1);
  const order: Order = o.driver.guarantees.agreed ? 'agreed' : 'fifo';
  const w = new World(o.seed, nodes, o.driver.guarantees, order);
  const sim = new Simulation({
    seed: o.seed, nodes: p.nodes, driver: o.driver, driverOptions: o.driverOptions, network: p.network,
    maxEvents: o.maxEvents ?? 2_000_000, maxQueued: 200_000, mtu: 1400, messageSizeMax: 64 * 1024,
    node: (ctx) => w.daemon(ctx),
  });
  w.sim = sim;
  note(`seed ${o.seed} (whole node): ${p.nodes} nodes, ${p.clientsPerNode} client(s) per node at ${p.rate.toFixed(1)} msg/s, faults ${p.faults}, network ${JSON.stringify(p.network)}`);
  const violations: Violation[] = [];
  let convergedAt: number | null = null;
  let report: FaultReport | null = null;
  try {
    sim.start();
    for (const n of nodes) for (let k = 0; k < p.clientsPerNode; k++) w.addClient(n, p.rate);
    for (let i = 0; i < p.episodes; i++) scheduleEpisode(w, rng, scale, safetyMs, note);
    sim.runFor(safetyMs);
    sim.heal();
    sim.setNetwork({ loss: 0, duplicate: 0 });
    for (const h of sim.hosts()) {
      if (h.paused) sim.resume(h.nodeId);
      if (!h.alive) sim.restart(h.nodeId);
    }
    for (const n of nodes) w.addClient(n, 20); // a newcomer on every node: joins after the faults, and survivors to compare
    for (const c of w.clients.values()) c.unslow();
    note(`${sim.now.toFixed(3)} liveness phase: healed; once the survivors share one view they stop and send their fences`);
    // unsettled() reads every client's log: ask it every few virtual milliseconds, not after every event.
    const settle = (fences: boolean): boolean => {
      let askAt = 0;
      return sim.runUntil(() => { if (sim.now < askAt) return false; askAt = sim.now + 5; return unsettled(w, fences) === undefined; }, livenessMs);
    };
    // A fence sent before the last merge stays in its component (EVS): send them in the final view.
    if (settle(false)) {
      for (const c of w.clients.values()) c.stop();
      if (settle(true)) convergedAt = sim.now;
    }
    if (convergedAt === null) {
      violations.push({ property: 'liveness', seed: o.seed, nodes: [], events: [], message: `clients did not settle within ${livenessMs} ms: ${unsettled(w, true)}` });
    }
    const evs = o.check === 'evs';
    report = checkFaultLogs(w.logs(), { totalOrder: evs || o.driver.guarantees.agreed, virtualSynchrony: evs || o.driver.guarantees.virtualSynchrony });
    for (const problem of report.problems) violations.push({ property: 'groups', seed: o.seed, nodes: [], events: [], message: problem });
    // A driver that threw anything but a ClusterError from a multicast of the group layer: the
    // layer took it for a refusal and went on (it logs it), so the run did not stop. Said first,
    // as the likely cause of the rest, rather than seen only as what it led to.
    const f = sim.failure;
    if (f) {
      violations.unshift({
        property: 'invariants', seed: o.seed, nodes: [f.node], events: [],
        message: `node ${f.node} at ${f.t.toFixed(3)} ms: ${f.error instanceof Error ? f.error.message : String(f.error)}`,
      });
    }
  } catch (e) {
    const f = sim.failure;
    violations.push({
      property: e instanceof SimBudgetError ? 'liveness' : 'invariants', seed: o.seed, nodes: f ? [f.node] : [], events: [],
      message: `${f ? `node ${f.node} at ${f.t.toFixed(3)} ms: ` : ''}${e instanceof Error ? e.message : String(e)}`,
    });
  }
  for (const c of w.clients.values()) {
    c.checkEviction();
    if (c.evictedWhileReading) {
      violations.push({ property: 'groups', seed: o.seed, nodes: [c.node], events: [], message: `${c.name} was evicted by the stall rule although it only paused reading for less than recv_stall_ms (${c.hiccups} time(s))` });
    }
  }
  const fates = { evicted: 0, dead: 0, closed: 0, bound: 0 };
  for (const c of w.clients.values()) if (c.state in fates) fates[c.state as keyof typeof fates]++;
  return {
    seed: o.seed, nodes: p.nodes, faults: p.faults, clients: w.clients.size, fates, violations, report, convergedAt,
    virtualMs: sim.now, traceHash: sim.traceHash(),
  };
}
