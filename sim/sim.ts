// The deterministic simulator: N hosts on a virtual clock drive real drivers through DriverHost,
// over a seeded network that delays, reorders, drops, duplicates, partitions, cuts and clogs.
// One event queue ordered by (time, sequence number); no wall clock, no Math.random: one seed
// replays a run exactly (docs/TOTEM.md, "How it is tested").
import { AssertionError, assert, isClusterError } from '../core/api/errors.ts';
import type {
  Configuration, Driver, DriverCommon, DriverEntry, DriverHost, LogLevel, MessageBytes, Order, StateStore,
} from '../core/driver/types.ts';
import { FNV_OFFSET, fnvStep } from '../core/wire/hash.ts';
import { concatBytes } from '../core/wire/bytes.ts';
import { own, poisonRelease, setReleaser } from '../core/wire/lease.ts';
import { EventHeap } from './heap.ts';
import {
  hashBytes, makePayload, messageIdOf, traceHashOf,
  type DeliverEvent, type FaultEvent, type HostFaultEvent, type LogEvent, type NetFaultEvent, type NodeLog, type SendEvent,
} from './log.ts';
import { Rng } from './rng.ts';

export interface NetworkOptions {
  /** Base one-way delay (default 0.1 ms). */
  latencyMs?: number;
  /** Uniform extra delay in [0, jitterMs); makes datagrams overtake each other (default 0.05). */
  jitterMs?: number;
  /** Drop rate per datagram on every link without its own rate (0..1). */
  loss?: number;
  /** Probability that a datagram arrives twice. */
  duplicate?: number;
  /** Per-sender NIC serialization (undefined = infinite bandwidth). */
  bandwidthBytesPerMs?: number;
  /** 'all' costs N-1 sends of bandwidth ('udpu') or one ('multicast'). */
  transport?: 'udpu' | 'multicast';
  /** With a finite bandwidth: bytes a sender's NIC queue holds; beyond, datagrams are dropped
   *  as a full kernel send buffer would (default 1 MiB). */
  nicQueueBytes?: number;
}

/** What runs above the driver on one host incarnation (whole-node simulation: the group layer
 *  and the bridge): it gets the driver's upcalls instead of the simulator's logs. */
export interface SimNode {
  deliver(sender: number, payload: Uint8Array, order: Order): void;
  deliverParts?(sender: number, parts: readonly Uint8Array[], order: Order): void;
  deliverAt?(sender: number, frame: Uint8Array, start: number, end: number, order: Order): void;
  configuration(conf: Configuration): void;
  writable(): void;
  /** The host was resumed after a pause (work it held may go on). */
  resumed?(): void;
}

export interface SimNodeContext {
  readonly nodeId: number;
  readonly incarnation: number;
  /** driver.multicast() of this incarnation (throws what it throws). */
  multicast(message: MessageBytes, order: Order): void;
}

export interface SimOptions {
  seed: number;
  /** A count (ids 1..N) or explicit ids. */
  nodes: number | number[];
  driver: DriverEntry<unknown>;
  /** The driver's TOML-style section, parsed by driver.optionsSchema. */
  driverOptions?: Record<string, unknown>;
  /** Largest datagram a driver may transmit (default 1400). */
  mtu?: number;
  /** Largest application message (default 1 MiB). */
  messageSizeMax?: number;
  network?: NetworkOptions;
  /** driver.checkInvariants() after every step (default true). */
  checkInvariants?: boolean;
  /** Each datagram a node receives is memory of its own, released once its holders let go, as
   *  the daemon releases them (core/wire/lease.ts): released memory is overwritten, so a view
   *  read after its release delivers bytes the checkers see are wrong (default true). Process-wide:
   *  the newest simulation's choice holds. */
  releaseBuffers?: boolean;
  /** Receives every driver log line (default: kept in a short per-host ring, see driverLog()). */
  onDriverLog?: (node: number, level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;
  /** Datagrams a paused host or a clogged link holds before dropping (default 10000). */
  holdMax?: number;
  /** Events processed, or datagrams put on the wire, before the run is declared runaway (a
   *  datagram storm): throws SimBudgetError (default 20M). */
  maxEvents?: number;
  /** Events queued at once (datagrams in flight, timers) before the run is declared runaway
   *  (default 1M): bounds the simulator's memory. */
  maxQueued?: number;
  /** Whole-node simulation: builds what runs above each driver incarnation. */
  node?: (ctx: SimNodeContext) => SimNode;
}

export interface SimHostView {
  readonly nodeId: number;
  readonly alive: boolean;
  readonly paused: boolean;
  readonly left: boolean;
  readonly driver: Driver | null;
  /** 0 before the first start, then 1, 2, ... at each restart. */
  readonly incarnation: number;
}

export interface SimStats {
  /** Datagram copies put on the wire (one per destination). */
  datagrams: number;
  /** Datagrams handed to a driver. */
  received: number;
  /** Every copy that never arrived, whatever the cause. */
  dropped: number;
  droppedLoss: number;
  droppedPartition: number;
  droppedFilter: number;
  droppedCrash: number;
  droppedOverflow: number;
  duplicated: number;
  /** Held now on clogged links or by paused hosts. */
  held: number;
  events: number;
  sends: number;
  sendsRefused: number;
  deliveries: number;
  bytes: number;
}

export interface WorkloadOptions {
  /** Messages per second per node. */
  ratePerSec: number;
  /** Payload sizes to draw from (default [16, 64, 256, 1200, 5000]). */
  sizes?: number[];
  /** Orders to draw from (default: every order the driver guarantees). */
  orders?: Order[];
  /** Senders (default: every node). */
  nodes?: number[];
}

export interface SwizzleOptions {
  /** Nodes whose links may be clogged (default: all). */
  nodes?: number[];
  /** How many directed links to clog (default: a random number, at least 1). */
  links?: number;
  /** Delay between two clogs, and between two unclogs (default 10 ms). */
  stepMs?: number;
  /** How long every chosen link stays clogged after the last clog (default 100 ms). */
  holdMs?: number;
}

export type DatagramFilter = (from: number, to: number, bytes: Uint8Array) => boolean;

interface DgramEvent { type: 'dgram'; t: number; seq: number; from: number; to: number; epoch: number; bytes: Uint8Array }
interface TimerEvent { type: 'timer'; t: number; seq: number; node: number; gen: number }
interface AppEvent { type: 'app'; t: number; seq: number; node: number; gen: number }
interface CallEvent { type: 'call'; t: number; seq: number; fn: () => void }
type SimEvent = DgramEvent | TimerEvent | AppEvent | CallEvent;

/** The simulation ran past its event budget (SimOptions.maxEvents). */
export class SimBudgetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimBudgetError';
  }
}

/** In-memory durable state: survives restarts of the host (not of the simulation). */
export class MemoryStateStore implements StateStore {
  private readonly values = new Map<string, Uint8Array>();
  load(key: string): Uint8Array | undefined {
    const v = this.values.get(key);
    return v ? v.slice() : undefined;
  }
  save(key: string, value: Uint8Array): void {
    this.values.set(key, value.slice());
  }
  keys(): string[] {
    return [...this.values.keys()].sort();
  }
}

interface Host {
  readonly id: number;
  readonly index: number;
  readonly store: MemoryStateStore;
  readonly events: LogEvent[];
  readonly logRing: string[];
  started: boolean;
  alive: boolean;
  paused: boolean;
  left: boolean;
  incarnation: number;
  /** Bumped at each crash: datagrams addressed to an older epoch are lost. */
  epoch: number;
  driver: Driver | null;
  hostApi: SimDriverHost | null;
  /** Whole-node simulation: the layers above the driver of this incarnation. */
  node: SimNode | null;
  /** Upcalls into `node` under way: the driver is inside one of its calls, not at rest. */
  upcalls: number;
  timerGen: number;
  /** Time of the one live timer event in the queue (Infinity: none). */
  timerAt: number;
  deadline: number;
  timerDueOnResume: boolean;
  /** Consecutive handleTimeout calls at one instant: guards against busy-looping drivers. */
  spinCount: number;
  spinAt: number;
  inbox: DgramEvent[];
  counter: number;
  nicFreeAt: number;
}

const LOG_RING_MAX = 200;
const SPIN_MAX = 10_000;

/** The DriverHost one driver incarnation sees. */
class SimDriverHost implements DriverHost {
  readonly nodeId: number;
  readonly state: StateStore;
  private readonly random: Rng;
  constructor(private readonly sim: Simulation, private readonly host: Host, random: Rng) {
    this.nodeId = host.id;
    this.state = host.store;
    this.random = random;
  }
  now(): number {
    return this.sim.now;
  }
  rng(): number {
    return this.random.next();
  }
  transmit(to: number | 'all', bytes: Uint8Array): void {
    if (this.host.hostApi !== this) return; // a stale incarnation: its process is gone
    this.sim.transmitFrom(this.host, to, bytes);
  }
  deliver(sender: number, payload: Uint8Array, order: Order): void {
    if (this.host.hostApi !== this) return;
    const node = this.host.node;
    if (!node) { this.sim.logDeliver(this.host, sender, payload, order); return; }
    this.host.upcalls++;
    try { node.deliver(sender, payload, order); } finally { this.host.upcalls--; }
  }
  deliverAt(sender: number, frame: Uint8Array, start: number, end: number, order: Order): void {
    if (this.host.hostApi !== this) return;
    const node = this.host.node;
    if (!node?.deliverAt) { this.deliver(sender, frame.subarray(start, end), order); return; }
    this.host.upcalls++;
    try { node.deliverAt(sender, frame, start, end, order); } finally { this.host.upcalls--; }
  }
  deliverParts(sender: number, parts: readonly Uint8Array[], order: Order): void {
    if (this.host.hostApi !== this) return;
    const node = this.host.node;
    if (!node?.deliverParts) { this.deliver(sender, concatBytes(parts), order); return; }
    this.host.upcalls++;
    try { node.deliverParts(sender, parts, order); } finally { this.host.upcalls--; }
  }
  configuration(conf: Configuration): void {
    if (this.host.hostApi !== this) return;
    this.sim.logConf(this.host, conf);
    const node = this.host.node;
    if (!node) return;
    this.host.upcalls++;
    try { node.configuration(conf); } finally { this.host.upcalls--; }
  }
  writable(): void {
    // The workload simply retries later; the whole-node layers are told.
    const node = this.host.node;
    if (this.host.hostApi !== this || !node) return;
    this.host.upcalls++;
    try { node.writable(); } finally { this.host.upcalls--; }
  }
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    this.sim.driverLogLine(this.host, level, msg, fields);
  }
}

export class Simulation {
  readonly seed: number;
  /** The root PRNG; every stream in the simulation is forked from it. */
  readonly rng: Rng;
  private time = 0;
  private seqNo = 0;
  private readonly heap = new EventHeap<SimEvent>();
  private readonly hostList: Host[] = [];
  private readonly byId = new Map<number, Host>();
  private readonly nodeIds: number[];
  private readonly entry: DriverEntry<unknown>;
  private readonly driverOptions: unknown;
  private readonly mtu: number;
  private readonly messageSizeMax: number;
  private readonly checkInv: boolean;
  private readonly holdMax: number;
  private readonly maxEvents: number;
  private readonly maxQueued: number;
  private readonly onDriverLog: SimOptions['onDriverLog'];
  private readonly nodeFactory: SimOptions['node'];
  private net: Required<Omit<NetworkOptions, 'bandwidthBytesPerMs'>> & { bandwidthBytesPerMs?: number };
  private readonly netRng: Rng;
  private readonly appRng: Rng;
  private readonly faultRng: Rng;
  // Link state, indexed [fromIndex * N + toIndex].
  private readonly cut: Uint8Array;
  private readonly clogged: Uint8Array;
  private readonly linkLoss: Float64Array;
  private readonly group: Int32Array;
  private readonly clogHeld = new Map<number, DgramEvent[]>();
  private filter: DatagramFilter | null = null;
  private swizzleGen = 0;
  private readonly trace: LogEvent[] = [];
  private readonly faultLog: FaultEvent[] = [];
  private lastNet: NetFaultEvent | null = null;
  private netHash = FNV_OFFSET;
  private workloadGen = 0;
  private workloadOpts: Required<WorkloadOptions> | null = null;
  private readonly st: SimStats = {
    datagrams: 0, received: 0, dropped: 0, droppedLoss: 0, droppedPartition: 0, droppedFilter: 0,
    droppedCrash: 0, droppedOverflow: 0, duplicated: 0, held: 0, events: 0, sends: 0,
    sendsRefused: 0, deliveries: 0, bytes: 0,
  };
  /** The node and time of the driver call that threw, if one did. */
  failure: { node: number; t: number; error: unknown } | null = null;

  constructor(opts: SimOptions) {
    this.seed = opts.seed;
    this.rng = new Rng(opts.seed);
    this.netRng = this.rng.fork('network');
    this.appRng = this.rng.fork('application');
    this.faultRng = this.rng.fork('faults');
    const ids = typeof opts.nodes === 'number'
      ? Array.from({ length: opts.nodes }, (_, i) => i + 1)
      : [...new Set(opts.nodes)].sort((a, b) => a - b);
    assert(ids.length >= 1, 'a simulation needs at least one node');
    this.nodeIds = ids;
    this.entry = opts.driver;
    this.driverOptions = opts.driver.optionsSchema.parse(opts.driverOptions ?? {});
    this.mtu = opts.mtu ?? 1400;
    this.messageSizeMax = opts.messageSizeMax ?? 1024 * 1024;
    this.checkInv = opts.checkInvariants ?? true;
    setReleaser(opts.releaseBuffers === false ? undefined : poisonRelease);
    this.holdMax = opts.holdMax ?? 10_000;
    this.maxEvents = opts.maxEvents ?? 20_000_000;
    this.maxQueued = opts.maxQueued ?? 1_000_000;
    this.onDriverLog = opts.onDriverLog;
    this.nodeFactory = opts.node;
    this.net = { latencyMs: 0.1, jitterMs: 0.05, loss: 0, duplicate: 0, transport: 'udpu', nicQueueBytes: 1 << 20, ...opts.network };
    const n = ids.length;
    this.cut = new Uint8Array(n * n);
    this.clogged = new Uint8Array(n * n);
    this.linkLoss = new Float64Array(n * n).fill(NaN);
    this.group = new Int32Array(n);
    ids.forEach((id, index) => {
      const h: Host = {
        id, index, store: new MemoryStateStore(), events: [], logRing: [], started: false, alive: false,
        paused: false, left: false, incarnation: 0, epoch: 0, driver: null, hostApi: null, node: null, upcalls: 0, timerGen: 0,
        timerAt: Infinity, deadline: Infinity, timerDueOnResume: false, spinCount: 0, spinAt: -1,
        inbox: [], counter: 0, nicFreeAt: 0,
      };
      this.hostList.push(h);
      this.byId.set(id, h);
    });
    this.netChanged();
  }

  get now(): number {
    return this.time;
  }

  get nodes(): readonly number[] {
    return this.nodeIds;
  }

  get guarantees() {
    return this.entry.guarantees;
  }

  hosts(): SimHostView[] {
    return this.hostList.map((h) => this.view(h));
  }

  host(id: number): SimHostView {
    return this.view(this.get(id));
  }

  /** The live driver of a node (throws if the node is down). */
  driver(id: number): Driver {
    const d = this.get(id).driver;
    assert(d, `node ${id} has no running driver`);
    return d;
  }

  /** The per-node durable state (survives restarts). */
  stateStore(id: number): MemoryStateStore {
    return this.get(id).store;
  }

  /** The last driver log lines of a node (when no onDriverLog was given). */
  driverLog(id: number): string[] {
    return [...this.get(id).logRing];
  }

  private view(h: Host): SimHostView {
    return { nodeId: h.id, alive: h.alive, paused: h.paused, left: h.left, driver: h.driver, incarnation: h.incarnation };
  }

  private get(id: number): Host {
    const h = this.byId.get(id);
    if (!h) throw new RangeError(`node ${id} is not in this simulation (nodes: ${this.nodeIds.join(', ')})`);
    return h;
  }

  // ---- lifecycle -----------------------------------------------------------------------

  /** Start drivers (all nodes by default). Nodes already started are skipped. */
  start(ids: number[] = this.nodeIds): void {
    for (const id of ids) {
      const h = this.get(id);
      if (h.started) continue;
      h.started = true;
      this.boot(h);
    }
  }

  private boot(h: Host): void {
    h.alive = true;
    h.paused = false;
    h.left = false;
    h.incarnation++;
    h.spinCount = 0;
    const api = new SimDriverHost(this, h, this.rng.fork(`driver:${h.id}:${h.incarnation}`));
    h.hostApi = api;
    const common: DriverCommon = { nodeId: h.id, nodes: this.nodeIds, mtu: this.mtu, messageSizeMax: this.messageSizeMax };
    h.driver = null;
    h.node = null;
    this.guard(h, () => {
      h.driver = this.entry.create(common, this.driverOptions, api);
      if (this.nodeFactory) h.node = this.nodeFactory({ nodeId: h.id, incarnation: h.incarnation, multicast: (p, o) => this.nodeMulticast(h, api, p, o) });
      h.driver.start();
    });
    this.afterCall(h);
  }

  /** The whole-node layers' multicast: into this incarnation's driver, then its invariants
   *  checked and its timer re-armed. Not when the layers multicast from inside an upcall (a
   *  delivery evicts a reader and the group layer sends its leave): the driver is then in the
   *  middle of the call that made the upcall, where its invariants need not hold (a receive
   *  stream hands a frame up with the next one still buffered), and that call's own afterCall
   *  checks them once it returns. An assertion there would throw out of a multicast the driver
   *  took, and the layers would take it for a refusal. */
  private nodeMulticast(h: Host, api: SimDriverHost, message: MessageBytes, order: Order): void {
    if (h.hostApi !== api || !h.driver) throw new AssertionError(`node ${h.id}: a multicast from a stopped incarnation`);
    const d = h.driver;
    try {
      d.multicast(message, order);
    } catch (e) {
      throw isClusterError(e) ? e : this.failed(h, e);
    } finally {
      if (h.upcalls === 0) this.afterCall(h);
    }
  }

  /** Kill a node: in-flight and held datagrams to it are lost, its timers stop. Logs CRASH. */
  crash(id: number): void {
    const h = this.get(id);
    if (!h.alive) return;
    h.alive = false;
    h.paused = false;
    h.driver = null;
    h.hostApi = null;
    h.node = null;
    h.epoch++;
    h.timerGen++;
    h.timerAt = Infinity;
    h.deadline = Infinity;
    this.st.droppedCrash += h.inbox.length;
    this.st.dropped += h.inbox.length;
    this.st.held -= h.inbox.length;
    h.inbox = [];
    this.log(h, { type: 'crash', t: this.time, node: h.id });
    this.hostFault(h, 'crash');
  }

  /** Bring a crashed node back: a new driver object over the same StateStore. Logs RESTART. */
  restart(id: number): void {
    const h = this.get(id);
    assert(!h.alive, `restart(${id}): node is running; crash it first`);
    h.started = true;
    this.log(h, { type: 'restart', t: this.time, node: h.id, incarnation: h.incarnation + 1 });
    this.hostFault(h, 'restart');
    this.boot(h);
  }

  /** Like SIGSTOP: timers do not fire, inbound datagrams queue (up to holdMax). */
  pause(id: number): void {
    const h = this.get(id);
    if (!h.alive || h.paused) return;
    h.paused = true;
    this.hostFault(h, 'pause');
  }

  /** Like SIGCONT: queued datagrams arrive, in order, then a due timer fires. */
  resume(id: number): void {
    const h = this.get(id);
    if (!h.alive || !h.paused) return;
    h.paused = false;
    this.hostFault(h, 'resume');
    for (const ev of h.inbox) {
      ev.t = this.time;
      this.push(ev);
    }
    this.st.held -= h.inbox.length;
    h.inbox = [];
    h.timerDueOnResume = false;
    h.timerGen++;
    h.timerAt = Infinity;
    this.armTimer(h);
    h.node?.resumed?.();
  }

  /** driver.leave(): the node announces its departure and goes quiet. Logs LEAVE. */
  leave(id: number): void {
    const h = this.get(id);
    if (!h.alive || h.left) return;
    h.left = true;
    this.log(h, { type: 'leave', t: this.time, node: h.id });
    this.hostFault(h, 'leave');
    this.guard(h, () => h.driver?.leave());
    this.afterCall(h);
  }

  // ---- running -------------------------------------------------------------------------

  /** Process every event up to now + ms; the clock then reads now + ms. */
  runFor(ms: number): void {
    const end = this.time + ms;
    for (let ev = this.heap.peek(); ev && ev.t <= end; ev = this.heap.peek()) {
      this.heap.pop();
      this.dispatch(ev);
    }
    this.time = Math.max(this.time, end);
  }

  /** Run until pred() holds (checked after every event) or maxMs passes; false on timeout. */
  runUntil(pred: () => boolean, maxMs: number): boolean {
    if (pred()) return true;
    const end = this.time + maxMs;
    for (let ev = this.heap.peek(); ev && ev.t <= end; ev = this.heap.peek()) {
      this.heap.pop();
      this.dispatch(ev);
      if (pred()) return true;
    }
    this.time = Math.max(this.time, end);
    return pred();
  }

  /** Run fn at now + delayMs (for scripted scenarios). */
  after(delayMs: number, fn: () => void): void {
    this.push({ type: 'call', t: this.time + Math.max(0, delayMs), seq: 0, fn });
  }

  private push(ev: SimEvent): void {
    ev.seq = this.seqNo++;
    this.heap.push(ev);
    if (this.heap.size > this.maxQueued) this.overBudget(`queue limit of ${this.maxQueued} events`);
  }

  private overBudget(what: string): never {
    throw new SimBudgetError(`${what} exceeded at ${this.time.toFixed(3)} ms (${this.st.events} events, `
      + `${this.st.datagrams} datagrams sent, ${this.heap.size} queued): a datagram or timer storm`);
  }

  private dispatch(ev: SimEvent): void {
    this.time = ev.t;
    if (++this.st.events > this.maxEvents) this.overBudget(`event budget of ${this.maxEvents}`);
    switch (ev.type) {
      case 'dgram': return this.arrive(ev);
      case 'timer': return this.fireTimer(ev);
      case 'app': return this.appTick(ev);
      case 'call': return ev.fn();
    }
  }

  /** Run a rare driver call; remember which node threw so the report can name it. */
  private guard(h: Host, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      throw this.failed(h, e);
    }
  }

  /** Record the node whose driver threw (hot paths catch inline: no closure per event). */
  private failed(h: Host, e: unknown): unknown {
    this.failure ??= { node: h.id, t: this.time, error: e };
    return e;
  }

  private afterCall(h: Host): void {
    const d = h.driver;
    if (!d || !h.alive) return;
    if (this.checkInv) {
      try {
        d.checkInvariants();
      } catch (e) {
        throw this.failed(h, e);
      }
    }
    this.armTimer(h);
  }

  private armTimer(h: Host): void {
    const d = h.driver;
    if (!d) return;
    const deadline = d.nextDeadline();
    assert(typeof deadline === 'number' && !Number.isNaN(deadline),
      `node ${h.id}: nextDeadline() returned ${String(deadline)}`);
    h.deadline = deadline;
    if (h.paused || deadline === Infinity || deadline >= h.timerAt) return;
    // Only an earlier deadline needs a new event; a later one is re-armed when the old fires.
    h.timerGen++;
    h.timerAt = Math.max(deadline, this.time);
    this.push({ type: 'timer', t: h.timerAt, seq: 0, node: h.index, gen: h.timerGen });
  }

  private fireTimer(ev: TimerEvent): void {
    const h = this.hostList[ev.node];
    if (ev.gen !== h.timerGen || !h.alive || !h.driver) return;
    h.timerAt = Infinity;
    if (h.paused) {
      h.timerDueOnResume = true;
      return;
    }
    if (this.time < h.deadline) {
      this.armTimer(h);
      return;
    }
    if (h.spinAt === this.time) {
      if (++h.spinCount > SPIN_MAX) {
        throw this.failed(h, new AssertionError(`node ${h.id}: nextDeadline() stays <= now (${this.time}) after ${SPIN_MAX} handleTimeout calls`));
      }
    } else {
      h.spinAt = this.time;
      h.spinCount = 0;
    }
    const d = h.driver;
    try {
      d.handleTimeout();
    } catch (e) {
      throw this.failed(h, e);
    }
    this.afterCall(h);
  }

  // ---- network -------------------------------------------------------------------------

  /** Called by a host's transmit(). */
  transmitFrom(h: Host, to: number | 'all', bytes: Uint8Array): void {
    if (!h.alive) return;
    assert(bytes.length <= this.mtu, `node ${h.id} transmitted ${bytes.length} bytes > mtu ${this.mtu}`);
    const bw = this.net.bandwidthBytesPerMs;
    if (to === 'all') {
      const perCopy = this.net.transport === 'udpu';
      let dep = bw === undefined || perCopy ? this.time : this.serialize(h, bytes.length, bw);
      for (const target of this.hostList) {
        if (target === h) continue;
        if (bw !== undefined && perCopy) dep = this.serialize(h, bytes.length, bw);
        if (dep < 0) this.nicFull();
        else this.route(h, target, bytes, dep);
      }
      return;
    }
    const target = this.byId.get(to);
    assert(target, `node ${h.id} transmitted to unknown node ${to}`);
    const dep = bw === undefined ? this.time : this.serialize(h, bytes.length, bw);
    if (dep < 0) this.nicFull();
    else this.route(h, target, bytes, dep);
  }

  /** Departure time through the sender's NIC, or -1 when its queue is full (the datagram is lost). */
  private serialize(h: Host, len: number, bw: number): number {
    const start = Math.max(this.time, h.nicFreeAt);
    if ((start - this.time) * bw + len > this.net.nicQueueBytes) return -1;
    h.nicFreeAt = start + len / bw;
    return h.nicFreeAt;
  }

  private nicFull(): void {
    this.st.datagrams++;
    this.drop('droppedOverflow');
  }

  private route(from: Host, to: Host, bytes: Uint8Array, departure: number): void {
    const n = this.hostList.length;
    const link = from.index * n + to.index;
    if (++this.st.datagrams > this.maxEvents) this.overBudget(`datagram budget of ${this.maxEvents}`);
    this.st.bytes += bytes.length;
    if (this.filter && !this.filter(from.id, to.id, bytes)) return this.drop('droppedFilter');
    if (this.cut[link] || this.group[from.index] !== this.group[to.index]) return this.drop('droppedPartition');
    const own = this.linkLoss[link];
    const loss = Number.isNaN(own) ? this.net.loss : own;
    if (loss > 0 && this.netRng.chance(loss)) return this.drop('droppedLoss');
    this.sendCopy(link, from, to, bytes, departure);
    if (this.net.duplicate > 0 && this.netRng.chance(this.net.duplicate)) {
      this.st.duplicated++;
      this.sendCopy(link, from, to, bytes, departure);
    }
  }

  private sendCopy(link: number, from: Host, to: Host, bytes: Uint8Array, departure: number): void {
    const ev: DgramEvent = {
      type: 'dgram', t: departure + this.delay(), seq: 0, from: from.id, to: to.index, epoch: to.epoch,
      bytes: bytes.slice(),
    };
    if (this.clogged[link]) return this.hold(this.clogHeld, link, ev);
    this.push(ev);
  }

  private delay(): number {
    return this.net.latencyMs + (this.net.jitterMs > 0 ? this.netRng.next() * this.net.jitterMs : 0);
  }

  private hold(map: Map<number, DgramEvent[]>, link: number, ev: DgramEvent): void {
    let q = map.get(link);
    if (!q) map.set(link, (q = []));
    if (q.length >= this.holdMax) return this.drop('droppedOverflow');
    q.push(ev);
    this.st.held++;
  }

  private drop(reason: 'droppedLoss' | 'droppedPartition' | 'droppedFilter' | 'droppedCrash' | 'droppedOverflow'): void {
    this.st[reason]++;
    this.st.dropped++;
  }

  private arrive(ev: DgramEvent): void {
    const h = this.hostList[ev.to];
    if (!h.alive || h.epoch !== ev.epoch || !h.driver) return this.drop('droppedCrash');
    if (h.paused) {
      if (h.inbox.length >= this.holdMax) return this.drop('droppedOverflow');
      h.inbox.push(ev);
      this.st.held++;
      return;
    }
    this.st.received++;
    this.netHash = fnvStep(fnvStep(fnvStep(this.netHash, ev.from), h.id), ev.bytes.length);
    const d = h.driver;
    own(ev.bytes); // sendCopy's copy: this receiver's alone
    try {
      d.handleDatagram(ev.from, ev.bytes);
    } catch (e) {
      throw this.failed(h, e);
    }
    this.afterCall(h);
  }

  private linkIndex(from: number, to: number): number {
    return this.get(from).index * this.hostList.length + this.get(to).index;
  }

  /** Symmetric partition: links only inside each group; unlisted nodes are isolated alone. */
  partition(groups: number[][]): void {
    this.group.fill(-1);
    groups.forEach((g, gi) => {
      for (const id of g) this.group[this.get(id).index] = gi;
    });
    let next = groups.length;
    for (let i = 0; i < this.group.length; i++) if (this.group[i] === -1) this.group[i] = next++;
    this.netChanged();
  }

  /** Asymmetric cut: everything from -> to is dropped (to -> from still flows). */
  cutLink(from: number, to: number): void {
    this.cut[this.linkIndex(from, to)] = 1;
    this.netChanged();
  }

  restoreLink(from: number, to: number): void {
    this.cut[this.linkIndex(from, to)] = 0;
    this.netChanged();
  }

  /** Per-link loss rate, overriding the network's default for this direction. */
  setLinkLoss(from: number, to: number, rate: number): void {
    this.linkLoss[this.linkIndex(from, to)] = rate;
    this.netChanged();
  }

  /** Hold (not drop) datagrams from -> to until unclog (up to holdMax per link). */
  clog(from: number, to: number): void {
    this.clogged[this.linkIndex(from, to)] = 1;
    this.netChanged();
  }

  unclog(from: number, to: number): void {
    this.releaseLink(this.linkIndex(from, to));
    this.netChanged();
  }

  private releaseLink(link: number): void {
    this.clogged[link] = 0;
    const q = this.clogHeld.get(link);
    if (!q) return;
    this.clogHeld.delete(link);
    this.st.held -= q.length;
    for (const ev of q) {
      ev.t = this.time + this.delay();
      this.push(ev);
    }
  }

  /** FoundationDB's swizzle-clog: clog links one by one, then unclog them in random order. */
  swizzleClog(opts: SwizzleOptions = {}): void {
    const ids = opts.nodes ?? this.nodeIds;
    const all: [number, number][] = [];
    for (const a of ids) for (const b of ids) if (a !== b) all.push([a, b]);
    if (all.length === 0) return;
    const count = Math.min(all.length, opts.links ?? this.faultRng.int(1, all.length));
    const chosen = this.faultRng.shuffle(all).slice(0, count);
    const release = this.faultRng.shuffle(chosen);
    const step = opts.stepMs ?? 10;
    const hold = opts.holdMs ?? 100;
    // heal() ends the swizzle: steps still scheduled then do nothing.
    const gen = this.swizzleGen;
    chosen.forEach(([a, b], i) => this.after(i * step, () => { if (gen === this.swizzleGen) this.clog(a, b); }));
    const base = (count - 1) * step + hold;
    release.forEach(([a, b], i) => this.after(base + i * step, () => { if (gen === this.swizzleGen) this.unclog(a, b); }));
  }

  /** Remove every partition, cut, clog (held datagrams are released) and per-link loss, and end
   *  any swizzle-clog in progress. */
  heal(): void {
    this.swizzleGen++;
    this.group.fill(0);
    this.cut.fill(0);
    this.linkLoss.fill(NaN);
    for (let link = 0; link < this.clogged.length; link++) {
      if (this.clogged[link] || this.clogHeld.has(link)) this.releaseLink(link);
    }
    this.netChanged();
  }

  setNetwork(opts: Partial<NetworkOptions>): void {
    this.net = { ...this.net, ...opts };
    this.netChanged();
  }

  network(): Readonly<NetworkOptions> {
    return { ...this.net };
  }

  /** Datagram filter for protocol-aware faults: return false to drop. null removes it. */
  setFilter(f: DatagramFilter | null): void {
    this.filter = f;
    this.netChanged();
  }

  /** The faults applied so far, in time order: host faults, and the network's state after each
   *  change (the first entry is the network at construction). */
  faults(): readonly FaultEvent[] {
    return this.faultLog;
  }

  private hostFault(h: Host, what: HostFaultEvent['what']): void {
    this.faultLog.push({ type: 'host', t: this.time, node: h.id, what });
  }

  /** Records the network's state when it differs from the last one recorded. */
  private netChanged(): void {
    const byGroup = new Map<number, number[]>();
    this.hostList.forEach((h, i) => {
      const g = byGroup.get(this.group[i]);
      if (g) g.push(h.id);
      else byGroup.set(this.group[i], [h.id]);
    });
    const groups = [...byGroup.values()].sort((a, b) => a[0] - b[0]);
    const ev: NetFaultEvent = {
      type: 'net', t: this.time, groups, loss: this.net.loss,
      linkFaults: this.cut.some((x) => x !== 0) || this.clogged.some((x) => x !== 0) || this.linkLoss.some((x) => !Number.isNaN(x)),
      filter: this.filter !== null, finiteNic: this.net.bandwidthBytesPerMs !== undefined,
    };
    const l = this.lastNet;
    if (l && l.loss === ev.loss && l.linkFaults === ev.linkFaults && l.filter === ev.filter && l.finiteNic === ev.finiteNic
      && JSON.stringify(l.groups) === JSON.stringify(ev.groups)) return;
    this.lastNet = ev;
    this.faultLog.push(ev);
  }

  // ---- application ---------------------------------------------------------------------

  /**
   * Multicast one application message from node `from`; logs SEND when the driver accepted it.
   * `payload` is the bytes to send, or a size for a generated payload (unique id: node,
   * incarnation, counter; default 64 bytes). Returns 'ok' or the error code, never throws one.
   */
  send(from: number, order?: Order, payload?: Uint8Array | number): 'ok' | string {
    const h = this.get(from);
    if (!h.alive || !h.driver || h.left) return 'ENOTCONN';
    if (h.paused) return 'EAGAIN';
    const ord = order ?? this.defaultOrders()[0];
    const bytes = payload instanceof Uint8Array
      ? payload
      : makePayload({ node: h.id, incarnation: h.incarnation, counter: ++h.counter }, payload ?? 64);
    const payloadHash = hashBytes(bytes);
    const ev: SendEvent = {
      type: 'send', t: this.time, node: h.id, id: messageIdOf(bytes, payloadHash), order: ord, payloadHash,
      size: bytes.length,
    };
    // Logged before the call: a driver may deliver to itself inside multicast().
    this.log(h, ev);
    const d = h.driver;
    try {
      d.multicast(bytes, ord);
    } catch (e) {
      if (!isClusterError(e)) throw this.failed(h, e);
      this.unlog(h, ev);
      this.st.sendsRefused++;
      this.afterCall(h);
      return e.code;
    }
    this.st.sends++;
    this.afterCall(h);
    return 'ok';
  }

  /** The orders the driver guarantees, strongest first ('agreed' if it guarantees none). */
  defaultOrders(): Order[] {
    const g = this.entry.guarantees;
    const out: Order[] = [];
    if (g.agreed) out.push('agreed');
    if (g.safe) out.push('safe');
    if (g.fifo) out.push('fifo');
    return out.length ? out : ['agreed'];
  }

  /** Background workload: each sender multicasts at ratePerSec (Poisson); null stops it. */
  workload(opts: WorkloadOptions | null): void {
    const gen = ++this.workloadGen;
    if (!opts) {
      this.workloadOpts = null;
      return;
    }
    this.workloadOpts = {
      ratePerSec: opts.ratePerSec,
      sizes: opts.sizes ?? [16, 64, 256, 1200, 5000],
      orders: opts.orders ?? this.defaultOrders(),
      nodes: opts.nodes ?? this.nodeIds,
    };
    if (opts.ratePerSec <= 0) return;
    for (const id of this.workloadOpts.nodes) {
      const h = this.get(id);
      this.push({ type: 'app', t: this.time + this.appRng.exponential(1000 / opts.ratePerSec), seq: 0, node: h.index, gen });
    }
  }

  private appTick(ev: AppEvent): void {
    const w = this.workloadOpts;
    if (ev.gen !== this.workloadGen || !w) return;
    const h = this.hostList[ev.node];
    // Draw before checking liveness so that the streams do not depend on who is up.
    const size = this.appRng.pick(w.sizes);
    const order = this.appRng.pick(w.orders);
    if (h.alive && !h.paused && !h.left) this.send(h.id, order, Math.min(size, this.messageSizeMax));
    ev.t = this.time + this.appRng.exponential(1000 / w.ratePerSec);
    this.push(ev);
  }

  // ---- logs ----------------------------------------------------------------------------

  private log(h: Host, e: LogEvent): void {
    h.events.push(e);
    this.trace.push(e);
  }

  private unlog(h: Host, e: LogEvent): void {
    const i = h.events.lastIndexOf(e);
    if (i >= 0) h.events.splice(i, 1);
    const j = this.trace.lastIndexOf(e);
    if (j >= 0) this.trace.splice(j, 1);
  }

  /** Called by a host's deliver(). */
  logDeliver(h: Host, sender: number, payload: Uint8Array, order: Order): void {
    const payloadHash = hashBytes(payload);
    const ev: DeliverEvent = {
      type: 'deliver', t: this.time, node: h.id, id: messageIdOf(payload, payloadHash), sender, order,
      payloadHash, size: payload.length,
    };
    this.st.deliveries++;
    this.log(h, ev);
  }

  /** Called by a host's configuration(). */
  logConf(h: Host, c: Configuration): void {
    this.log(h, {
      type: 'conf', t: this.time, node: h.id, kind: c.kind, ringId: { rep: c.ringId.rep, seq: c.ringId.seq },
      members: [...c.members], left: [...c.left], joined: [...c.joined],
    });
  }

  driverLogLine(h: Host, level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (this.onDriverLog) return this.onDriverLog(h.id, level, msg, fields);
    if (h.logRing.length >= LOG_RING_MAX) h.logRing.shift();
    h.logRing.push(`${this.time.toFixed(3)} ${level} ${msg}${fields ? ' ' + JSON.stringify(fields) : ''}`);
  }

  /** Per-node event logs, ascending node id. */
  logs(): NodeLog[] {
    return this.hostList.map((h) => ({ node: h.id, events: h.events }));
  }

  /** Every logged event, in the order they happened across nodes. */
  events(): readonly LogEvent[] {
    return this.trace;
  }

  /** A stable hash of every event in order plus the datagram arrivals: same seed, same hash. */
  traceHash(): string {
    return traceHashOf(this.trace, `net:${this.netHash}:${this.st.received}:${this.st.dropped}`);
  }

  stats(): SimStats {
    return { ...this.st };
  }
}
