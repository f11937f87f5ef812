import type { ZodType } from 'zod';
import type { Order, RingId } from '../api/types.ts';
import type { ByteParts } from '../wire/bytes.ts';

export type { Order, RingId };
export { formatRingId, ringIdEquals } from '../api/types.ts';

/**
 * An application message as multicast() takes it: one byte array, or parts whose concatenation
 * it is (the group layer's header and a payload as it arrived, perhaps in several parts), so that
 * nobody joins them into one array before the driver writes them into its frames.
 */
export type MessageBytes = ByteParts;

// The driver interface (docs/ARCHITECTURE.md, "The driver interface"): a driver is a pure state machine.
// It never reads a clock, sets a timer, draws randomness or touches a socket or file: the host
// injects all of that, so the same object runs over real UDP (core/runtime) and in the
// simulator (sim/).

export interface Guarantees {
  /** Messages of one sender are delivered in the order sent. */
  readonly fifo: boolean;
  /** All nodes deliver all messages in one total order. */
  readonly agreed: boolean;
  /** A message is delivered only once every member is known to hold it. */
  readonly safe: boolean;
  /** Extended virtual synchrony across configuration changes (docs/TOTEM.md, "Extended virtual synchrony"). */
  readonly virtualSynchrony: boolean;
}

/** A configuration change reported upward. Node id lists are sorted ascending. */
export interface Configuration {
  readonly kind: 'regular' | 'transitional';
  readonly ringId: RingId;
  readonly members: readonly number[];
  /** Members of the previous configuration that are not in this one. */
  readonly left: readonly number[];
  /** Members of this configuration that were not in the previous one. */
  readonly joined: readonly number[];
}

/** What a driver reports upward. Order of calls is the order of events at this node. */
export interface DriverUpcalls {
  /**
   * A message delivered in the driver's order. Nobody writes `payload`'s bytes again (a view of
   * a frame as it arrived, or of a message the driver was given): a receiver may keep the view
   * instead of a copy, knowing that it keeps the memory behind it alive (`payload.buffer`: a
   * frame, a pool block of small buffers, or the given message's memory). A driver written to
   * reuse its memory after the call breaks whoever keeps views (the bridge's client queues).
   */
  deliver(sender: number, payload: Uint8Array, order: Order): void;
  /**
   * A message that arrived in fragments, as the fragments in order (views of their frames, under
   * deliver()'s rule): their concatenation is the message. A host without it gets such messages
   * through deliver(), joined by the driver.
   */
  deliverParts?(sender: number, parts: readonly Uint8Array[], order: Order): void;
  /**
   * A message that came whole in a frame, as the frame and where in it the message lies
   * (`frame[start]` up to `end`), under deliver()'s rule: a host that reads it where it lies
   * makes no view per message. A host without it gets such messages through deliver().
   */
  deliverAt?(sender: number, frame: Uint8Array, start: number, end: number, order: Order): void;
  /** A configuration change; every later delivery belongs to it until the next one. */
  configuration(conf: Configuration): void;
  /** Called once the send queue has room again after multicast() threw EAGAIN. */
  writable?(): void;
}

/** Durable per-node state (e.g. the highest ring seq); survives restarts of the node. */
export interface StateStore {
  load(key: string): Uint8Array | undefined;
  /** Returns once the value is durable (the runtime writes and fsyncs synchronously). */
  save(key: string, value: Uint8Array): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Everything the host injects. */
export interface DriverHost extends DriverUpcalls {
  readonly nodeId: number;
  /** Milliseconds on a monotonic clock (virtual in the simulator). */
  now(): number;
  /** Uniform in [0, 1), seeded in the simulator. */
  rng(): number;
  /**
   * Send one datagram to a node id, or to every other configured node ('all'; unicast
   * fan-out or IP multicast, the transport decides). The bytes belong to the host after the
   * call: the driver must not mutate them. At most `mtu` bytes (DriverCommon.mtu).
   * With `reserved`, the DriverCommon.headroom bytes just before `bytes` in `bytes.buffer` are
   * the host's too, unwritten room the driver left when it allocated the datagram: the host
   * writes its header there instead of copying the datagram behind it (a host may ignore it).
   */
  transmit(to: number | 'all', bytes: Uint8Array, reserved?: boolean): void;
  readonly state: StateStore;
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
}

/** Options every driver gets, whatever its own section says. */
export interface DriverCommon {
  readonly nodeId: number;
  /** Every node id in the cluster's configured node list (this node included), ascending. */
  readonly nodes: readonly number[];
  /** Largest datagram the driver may hand to transmit(), after transport and crypto overhead. */
  readonly mtu: number;
  /** Largest application message multicast() accepts; beyond it EMSGSIZE. */
  readonly messageSizeMax: number;
  /**
   * Bytes the host puts in front of a datagram (the sealer's header, when that is all sealing
   * adds) and would rather write into room the driver left than copy the datagram behind them:
   * see DriverHost.transmit's `reserved`. Absent or 0: nothing to save (the simulator; a key,
   * whose encryption writes a new datagram anyway).
   */
  readonly headroom?: number;
}

export interface DriverStats {
  readonly [counter: string]: number | string;
}

export interface Driver {
  readonly name: string;
  readonly guarantees: Guarantees;
  /** Start: announce this node (join / heartbeat). Called once, before anything else. */
  start(): void;
  /** A datagram from the network; `from` is the node id the transport mapped its source to.
   *  `bytes` is the driver's to keep: the host never writes or reuses it (the runtime hands
   *  over each datagram's own buffer, the simulator a copy per receiver), so a driver may
   *  store views into it without copying. The driver never writes it either. */
  handleDatagram(from: number, bytes: Uint8Array): void;
  /** Called when now() >= nextDeadline(). Spurious calls must be harmless. */
  handleTimeout(): void;
  /** Absolute time (host clock, ms) at which handleTimeout() wants to run; Infinity if never. */
  nextDeadline(): number;
  /**
   * Queue an application message. Throws ClusterError EAGAIN (queue full; writable() follows),
   * EMSGSIZE (over messageSizeMax) or EOPNOTSUPP (order not in guarantees).
   * The message's bytes (and the list of its parts) become the driver's when the call returns:
   * the caller never writes them again, and neither does the driver, which keeps them (views, no
   * copy) until it has written them into its frames, then or later. Writing them there is the
   * first copy of a message's bytes on its way to the network; the second is the host's
   * encryption (with a key) or, without one, a frame of whole messages that waited long in the
   * send queue copied out of the queue's buffer at the token (core/driver/packing.ts). A caller
   * that cannot promise that (an application's own buffer) copies first.
   */
  multicast(message: MessageBytes, order: Order): void;
  /** A message of at most this many bytes is written into the driver's frames before multicast()
   *  returns, and the driver keeps nothing of it: the caller's bytes are free again at once (the
   *  bridge then hands on a view of a client's datagram without its kept copy). Absent: the
   *  driver may keep any message it takes. */
  readonly multicastCopiesUpTo?: number;
  /** True: every view the driver keeps of a message past multicast() is held until it lets go of
   *  it (hold() and drop(), core/wire/lease.ts), so the caller may have the memory behind the
   *  message released once its own holders are done (the bridge does, with a client's datagram).
   *  Absent: the driver may keep views it does not announce, and nothing given to it is released. */
  readonly multicastHolds?: boolean;
  /** Leave the cluster cleanly (announce departure); the driver then goes quiet. */
  leave(): void;
  /**
   * Optional: the configured node list changed at run time (a reload adds or removes nodes;
   * sorted ids, this node included). A driver without it cannot take a new list: the host then
   * says a restart is needed. Members that left the list drop out of the ring as if silent.
   */
  setNodes?(nodes: readonly number[]): void;
  stats(): DriverStats;
  /** Throws AssertionError when an internal invariant is broken. The simulator calls it after every step. */
  checkInvariants(): void;
}

/** A driver as the registry knows it: its name, guarantees, option schema and constructor. */
export interface DriverEntry<Options = unknown> {
  readonly name: string;
  readonly guarantees: Guarantees;
  readonly summary: string;
  /**
   * Schema of the driver's config section (`[totem]`, `[cman]`: TOML keys in snake_case),
   * strict (unknown keys are errors), with a default for every key. core/config parses the
   * section with it and turns failures into `file: section.key = value: expected ...`.
   */
  readonly optionsSchema: ZodType<Options>;
  create(common: DriverCommon, options: Options, host: DriverHost): Driver;
  /**
   * How long a node that stops answering goes unnoticed before the others' membership excludes
   * it, with these options. The simulator times its pauses by it (just past it is where a
   * returning node finds the cluster has moved on); the lock service's fencing delay allows for
   * twice it (services/lock/lock.ts). Without it, twice the largest timer.
   */
  failureDetectionMs?(options: Options): number;
}
