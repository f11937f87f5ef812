// Runs a pure driver in the real world: monotonic clock, one timer re-armed to the driver's
// next deadline after every call into it, crypto randomness, durable state files, and a UDP
// transport whose datagrams are sealed by core/crypto. Input from the network can never crash
// the process: a driver exception on a datagram is logged and counted. A datagram the sealer
// drops (not ours, not authentic, a replay: docs/SECURITY.md) never reaches the driver; it is
// counted, and logged at most once per source per 10 s.
import { isIPv6 } from 'node:net';
import { ClusterError } from '../api/errors.ts';
import type { NodeConfig, NodeEntry } from '../config/types.ts';
import { cryptoReady, createSealer, SEAL_PAYLOAD_MAX, TO_ALL, type Sealer } from '../crypto/sealer.ts';
import { readKeyFile } from '../crypto/keyfile.ts';
import { nextIncarnation } from '../crypto/incarnation.ts';
import { dropIsLogged, explainDrop } from '../crypto/explain.ts';
import type { StateStore } from '../driver/types.ts';
import { RateLimiter } from '../transport/ratelimit.ts';
import type { DriverRegistry } from '../driver/registry.ts';
import type { Configuration, Driver, DriverCommon, DriverHost, DriverUpcalls, LogLevel, MessageBytes, Order } from '../driver/types.ts';
import { openUdpTransport, SOCKET_BUFFER_BYTES } from '../transport/udp.ts';
import { resolveMtu, type ResolvedMtu } from '../transport/mtu.ts';
import type { Transport } from '../transport/types.ts';
import { createCryptoRng, createHostClock, FileStateStore, type HostClock } from './host.ts';
import { plainBytes, type ByteParts } from '../wire/bytes.ts';
import { anchor, drop, dropParts, own } from '../wire/lease.ts';

export type RuntimeLog = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface RuntimeOptions {
  readonly config: NodeConfig;
  readonly registry: DriverRegistry;
  readonly upcalls: DriverUpcalls;
  readonly log?: RuntimeLog;
  /** The datagram transport to run over, already open (tests wrap one to watch or inject
   *  datagrams); the runtime closes it on stop. Default: UDP as the config says. */
  readonly transport?: Transport;
}

export interface Runtime {
  readonly driver: Driver;
  readonly nodeId: number;
  /** Passes to driver.multicast: throws its EAGAIN / EMSGSIZE / EOPNOTSUPP; ENOTCONN once stopped. */
  multicast(message: MessageBytes, order: Order): void;
  stats(): Record<string, unknown>;
  /** A new node list (a reload): the driver and the transport take it, or EOPNOTSUPP when the
   *  driver cannot change its list at run time (then nothing changed). */
  setNodes(nodes: readonly NodeEntry[]): void;
  /** With leave: the driver announces its departure and those datagrams leave before the sockets close. */
  stop(opts?: { leave?: boolean }): Promise<void>;
}

/** IPv4 + UDP headers, IPv6 + UDP headers. */
const IP_UDP_OVERHEAD_V4 = 28;
const IP_UDP_OVERHEAD_V6 = 48;
/** setTimeout's largest delay. */
const TIMER_MAX_MS = 2_147_483_647;
/** After handleTimeout threw, wait this long before trying again (no hot loop on a broken driver). */
const TIMEOUT_ERROR_BACKOFF_MS = 100;

/** State key of the replay marks saved at a stop (core/crypto/replay.ts). */
const REPLAY_MARKS_STATE_KEY = 'replay-marks';

/** Loads the key named in the config (if any), chooses this start's incarnation (saved in
 *  `state`, node.state_dir), builds the sealer and gives it the replay marks the last stop saved. */
export async function buildSealer(config: NodeConfig, state: StateStore, log: RuntimeLog = () => undefined): Promise<Sealer> {
  const key = config.crypto.keyFile === undefined ? undefined : readKeyFile(config.crypto.keyFile);
  if (key === undefined) {
    log('warn', 'no [crypto] key_file: datagrams are NOT encrypted or authenticated; anyone on the network can read, forge and replay cluster traffic (make a key with: afcluster keygen --out FILE)');
  } else {
    await cryptoReady();
  }
  const incarnation = nextIncarnation(state, Date.now());
  const sealer = createSealer({ clusterName: config.cluster.name, nodeId: config.node.id,
    nodes: config.cluster.nodes.map((n) => n.id), incarnation, ...(key ? { key } : {}) });
  const marks = state.load(REPLAY_MARKS_STATE_KEY);
  if (marks) sealer.restoreMarks(marks);
  return sealer;
}

/** Datagrams of the MTU the UDP receive buffer should hold, counted as the kernel reports it
 *  (twice the bytes asked for): totem's window_bytes (1 MiB) is 16 frames of 64 KiB. */
const RCVBUF_FRAMES = 32;

/** The network's MTU at this node: cluster.mtu, or with "auto" the MTU of the interface that
 *  holds the node's own address (its entry in cluster.nodes). */
export function networkMtu(config: NodeConfig): ResolvedMtu {
  const own = config.cluster.nodes.find((n) => n.id === config.node.id)?.addr.host ?? config.node.listen.host;
  return resolveMtu(config.cluster.mtu, own);
}

/** The largest datagram a driver may transmit on a network of this MTU with this sealer. */
export function driverMtu(config: NodeConfig, sealer: Sealer, mtu: number): number {
  const ip = isIPv6(config.node.listen.host) ? IP_UDP_OVERHEAD_V6 : IP_UDP_OVERHEAD_V4;
  return Math.min(mtu - ip - sealer.overheadBytes, SEAL_PAYLOAD_MAX);
}

export async function startRuntime(opts: RuntimeOptions): Promise<Runtime> {
  const log = opts.log ?? (() => undefined);
  const entry = opts.registry.get(opts.config.cluster.driver);
  const options = driverOptions(opts.config, entry.optionsSchema);
  const state = FileStateStore.open(opts.config.node.stateDir);
  let sealer: Sealer;
  try {
    sealer = await buildSealer(opts.config, state, log);
  } catch (e) {
    await opts.transport?.close(); // ours to close, as on stop
    throw e;
  }
  const transport = opts.transport ?? await openUdpTransport({ config: opts.config, log });
  try {
    const rt = new NodeRuntime(opts, log, sealer, transport, state);
    rt.start((common, host) => entry.create(common, options, host));
    return rt;
  } catch (e) {
    await transport.close();
    throw e;
  }
}

function driverOptions(config: NodeConfig, schema: { safeParse(v: unknown): { success: boolean; data?: unknown } }): unknown {
  const name = config.cluster.driver;
  if (config.drivers[name] !== undefined) return config.drivers[name];
  const r = schema.safeParse({});
  if (!r.success) throw new ClusterError('EINVAL', `${config.file}: [${name}] options are missing and have no defaults`);
  return r.data;
}

class NodeRuntime implements Runtime {
  readonly nodeId: number;
  private drv: Driver | undefined;
  private readonly clock: HostClock = createHostClock();
  /** Armed for a deadline ahead: a Timeout; for one already come: an Immediate (Node rounds
   *  setTimeout(0) up to 1 ms). At most one of the two is set. */
  private timer: { kind: 'timeout'; handle: NodeJS.Timeout } | { kind: 'immediate'; handle: NodeJS.Immediate } | undefined;
  private armedFor = Infinity;
  private notBefore = 0;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private readonly counters = {
    datagramsIn: 0, handleDatagramErrors: 0, timeouts: 0, handleTimeoutErrors: 0, upcallErrors: 0,
    transmits: 0, transmitsOversize: 0, transmitsAfterStop: 0,
  };
  /** Sealer drops worth a line: one per source per 10 s. */
  private readonly dropLog = new RateLimiter<number>({ now: () => this.clock.now() });
  /** Node id -> "127.0.0.2:5405 (node 2)": the only sources the transport lets through. */
  private readonly sources = new Map<number, string>();
  private readonly fire = (): void => this.onTimer();

  constructor(private readonly opts: RuntimeOptions, private readonly log: RuntimeLog, private readonly sealer: Sealer,
    private readonly transport: Transport, private readonly state: FileStateStore) {
    this.nodeId = opts.config.node.id;
    for (const n of opts.config.cluster.nodes) this.sources.set(n.id, `${n.addr.host}:${n.addr.port} (node ${n.id})`);
  }

  get driver(): Driver {
    if (!this.drv) throw new ClusterError('ENOTCONN', 'the driver is not created yet');
    return this.drv;
  }

  start(create: (common: DriverCommon, host: DriverHost) => Driver): void {
    const c = this.opts.config;
    const net = networkMtu(c);
    const common: DriverCommon = {
      nodeId: c.node.id, nodes: c.cluster.nodes.map((n) => n.id).sort((a, b) => a - b),
      mtu: driverMtu(c, this.sealer, net.mtu), messageSizeMax: c.limits.messageSizeMax,
      headroom: this.sealer.headroom,
    };
    this.drv = create(common, this.host());
    this.transport.onDatagram((from, bytes) => this.onDatagram(from, bytes));
    this.drv.start();
    this.log('info', 'node started', { nodeId: c.node.id, driver: this.drv.name, listen: `${c.node.listen.host}:${c.node.listen.port}`,
      transport: c.cluster.transport, encrypted: this.sealer.encrypted, incarnation: this.sealer.incarnation,
      networkMtu: net.mtu, mtuFrom: net.source, mtu: common.mtu });
    const rcvbuf = this.transport.stats().recvBufferBytes;
    if (rcvbuf > 0 && rcvbuf < RCVBUF_FRAMES * net.mtu) {
      this.log('warn', `the UDP receive buffer is ${rcvbuf} bytes, less than ${RCVBUF_FRAMES / 2} datagrams of this MTU (${net.mtu}): a burst may overflow it and cost retransmissions; raise net.core.rmem_max to ${SOCKET_BUFFER_BYTES} or more (sysctl), or set a smaller cluster.mtu`,
        { recvBufferBytes: rcvbuf, networkMtu: net.mtu });
    }
    this.rearm();
  }

  private host(): DriverHost {
    const up = this.opts.upcalls;
    const rng = createCryptoRng();
    // An upcall that throws must not unwind through the driver and leave it half-updated.
    const upcallThrew = (name: string, e: unknown): void => {
      this.counters.upcallErrors++;
      this.log('error', `${name} upcall threw`, { error: String(e) });
    };
    const deliverAt = up.deliverAt;
    const guard = <A extends unknown[]>(name: string, f: ((...a: A) => void) | undefined) => (...a: A): void => {
      if (!f) return;
      try {
        f(...a);
      } catch (e) {
        upcallThrew(name, e);
      }
    };
    return {
      nodeId: this.nodeId,
      now: () => this.clock.now(),
      rng,
      transmit: (to, bytes, reserved) => this.transmit(to, bytes, reserved === true),
      state: this.state,
      log: this.log,
      // The per-message upcalls written out: no rest array per call.
      deliver: (sender, payload, order) => {
        try { up.deliver(sender, payload, order); } catch (e) { upcallThrew('deliver', e); }
      },
      ...(up.deliverParts ? { deliverParts: guard('deliverParts', up.deliverParts.bind(up)) } : {}),
      ...(deliverAt ? {
        deliverAt: (sender: number, frame: Uint8Array, start: number, end: number, order: Order) => {
          try { deliverAt.call(up, sender, frame, start, end, order); } catch (e) { upcallThrew('deliverAt', e); }
        },
      } : {}),
      configuration: guard<[Configuration]>('configuration', up.configuration.bind(up)),
      writable: guard('writable', up.writable?.bind(up)),
    };
  }

  /** `reserved`: the sealer's header goes into the room the driver left in front (DriverHost.transmit). */
  private transmit(to: number | 'all', bytes: Uint8Array, reserved: boolean): void {
    if (this.stopped) {
      this.counters.transmitsAfterStop++;
      return;
    }
    if (bytes.length > SEAL_PAYLOAD_MAX) {
      this.counters.transmitsOversize++;
      this.log('error', 'driver transmitted a datagram larger than UDP allows; dropped', { bytes: bytes.length });
      return;
    }
    this.counters.transmits++;
    const sealed = this.sealer.sealParts(bytes, to === 'all' ? TO_ALL : to, reserved);
    // With a key, the ciphertext is memory the sealer made for this send: released once sent, or
    // once it leaves the send queue that holds it (core/wire/lease.ts).
    const made = this.sealer.encrypted ? anchorMade(sealed, bytes) : undefined;
    try {
      if (to === 'all') this.transport.broadcast(sealed);
      else this.transport.send(to, sealed);
    } finally {
      if (made) dropParts(made);
    }
  }

  private onDatagram(from: number, bytes: Uint8Array): void {
    if (this.stopped || !this.drv) return;
    const plain = this.sealer.open(bytes, from);
    if (plain === undefined) {
      this.reportDrop(from, bytes); // counted by the sealer
      spent(bytes);
      return;
    }
    this.counters.datagramsIn++;
    // A plaintext the sealer made in memory of its own (not a view of the datagram, nor of a
    // shared pool) goes back once its holders let go, as the datagram would (core/wire/lease.ts);
    // the ciphertext it came in is then read by no one: it goes back now. (Without a key the
    // datagram is the plaintext, and the driver's holders decide.)
    if (plain.buffer !== bytes.buffer) {
      own(plain);
      spent(bytes);
    }
    try {
      // A plain view: the driver cuts several views per message, and a Buffer's are Node's (slower).
      this.drv.handleDatagram(from, plainBytes(plain));
    } catch (e) {
      this.counters.handleDatagramErrors++;
      this.log('error', 'driver failed on a datagram; dropped it', { from, bytes: plain.length, error: errorText(e) });
    }
    this.rearm();
  }

  private reportDrop(from: number, bytes: Uint8Array): void {
    const reason = this.sealer.lastDrop;
    if (reason === undefined || !dropIsLogged(reason)) return;
    const suppressed = this.dropLog.take(from);
    if (suppressed === undefined) return;
    const source = this.sources.get(from) ?? `node ${from}`;
    const c = this.opts.config;
    this.log('warn', explainDrop(reason, bytes, { source, from, nodeId: this.nodeId, clusterName: c.cluster.name,
      encrypted: this.sealer.encrypted, knownIncarnation: this.sealer.peerIncarnation(from) }),
    { from, source, reason, bytes: bytes.length, suppressed });
  }

  /** One timer, armed no later than the driver's deadline; an early firing just re-arms. */
  private rearm(): void {
    if (this.stopped || !this.drv) return;
    const deadline = Math.max(this.drv.nextDeadline(), this.notBefore);
    if (!(deadline < Infinity)) {
      this.clearTimer();
      return;
    }
    // An armed timer due no later serves, unless it is a timeout and the deadline is now: Node
    // fires a timeout up to a millisecond after its time, and work due now must not wait for it.
    // The deadline it was armed for, unchanged, needs no clock read: this runs after every
    // message a client sends, and a stream's deadlines stay put between token visits.
    if (this.timer && this.armedFor <= deadline) {
      if (this.timer.kind === 'immediate' || deadline === this.armedFor) return;
      if (deadline > this.clock.now()) return;
    }
    const now = this.clock.now();
    this.clearTimer();
    const delay = Math.min(Math.max(0, Math.ceil(deadline - now)), TIMER_MAX_MS);
    this.armedFor = deadline;
    // Work due now (a driver's deferred self-delivery, a frame to send) runs after this turn's
    // I/O, not a millisecond later: Node rounds setTimeout(0) up to 1 ms.
    this.timer = deadline <= now
      ? { kind: 'immediate', handle: setImmediate(this.fire) }
      : { kind: 'timeout', handle: setTimeout(this.fire, delay) };
  }

  private clearTimer(): void {
    if (this.timer?.kind === 'timeout') clearTimeout(this.timer.handle);
    else if (this.timer?.kind === 'immediate') clearImmediate(this.timer.handle);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private onTimer(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    if (this.stopped || !this.drv) return;
    // Deadline first, clock second: a driver with work queued answers "now" from its own
    // clock read, which must not be later than ours or the work would never run.
    const deadline = this.drv.nextDeadline();
    const now = this.clock.now();
    if (now >= deadline && now >= this.notBefore) {
      this.counters.timeouts++;
      try {
        this.drv.handleTimeout();
      } catch (e) {
        this.counters.handleTimeoutErrors++;
        this.notBefore = now + TIMEOUT_ERROR_BACKOFF_MS;
        this.log('error', 'driver failed in handleTimeout', { error: errorText(e) });
      }
    }
    this.rearm();
  }

  multicast(message: MessageBytes, order: Order): void {
    if (this.stopped) throw new ClusterError('ENOTCONN', 'this node is stopped');
    try {
      this.driver.multicast(message, order);
    } finally {
      this.rearm();
    }
  }

  setNodes(nodes: readonly NodeEntry[]): void {
    const drv = this.driver;
    if (!drv.setNodes || !this.transport.setNodes) {
      throw new ClusterError('EOPNOTSUPP', `the ${drv.name} driver cannot change its node list at run time: restart every node with the new list`);
    }
    drv.setNodes(nodes.map((n) => n.id).sort((a, b) => a - b));
    this.transport.setNodes(nodes);
    this.sealer.setNodes(nodes.map((n) => n.id));
    this.rearm();
  }

  stats(): Record<string, unknown> {
    return {
      nodeId: this.nodeId,
      runtime: { ...this.counters },
      driver: this.drv?.stats() ?? {},
      transport: this.transport.stats(),
      crypto: { encrypted: this.sealer.encrypted, incarnation: this.sealer.incarnation, ...this.sealer.stats(),
        dropLogsSuppressed: this.dropLog.suppressedTotal },
    };
  }

  stop(opts: { leave?: boolean } = {}): Promise<void> {
    this.stopping ??= this.doStop(opts.leave === true);
    return this.stopping;
  }

  private async doStop(leave: boolean): Promise<void> {
    if (leave && this.drv) {
      try {
        this.drv.leave(); // its datagrams are queued on the socket now; close() lets them out
      } catch (e) {
        this.log('error', 'driver failed in leave', { error: errorText(e) });
      }
    }
    this.stopped = true;
    this.clearTimer();
    await this.transport.close();
    try {
      // What this run accepted from each peer: the next run drops replays of it from its start.
      this.state.save(REPLAY_MARKS_STATE_KEY, this.sealer.marks());
    } catch (e) {
      this.log('warn', 'could not save the replay marks to node.state_dir', { error: errorText(e) });
    }
    this.log('info', 'node stopped', { nodeId: this.nodeId, left: leave });
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** A received datagram no one reads any more (refused, or opened into a plaintext of its own):
 *  released now if the transport owned it and no one holds it. With a key each one waited for
 *  V8's collector before: under 64 KiB messages, a 64 KiB buffer per datagram received, and
 *  13 to 15 MiB of node 1's peak in turns (docs/BENCH.md). */
function spent(datagram: Uint8Array): void {
  anchor(datagram);
  drop(datagram);
}

/** The parts of a sealed datagram the sealer made (not views of the driver's `plain`), owned and
 *  anchored for the send: those with memory of their own go back when it lets go of them. */
function anchorMade(sealed: ByteParts, plain: Uint8Array): Uint8Array[] {
  const made: Uint8Array[] = [];
  for (const p of sealed instanceof Uint8Array ? [sealed] : sealed) {
    if (p.buffer === plain.buffer) continue;
    own(p);
    anchor(p);
    made.push(p);
  }
  return made;
}
