// GroupService: process groups over any driver's ordered node-level multicast, like corosync's
// CPG (docs/ARCHITECTURE.md, "Sockets and groups"). Pure: no clock, no timers, no sockets. It is the
// driver's DriverUpcalls sink and owns every group's membership.
//
// ORDERING. Join, leave and data are driver messages (core/groups/codec.ts), sent in 'agreed'
// order when the driver has it (else 'fifo'). Membership changes take effect when the message
// is DELIVERED, never when it is sent, so every node applies the same changes in the same
// driver order and every endpoint of a group sees the same sequence of events. (Over a
// fifo-only driver such as cman, each sender's events stay in its order, but two senders'
// events may interleave differently on different nodes: that is the guarantee the driver gives.)
// A node's own messages leave in the order it queued them: while a control message waits for
// the driver (EAGAIN), data sends answer EAGAIN too, so data never overtakes its sender's join.
//
// NODE FAILURES. A transitional configuration removes the members of the nodes that left, with
// reason 'nodedown', in one 'transitional' event per group that lost members. A regular
// configuration removes any members still left over from nodes not in it (drivers without
// transitional configurations); those groups hear about it in the regular event that closes the
// state exchange below.
//
// STATE EXCHANGE (as CPG's joinlist after each regular configuration). Nodes that merge know
// nothing of each other's groups, so after every regular configuration each node multicasts a
// snapshot of its OWN members (taken at the moment it delivers the configuration, which all nodes
// deliver at the same point of the message sequence) and then:
//   - every join, leave and data message delivered before the exchange completes is HELD
//     (copied, in delivery order), not applied: its meaning depends on the merged state;
//   - the exchange completes when the last part of the report of every node of the
//     configuration has been delivered. Each node then sets, for every node of the
//     configuration, that node's members to exactly what it reported; the differences are
//     reported in ONE regular event per group (joined: reason 'join'; members of a node that it
//     no longer reports: 'nodedown', as they can only be left over from a restart); groups that
//     had a transitional event, or lost members at this configuration, get that regular event
//     even when nothing else changed, so a transitional event is always followed by a regular one;
//   - then the held messages are applied in their delivery order.
// Every node of the configuration holds the same messages and completes at the same point, so
// all apply the same merged state followed by the same messages. A report is a snapshot of
// applied state: a join delivered after the configuration is in no report but in everyone's
// held list, so it is applied exactly once everywhere. Applying is idempotent (a join of a
// member is ignored, a leave of a non-member is ignored), so a report and a held message can
// never double-apply.
// If another configuration arrives before the exchange completes, the exchange is finished with
// the reports that did arrive, the held messages are applied, and then the new configuration is
// processed. Nodes that pass together from one configuration to the next delivered the same
// messages in it (extended virtual synchrony, docs/TOTEM.md property 4), so they have the same
// reports; a node whose report did not arrive keeps the members each node knew of it (which
// may differ between nodes that came from different rings, until the next exchange that
// completes). The events of an interrupted exchange, and of the messages it held, are views on
// the way to the next ring: named like transitional views, by the old ring's count and the new
// ring, since nodes going on to different rings may have finished it differently. The held list is bounded
// (HELD_MESSAGES_MAX, HELD_BYTES_MAX); reaching the bound finishes the exchange the same way, at
// the same message on every node with the same limits.
//
// QUORUM AND VIEWS. Every membership event carries the node's quorum state (core/quorum) and
// the id of the view it opens (core/api ViewId). Quorum is recomputed where every member of a
// configuration stands at the same point of the order: at a transitional configuration (for
// the survivors), when the state exchange completes (with what every node reported: expected
// votes, wait_for_all), and when last_man_standing's EXPECTED message is delivered. Groups whose
// membership did not change at that point get a QUORUM event instead, when quorum changed.
//
// DRIVERS WITHOUT VIRTUAL SYNCHRONY (cman: each node decides membership alone, ring ids are
// per node, no total order). A barrier would wait for reports that a node sent before this node
// saw the configuration, so there is none: nodedown is reported at once in a regular event, and
// each node's report is applied when it arrives (that node's members are set to it; differences
// reported as above). Here a report lists what the node has ANNOUNCED (every join and leave it
// has multicast so far), not what it has applied: a receiver has delivered all of the sender's
// earlier messages (fifo), so the report then agrees with them and only repairs what was missed.
import { ClusterError, assert, eagain, isClusterError } from '../api/errors.ts';
import type { NodeConfig } from '../config/types.ts';
import type { Configuration, DriverUpcalls, Guarantees, LogLevel, MessageBytes, Order, RingId } from '../driver/types.ts';
import type { LocalNode, Member, MemberChange, MemberIdentity, MemberInfo, MessageEvent, QuorumState, SocketEvent, ViewId } from '../api/types.ts';
import { concatBytes, rangeOf, viewOf } from '../wire/bytes.ts';
import { Quorum, quorumOff, type QuorumOptions } from '../quorum/quorum.ts';
import {
  NAME_WIRE_MAX, dataHeader, dataOverhead, decodeGroupMessage, readDataHeaderAt, readDataMessage, encodeExchange, encodeExpected, dataMessage, encodeJoin, encodeLeave, isValidGroupName,
  type DataHeader, type ExchangeGroup, type GroupMessage, type LeaveReason, type ReportedMember,
} from './codec.ts';
import type { QuorumReport } from '../quorum/quorum.ts';
import { GroupTable, compareChanges, memberKey, type GroupState } from './table.ts';

/** Counters stats() always reports (others, such as malformed.<why>, appear when they happen). */
export const COUNTERS = [
  'delivered', 'sent', 'malformed', 'dataNotMember', 'foreignSender', 'joinDuplicate', 'joinRefusedFull',
  'leaveNotMember', 'overrun', 'exchanges', 'exchangesForced', 'exchangeStale', 'heldMessages',
  'controlEagain', 'controlSendErrors', 'sendEagainControl', 'quorumChanges', 'expectedLowered',
] as const;

/**
 * The message size the DRIVER must accept (DriverCommon.messageSizeMax) so that a full-size
 * application message (limits.messageSizeMax) fits with the groups header and the longest
 * group name. Exchange reports are cut to this size too.
 */
export function driverMessageSizeMax(limits: NodeConfig['limits']): number {
  return limits.messageSizeMax + dataOverhead(Math.min(limits.groupNameMax, NAME_WIRE_MAX));
}

export const HELD_MESSAGES_MAX = 65536;
export const HELD_BYTES_MAX = 64 * 1024 * 1024;

export interface GroupServiceOptions {
  nodeId: number;
  /** groupsMax, groupNameMax, membersMax, messageSizeMax, socketsMax. */
  limits: NodeConfig['limits'];
  /** driver.multicast: throws ClusterError EAGAIN / EMSGSIZE / EOPNOTSUPP. */
  multicast(message: MessageBytes, order: Order): void;
  /** Refuse orders the driver cannot give (EOPNOTSUPP). */
  guarantees: Guarantees;
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  /** Reported by localNode(); default 'unknown'. */
  driverName?: string;
  /** Called when a send that answered EAGAIN may succeed now (the driver became writable and
   *  the service's own queued control messages are all out). */
  onWritable?(): void;
  /** Quorum's options (core/quorum quorumOptions(config)); default: quorum off. */
  quorum?: QuorumOptions;
  /** The host's clock in ms, for last_man_standing's window (tick()); default: always 0. */
  now?(): number;
}

/** Where the service hands a local endpoint its events. Return false when the endpoint's
 *  receive queue is full: the service then removes it from its group (others see reason
 *  'overrun') and calls `overrun()` so the owner can tell the client ENOBUFS. */
export interface EndpointSink {
  /** A message event's `data` is the driver's delivered payload, a view of the driver's frames
   *  that nobody writes again (DriverUpcalls.deliver): a sink that keeps the event for long keeps
   *  `keepEvent(ev)`, so that the frames can go. A message that arrived in fragments comes as a
   *  PartedMessage (`eventParts`): its `data` joins them when first read. The bridge keeps a
   *  small message's event only until the end of the current burst (written then into the
   *  container that carries it) and encodes it sooner if its client is behind, so a message costs
   *  one copy on its way to a local client. */
  event(ev: SocketEvent): boolean;
  /**
   * Optional: a message delivered whole, as its fields and its payload `from[start]` up to
   * `end` (a frame nobody writes again, as event()'s `data`), so that a sink that writes it
   * straight away needs no event object and no view. True or false as event() would answer for
   * it; undefined when this sink wants it as an event after all (it then gets event(), with the
   * event every such sink of the message shares).
   */
  messageAt?(group: string, sender: Member, order: Order, from: Uint8Array, start: number, end: number): boolean | undefined;
  overrun(): void;
}

/** The message event of a DATA message's payload (GroupService.dataTo's arguments). */
function dataEvent(group: string, sender: Member, order: Order, from: Uint8Array, start: number, end: number,
  parts: readonly Uint8Array[] | undefined): SocketEvent {
  const data = rangeOf(from, start, end);
  if (parts === undefined) return { type: 'message', group, sender, order, data };
  return new PartedMessage(group, sender, order, data.length > 0 ? [data, ...parts.slice(1)] : parts.slice(1));
}

/** The event with a message's data copied out of the driver's memory, to keep past event(). */
export function keepEvent(ev: SocketEvent): SocketEvent {
  if (ev.type !== 'message') return ev;
  // Each keeper its own bytes: a PartedMessage's `data` is one join shared by whoever reads it.
  const data = ev instanceof PartedMessage ? concatBytes(ev.parts) : ev.data.slice();
  return { type: 'message', group: ev.group, sender: ev.sender, order: ev.order, data };
}

/** A MESSAGE event whose payload is the fragments it arrived in; `data` joins them once, when
 *  something reads it (a sink that encodes the fragments never does). */
export class PartedMessage implements MessageEvent {
  readonly type = 'message';
  private joined: Uint8Array | undefined;
  constructor(readonly group: string, readonly sender: Member, readonly order: Order, readonly parts: readonly Uint8Array[]) {}
  get data(): Uint8Array {
    return this.joined ??= concatBytes(this.parts);
  }
}

/** A message event's payload as the fragments it arrived in, or undefined when it is one array. */
export function eventParts(ev: MessageEvent): readonly Uint8Array[] | undefined {
  return ev instanceof PartedMessage ? ev.parts : undefined;
}

export interface LocalEndpoint {
  readonly member: Member;
  /** EADDRINUSE if bound, EINVAL bad name or closed, ENAMETOOLONG, EMFILE groupsMax or group
   *  full (membersMax), EAGAIN when the control queue is full. */
  bind(group: string, opts?: { selfDelivery?: boolean }): void;
  /** ENOTCONN if not bound. */
  unbind(): void;
  /** ENOTCONN, EMSGSIZE, EAGAIN, EOPNOTSUPP. `data` may be the message's pieces in order (a
   *  large message as its parts arrived): they go to the driver as they are, behind the DATA
   *  header, and its frames are written from them (Driver.multicast). So the bytes become the
   *  driver's once send() returns: the caller never writes them again (copy them first if you must). */
  send(data: MessageBytes, order: Order): void;
  /** ENOTCONN if not bound. */
  members(): Member[];
  /** The members with who they are, as their nodes said (ENOTCONN if not bound). */
  memberInfo(): MemberInfo[];
  /** The group it is bound to, if any (bound = bind() called, not necessarily delivered yet). */
  group(): string | undefined;
  close(reason?: 'leave' | 'procdown'): void;
}

interface Binding {
  readonly group: string;
  readonly selfDelivery: boolean;
  /** True once its join was delivered with no later own join/leave still outstanding. */
  active: boolean;
}

interface ControlItem {
  readonly kind: 'join' | 'leave' | 'exchange' | 'expected';
  readonly bytes: Uint8Array;
  /** `pid:port` of the endpoint for join and leave. */
  readonly local?: string;
  readonly group?: string;
}

type Held = { readonly sender: number; readonly msg: GroupMessage; readonly order: Order };

interface Exchange {
  readonly ringId: RingId;
  readonly nodes: readonly number[];
  readonly reports: Map<number, ExchangeGroup[]>;
  readonly complete: Set<number>;
  readonly held: Held[];
  heldBytes: number;
  /** Per group: members removed at the configuration, reported when the exchange ends. */
  readonly pendingLeft: Map<string, MemberChange[]>;
  /** Groups that had a transitional event before this regular configuration. */
  readonly touched: Set<string>;
  /** Quorum reports of the nodes whose report arrived. */
  readonly quorum: Map<number, QuorumReport>;
}

class Endpoint implements LocalEndpoint {
  binding: Binding | null = null;
  closed = false;
  /** The DATA header of this socket's messages to `group`, made at its first send there: one
   *  array for all of them, not one per message (about a fifth of what a sending daemon
   *  allocated per message at 100 B; docs/BENCH.md). */
  header: { readonly group: string; readonly bytes: Uint8Array } | undefined;
  constructor(readonly member: Member, readonly sink: EndpointSink, private readonly svc: GroupService, readonly identity?: MemberIdentity) {}
  bind(group: string, opts?: { selfDelivery?: boolean }): void { this.svc.bindEndpoint(this, group, opts?.selfDelivery ?? true); }
  unbind(): void {
    if (!this.binding) throw new ClusterError('ENOTCONN', 'this socket is not bound to a group; bind it first');
    this.svc.leaveEndpoint(this, 'leave');
  }
  send(data: MessageBytes, order: Order): void { this.svc.sendData(this, data, order); }
  members(): Member[] {
    if (!this.binding) throw new ClusterError('ENOTCONN', 'this socket is not bound to a group; bind it first');
    return [...this.svc.groupMembers(this.binding.group)];
  }
  memberInfo(): MemberInfo[] {
    if (!this.binding) throw new ClusterError('ENOTCONN', 'this socket is not bound to a group; bind it first');
    return this.svc.groupMemberInfo(this.binding.group);
  }
  group(): string | undefined { return this.binding?.group; }
  close(reason: 'leave' | 'procdown' = 'leave'): void { this.svc.closeEndpoint(this, reason); }
}

export class GroupService implements DriverUpcalls {
  private readonly table = new GroupTable();
  private readonly locals = new Map<string, Endpoint>();
  /** Active local endpoints per group: who gets the group's events. */
  private readonly activeByGroup = new Map<string, Set<Endpoint>>();
  /** Per local `pid:port`: own join/leave messages queued or in flight, not yet applied. */
  private readonly outstanding = new Map<string, number>();
  private readonly control: ControlItem[] = [];
  private readonly controlOrder: Order;
  /** Named counters; the usual ones start at 0 so that status displays have stable keys. */
  private readonly counters: Record<string, number> = Object.fromEntries(COUNTERS.map((c) => [c, 0]));
  /** The two counters of every message, as fields: `counters[name]` with a name that varies is a
   *  hash lookup in V8 (stats() reports them with the others). */
  private delivered = 0;
  private sent = 0;
  /** Where deliverAt() reads a DATA message's header. */
  private readonly dataAt: DataHeader = { group: '', pid: 0, port: 0 };
  /** Sets of activeByGroup added or removed (with the table's generation, when deliverAt's route
   *  must be looked up again). */
  private activeChanges = 0;
  /** deliverAt's last group: its name, the generation it was looked up at, its state and its
   *  active endpoints (the live objects: members and endpoints that change within them are seen). */
  private routeName: string | undefined;
  private routeGeneration = -1;
  private routeGroup: GroupState | undefined;
  private routeTargets: Set<Endpoint> | undefined;
  private overruns: { ep: Endpoint; group: string }[] = [];
  private ringId: RingId;
  private nodes: readonly number[];
  /** The last sender found in `nodes` (-1: none since they changed): most deliveries come from
   *  the sender of the one before, and Array.prototype.includes per message was 2% of a
   *  machine delivering 100 B messages (a builtin call each). */
  private memberSender = -1;
  private configured = false;
  private inTransitional = false;
  private exchange: Exchange | null = null;
  private transitionalTouched = new Set<string>();
  private dispatching = 0;
  private draining = false;
  /** Barrier exchanges need ring ids and delivery order shared by all nodes (module comment). */
  private readonly barrier: boolean;
  /** Per local `pid:port`: the group of its last join multicast, until a leave is multicast. */
  private readonly announced = new Map<string, string>();
  /** Eager mode: report parts received so far, per sender. */
  private readonly partial = new Map<number, ExchangeGroup[]>();
  private readonly quorum: Quorum;
  private readonly now: () => number;
  /** Per group: the number of its current view on this ring (absent = 1, the ring's first). */
  private readonly views = new Map<string, number>();
  /** While an exchange interrupted by the next configuration is finished: that configuration's
   *  ring (the events are views on the way to it, named as transitional ones). */
  private finishingTo: RingId | null = null;
  /** The expected votes last proposed on this ring (last_man_standing), so it is sent once. */
  private proposed?: { ringId: RingId; expected: number };

  constructor(private readonly opts: GroupServiceOptions) {
    const g = opts.guarantees;
    if (!g.agreed && !g.fifo) {
      throw new ClusterError('EOPNOTSUPP', 'process groups need a driver with fifo or agreed order');
    }
    this.controlOrder = g.agreed ? 'agreed' : 'fifo';
    this.barrier = g.agreed && g.virtualSynchrony;
    this.ringId = { rep: opts.nodeId, seq: 0 };
    this.nodes = [opts.nodeId];
    this.now = opts.now ?? (() => 0);
    this.quorum = new Quorum(opts.quorum ?? quorumOff([opts.nodeId]));
    this.quorum.configuration(this.nodes, this.now());
  }

  // ---- DriverUpcalls ------------------------------------------------------------------------

  deliver(sender: number, payload: Uint8Array, order: Order): void {
    // guarded(), written out: no closure per message.
    this.dispatching++;
    try {
      this.deliverNow(sender, payload, order);
    } finally {
      this.dispatching--;
    }
    if (this.dispatching === 0) this.flushOverruns();
  }

  /** A message delivered whole at `frame[start]` up to `end` (DriverUpcalls.deliverAt): a DATA
   *  message outside a state exchange is read where it lies; anything else as deliver() would. */
  deliverAt(sender: number, frame: Uint8Array, start: number, end: number, order: Order): void {
    this.dispatching++;
    try {
      if (this.exchange || !this.deliverDataAt(sender, frame, start, end, order)) this.deliverNow(sender, viewOf(frame, start, end), order);
    } finally {
      this.dispatching--;
    }
    if (this.dispatching === 0) this.flushOverruns();
  }

  /** A DATA message read where it lies (readDataHeaderAt), applied as apply() would; false when
   *  it is not a well-formed DATA message. */
  private deliverDataAt(sender: number, frame: Uint8Array, start: number, end: number, order: Order): boolean {
    const h = this.dataAt;
    const body = readDataHeaderAt(frame, start, end, h);
    if (body < 0) return false;
    this.delivered++;
    if (this.fromMember(sender)) this.dataTo(sender, h.group, h.pid, h.port, order, frame, body, end);
    return true;
  }

  private deliverNow(sender: number, payload: Uint8Array, order: Order): void {
    const data = readDataMessage(payload); // the usual case, read without a Reader
    if (data !== undefined) {
      this.delivered++;
      if (this.exchange) this.hold(sender, data, order); else this.apply(sender, data, order);
      return;
    }
    const r = decodeGroupMessage(payload);
    if (!r.ok) {
      this.count('malformed'); this.count(`malformed.${r.why}`);
      this.opts.log('debug', 'dropped a malformed group payload', { sender, bytes: payload.length, why: r.why });
      return;
    }
    this.delivered++;
    if (r.msg.type === 'exchange') { this.onExchange(sender, r.msg); return; }
    if (r.msg.type === 'expected') { this.onExpected(r.msg); return; }
    if (this.exchange) { this.hold(sender, r.msg, order); return; }
    this.apply(sender, r.msg, order);
  }

  /** A message in fragments (DriverUpcalls.deliverParts). A DATA message's header is read from
   *  the first fragment and its payload goes on in the fragments, not joined; anything else (a
   *  first fragment too short for the header, another type, messages held by an exchange) is
   *  joined and goes through deliver(). */
  deliverParts(sender: number, parts: readonly Uint8Array[], order: Order): void {
    if (parts.length > 1 && !this.exchange) {
      const msg = readDataMessage(parts[0]);
      if (msg !== undefined) {
        this.guarded(() => {
          this.delivered++;
          this.apply(sender, msg, order, parts);
        });
        return;
      }
    }
    this.deliver(sender, concatBytes(parts), order);
  }

  configuration(conf: Configuration): void {
    this.guarded(() => {
      if (this.exchange) this.finishExchange(true, conf.ringId);
      const previous = this.ringId;
      this.ringId = conf.ringId;
      this.nodes = [...conf.members];
      this.memberSender = -1;
      this.configured = true;
      if (conf.kind === 'transitional') this.onTransitional(conf, previous);
      else this.onRegular(conf);
    });
  }

  writable(): void {
    this.guarded(() => this.drainControl());
    if (this.control.length === 0) this.opts.onWritable?.();
  }

  // ---- the owner's side -------------------------------------------------------------------

  /** A local socket; `identity`: who its process is (the bridge learns it from the kernel), told
   *  to every node with its joins. */
  open(local: { pid: number; port: number; identity?: MemberIdentity }, sink: EndpointSink): LocalEndpoint {
    if (!isU32(local.pid) || !isU32(local.port)) {
      throw new ClusterError('EINVAL', `pid and port must be unsigned 32-bit integers (got ${local.pid}, ${local.port})`);
    }
    const key = `${local.pid}:${local.port}`;
    if (this.locals.has(key)) throw new ClusterError('EADDRINUSE', `pid ${local.pid} already has a socket on port ${local.port}`);
    if (this.locals.size >= this.opts.limits.socketsMax) {
      throw new ClusterError('EMFILE', `this node already has ${this.locals.size} sockets (limits.sockets_max); close some first`);
    }
    const ep = new Endpoint({ nodeId: this.opts.nodeId, pid: local.pid, port: local.port }, sink, this, local.identity);
    this.locals.set(key, ep);
    return ep;
  }

  processDown(pid: number): void {
    for (const ep of [...this.locals.values()]) if (ep.member.pid === pid) ep.close('procdown');
  }

  localNode(): LocalNode {
    return { nodeId: this.opts.nodeId, driver: this.opts.driverName ?? 'unknown', ringId: this.ringId, members: [...this.nodes], quorum: this.quorum.state };
  }

  /** The node's quorum state now, and every configured node with its votes. */
  quorumInfo(): { state: QuorumState; nodes: { nodeId: number; votes: number; present: boolean }[] } {
    return { state: this.quorum.state, nodes: this.quorum.nodes() };
  }

  /** Time passes (the host calls this about once a second): last_man_standing's window. The
   *  lowest node of the configuration proposes lower expected votes in an agreed message. */
  tick(): void {
    if (this.exchange || this.inTransitional) return;
    const expected = this.quorum.lowerDue(this.now());
    if (expected === undefined || this.nodes[0] !== this.opts.nodeId) return;
    const p = this.proposed;
    if (p && p.expected === expected && p.ringId.rep === this.ringId.rep && p.ringId.seq === this.ringId.seq) return;
    this.proposed = { ringId: this.ringId, expected };
    this.guarded(() => this.sendControl({ kind: 'expected', bytes: encodeExpected(this.ringId, expected) }));
  }

  stats(): Record<string, number> {
    return {
      ...this.counters,
      delivered: this.delivered,
      sent: this.sent,
      groups: this.table.count,
      localSockets: this.locals.size,
      controlQueue: this.control.length,
      held: this.exchange?.held.length ?? 0,
      exchanging: this.exchange ? 1 : 0,
    };
  }

  /** Members of a group in this node's view, sorted; empty when unknown. */
  groupMembers(group: string): readonly Member[] {
    return this.table.get(group)?.list() ?? [];
  }

  /** Members of a group with who they are (when their node said), sorted; empty when unknown. */
  groupMemberInfo(group: string): MemberInfo[] {
    const g = this.table.get(group);
    if (!g) return [];
    return g.list().map((member) => {
      const identity = g.identity(member);
      return identity ? { member, identity } : { member };
    });
  }

  /** Every group this node knows, with its members (for status displays). */
  groups(): { group: string; members: readonly Member[] }[] {
    return this.table.all().map((g) => ({ group: g.name, members: g.list() }));
  }

  // ---- endpoint operations: called by LocalEndpoint; owners use the endpoint, not these -----

  bindEndpoint(ep: Endpoint, group: string, selfDelivery: boolean): void {
    if (ep.closed) throw new ClusterError('EINVAL', 'this socket is closed; open a new one');
    if (ep.binding) throw new ClusterError('EADDRINUSE', `this socket is already bound to "${ep.binding.group}"; unbind it first`);
    this.checkName(group);
    this.checkGroupLimits(group);
    if (this.control.length >= this.controlMax()) {
      throw new ClusterError('EAGAIN', 'the driver is not taking control messages right now; retry bind');
    }
    ep.binding = { group, selfDelivery, active: false };
    this.sendControl({ kind: 'join', bytes: encodeJoin(group, ep.member.pid, ep.member.port, ep.identity), local: keyOf(ep), group });
  }

  leaveEndpoint(ep: Endpoint, reason: LeaveReason): void {
    const b = ep.binding;
    if (!b) return;
    this.deactivate(ep);
    ep.binding = null;
    if (this.cancelQueuedJoin(keyOf(ep), b.group)) return;
    this.sendControl({ kind: 'leave', bytes: encodeLeave(b.group, ep.member.pid, ep.member.port, reason), local: keyOf(ep), group: b.group });
  }

  closeEndpoint(ep: Endpoint, reason: 'leave' | 'procdown'): void {
    if (ep.closed) return;
    this.leaveEndpoint(ep, reason);
    ep.closed = true;
    this.locals.delete(keyOf(ep));
  }

  sendData(ep: Endpoint, data: MessageBytes, order: Order): void {
    if (!ep.binding) throw new ClusterError('ENOTCONN', 'this socket is not bound to a group; bind it before sending');
    if (!this.opts.guarantees[order]) {
      throw new ClusterError('EOPNOTSUPP', `driver ${this.opts.driverName ?? ''} cannot give ${order} order; use one of: ${this.supportedOrders().join(', ')}`);
    }
    const max = this.opts.limits.messageSizeMax;
    const size = data instanceof Uint8Array ? data.length : data.reduce((n, d) => n + d.length, 0);
    if (size > max) throw new ClusterError('EMSGSIZE', `message of ${size} bytes exceeds limits.message_size_max (${max})`);
    if (this.control.length > 0) {
      this.count('sendEagainControl');
      throw eagain('the send queue is full; wait and retry');
    }
    const group = ep.binding.group;
    let h = ep.header;
    if (h === undefined || h.group !== group) h = ep.header = { group, bytes: dataHeader(group, ep.member.pid, ep.member.port) };
    this.opts.multicast(dataMessage(group, ep.member.pid, ep.member.port, data, h.bytes), order);
    this.sent++;
  }

  // ---- applying delivered messages ----------------------------------------------------------

  /** `parts`: the message arrived in these fragments, `msg.data` is the rest of the first. */
  private apply(sender: number, msg: GroupMessage, order: Order, parts?: readonly Uint8Array[]): void {
    if (!this.fromMember(sender)) return;
    switch (msg.type) {
      case 'join': this.applyJoin(sender, msg.group, msg.pid, msg.port, msg.identity); break;
      case 'leave': this.applyLeave(sender, msg.group, { nodeId: sender, pid: msg.pid, port: msg.port }, msg.reason); break;
      case 'data': this.applyData(sender, msg, order, parts); break;
      case 'exchange': case 'expected': assert(false, `${msg.type} messages are never applied as held messages`); break;
    }
  }

  private applyJoin(sender: number, group: string, pid: number, port: number, identity?: MemberIdentity): void {
    const member: Member = { nodeId: sender, pid, port };
    const own = sender === this.opts.nodeId ? this.ownApplied(`${pid}:${port}`) : undefined;
    const g = this.table.ensure(group);
    if (g.has(member)) {
      this.count('joinDuplicate');
      if (own) this.tryActivate(own, group);
      return;
    }
    if (g.size >= this.opts.limits.membersMax) {
      // Every node refuses the same join at the same point, so views stay equal.
      this.count('joinRefusedFull');
      this.table.prune(group);
      if (own?.binding?.group === group && !own.binding.active && this.settled(own)) this.refuseBinding(own, group);
      return;
    }
    g.add(member, identity);
    if (own) this.tryActivate(own, group);
    this.emitMembership(group, { joined: [{ member, reason: 'join' }], left: [] });
  }

  private applyLeave(sender: number, group: string, member: Member, reason: LeaveReason): void {
    const own = sender === this.opts.nodeId ? this.ownApplied(`${member.pid}:${member.port}`) : undefined;
    const g = this.table.get(group);
    if (!g || !g.remove(member)) {
      this.count('leaveNotMember');
    } else {
      this.emitMembership(group, { joined: [], left: [{ member, reason }] });
      this.table.prune(group);
    }
    if (own?.binding) this.tryActivate(own, own.binding.group);
  }

  private applyData(sender: number, msg: Extract<GroupMessage, { type: 'data' }>, order: Order, parts?: readonly Uint8Array[]): void {
    this.dataTo(sender, msg.group, msg.pid, msg.port, order, msg.data, 0, msg.data.length, parts);
  }

  /**
   * A DATA message from member `pid:port` of node `sender` to the group's local endpoints. Its
   * payload is `from[start]` up to `end` (a frame the driver delivered, or a payload of its own);
   * with `parts`, it arrived in fragments: `from` is the rest of the first, `parts` all of them.
   * A sink with messageAt() takes a whole message from where it lies; the others share one event.
   */
  private dataTo(sender: number, group: string, pid: number, port: number, order: Order,
    from: Uint8Array, start: number, end: number, parts?: readonly Uint8Array[]): void {
    // The group's state and its local endpoints, as the last message found them while neither
    // map has changed since (most messages are to the group of the one before).
    const generation = this.table.generation + this.activeChanges;
    if (group !== this.routeName || generation !== this.routeGeneration) {
      this.routeName = group;
      this.routeGeneration = generation;
      this.routeGroup = this.table.get(group);
      this.routeTargets = this.activeByGroup.get(group);
    }
    const member = this.routeGroup?.find(sender, pid, port);
    if (member === undefined) {
      // The same on every node: the sender is not (or no longer) a member in the shared view.
      this.count('dataNotMember');
      return;
    }
    const targets = this.routeTargets;
    if (!targets || targets.size === 0) return;
    let ev: SocketEvent | undefined;
    for (const ep of targets) {
      const m = ep.member;
      if (!ep.binding?.selfDelivery && m.nodeId === sender && m.pid === pid && m.port === port) continue;
      if (!ep.binding?.active) continue;
      let taken = parts === undefined ? ep.sink.messageAt?.(group, member, order, from, start, end) : undefined;
      if (taken === undefined) taken = ep.sink.event(ev ??= dataEvent(group, member, order, from, start, end, parts));
      if (!taken) this.overran(ep);
    }
  }

  /** A delivered message's sender is a node of the current configuration (else counted). */
  private fromMember(sender: number): boolean {
    if (!this.configured || sender === this.memberSender) return true;
    if (!this.nodes.includes(sender)) {
      this.count('foreignSender');
      return false;
    }
    this.memberSender = sender;
    return true;
  }

  /** Counts one own control message as applied; returns the local endpoint if it still exists. */
  private ownApplied(local: string): Endpoint | undefined {
    const n = this.outstanding.get(local) ?? 0;
    if (n <= 1) this.outstanding.delete(local); else this.outstanding.set(local, n - 1);
    return this.locals.get(local);
  }

  private settled(ep: Endpoint): boolean {
    return !this.outstanding.has(keyOf(ep));
  }

  private tryActivate(ep: Endpoint, group: string): void {
    const b = ep.binding;
    if (!b || b.active || b.group !== group || !this.settled(ep)) return;
    if (!this.table.get(group)?.has(ep.member)) return;
    b.active = true;
    let set = this.activeByGroup.get(group);
    if (!set) { set = new Set(); this.activeByGroup.set(group, set); this.activeChanges++; }
    set.add(ep);
  }

  private deactivate(ep: Endpoint): void {
    const b = ep.binding;
    if (!b?.active) return;
    b.active = false;
    const set = this.activeByGroup.get(b.group);
    set?.delete(ep);
    if (set?.size === 0) { this.activeByGroup.delete(b.group); this.activeChanges++; }
  }

  private refuseBinding(ep: Endpoint, group: string): void {
    ep.binding = null;
    ep.sink.event({ type: 'error', code: 'EMFILE',
      message: `group "${group}" already has limits.members_max (${this.opts.limits.membersMax}) members; the bind was refused` });
  }

  /** A change of the group's membership: the next view of the group on this ring (or, with
   *  `view`, the view the caller names), told to the group's local members. */
  private emitMembership(group: string, change: { joined: MemberChange[]; left: MemberChange[]; kind?: 'regular' | 'transitional'; ringId?: RingId; view?: ViewId }): void {
    const to = this.finishingTo;
    const viewId = to ? { ringId: this.ringId, seq: (this.views.get(group) ?? 1) + 1 }
      : change.view ?? { ringId: this.ringId, seq: (this.views.get(group) ?? 1) + 1 };
    this.views.set(group, viewId.seq);
    const targets = this.activeByGroup.get(group);
    if (!targets || targets.size === 0) return;
    const members = [...this.groupMembers(group)];
    const state = this.table.get(group);
    const ev: SocketEvent = {
      type: 'membership', group,
      kind: to ? 'transitional' : change.kind ?? (this.inTransitional ? 'transitional' : 'regular'),
      ringId: to ?? change.ringId ?? this.ringId,
      members,
      joined: change.joined.sort(compareChanges),
      left: change.left.sort(compareChanges),
      viewId,
      quorum: this.quorum.state,
      identities: members.map((m) => state?.identity(m) ?? null),
    };
    for (const ep of targets) this.offer(ep, ev);
  }

  /** Quorum changed from `before` at this point of the order: every group with local members
   *  that did not just get a membership event (`told`) gets a QUORUM event. */
  private quorumChanged(before: QuorumState, told: ReadonlySet<string>): void {
    const now = this.quorum.state;
    if (sameQuorum(before, now)) return;
    this.count('quorumChanges');
    this.opts.log(now.quorate === before.quorate ? 'info' : 'warn', now.quorate ? 'quorum: quorate' : 'quorum: NOT quorate',
      { votes: now.votes, expected: now.expected, quorum: now.quorum, members: this.nodes });
    for (const [group, targets] of this.activeByGroup) {
      if (told.has(group)) continue;
      const ev: SocketEvent = { type: 'quorum', group, ringId: this.ringId, quorum: now };
      for (const ep of targets) this.offer(ep, ev);
    }
  }

  /** Hands an event to an endpoint; a full endpoint is removed from its group at once (it gets
   *  nothing more) and its ordered leave and ENOBUFS follow when the upcall unwinds. */
  private offer(ep: Endpoint, ev: SocketEvent): void {
    if (!ep.binding?.active) return;
    if (!ep.sink.event(ev)) this.overran(ep);
  }

  /** The endpoint's sink refused an event (its queue is full): it leaves its group. */
  private overran(ep: Endpoint): void {
    if (!ep.binding) return;
    this.count('overrun');
    this.deactivate(ep);
    this.overruns.push({ ep, group: ep.binding.group });
    ep.binding = null;
  }

  private flushOverruns(): void {
    while (this.overruns.length > 0) {
      const batch = this.overruns;
      this.overruns = [];
      for (const { ep, group } of batch) {
        const local = keyOf(ep);
        if (!this.cancelQueuedJoin(local, group)) {
          this.sendControl({ kind: 'leave', bytes: encodeLeave(group, ep.member.pid, ep.member.port, 'overrun'), local, group });
        }
        if (!ep.closed) ep.sink.overrun();
      }
    }
  }

  // ---- configurations and the state exchange ------------------------------------------------

  /** The survivors of the old ring (`previous`) go on without the nodes that failed: their
   *  members leave in a transitional view that continues the old ring's count. */
  private onTransitional(conf: Configuration, previous: RingId): void {
    this.inTransitional = true;
    const before = this.quorum.state;
    this.quorum.configuration(conf.members, this.now());
    const removed = this.removeNodesNotIn(conf.members);
    for (const [group, left] of removed) {
      this.transitionalTouched.add(group);
      const view = { ringId: previous, seq: (this.views.get(group) ?? 1) + 1 };
      this.emitMembership(group, { joined: [], left, kind: 'transitional', ringId: conf.ringId, view });
      this.table.prune(group);
    }
    this.quorumChanged(before, new Set(removed.keys()));
  }

  private onRegular(conf: Configuration): void {
    this.inTransitional = false;
    this.views.clear();
    const pendingLeft = this.removeNodesNotIn(conf.members);
    for (const node of [...this.partial.keys()]) if (!conf.members.includes(node)) this.partial.delete(node);
    if (!this.barrier) {
      const before = this.quorum.state;
      this.quorum.configuration(conf.members, this.now());
      for (const [group, left] of pendingLeft) {
        this.emitMembership(group, { joined: [], left, kind: 'regular', ringId: conf.ringId, view: { ringId: conf.ringId, seq: 1 } });
        this.table.prune(group);
      }
      this.quorumChanged(before, new Set(pendingLeft.keys()));
      this.count('exchanges');
      this.sendReport(conf.ringId, this.announcedReport());
      return;
    }
    for (const group of pendingLeft.keys()) this.table.prune(group);
    const touched = this.transitionalTouched;
    this.transitionalTouched = new Set();
    this.exchange = {
      ringId: conf.ringId, nodes: [...conf.members], reports: new Map(), complete: new Set(),
      held: [], heldBytes: 0, pendingLeft, touched, quorum: new Map(),
    };
    this.count('exchanges');
    this.sendReport(conf.ringId, this.appliedReport());
  }

  /** Removes every member whose node is not in `keep`; returns the changes per group. */
  private removeNodesNotIn(keep: readonly number[]): Map<string, MemberChange[]> {
    const alive = new Set(keep);
    const out = new Map<string, MemberChange[]>();
    for (const g of this.table.all()) {
      for (const m of g.list()) {
        if (alive.has(m.nodeId)) continue;
        g.remove(m);
        const list = out.get(g.name) ?? [];
        list.push({ member: m, reason: 'nodedown' });
        out.set(g.name, list);
      }
    }
    return out;
  }

  /** This node's own members as applied (barrier mode). */
  private appliedReport(): ExchangeGroup[] {
    const groups: ExchangeGroup[] = [];
    for (const g of this.table.all()) {
      const mine = g.ofNode(this.opts.nodeId);
      if (mine.length) groups.push({ group: g.name, members: mine.map((m) => reported(m.pid, m.port, g.identity(m))) });
    }
    return groups;
  }

  /** This node's own members as announced by the joins and leaves it multicast (eager mode). */
  private announcedReport(): ExchangeGroup[] {
    const byGroup = new Map<string, ReportedMember[]>();
    for (const [local, group] of this.announced) {
      const [pid, port] = local.split(':').map(Number);
      const list = byGroup.get(group) ?? [];
      list.push(reported(pid, port, this.locals.get(local)?.identity));
      byGroup.set(group, list);
    }
    return [...byGroup].map(([group, members]) => ({ group, members }));
  }

  /** Multicasts this node's report, first in the control queue (stale reports dropped). */
  private sendReport(ringId: RingId, groups: ExchangeGroup[]): void {
    const parts = encodeExchange(ringId, groups, driverMessageSizeMax(this.opts.limits), this.quorum.report());
    for (let i = this.control.length - 1; i >= 0; i--) if (this.control[i].kind === 'exchange') this.control.splice(i, 1);
    this.control.unshift(...parts.map((bytes): ControlItem => ({ kind: 'exchange', bytes })));
    this.drainControl();
  }

  private onExchange(sender: number, msg: Extract<GroupMessage, { type: 'exchange' }>): void {
    if (!this.barrier) { this.onEagerReport(sender, msg); return; }
    const ex = this.exchange;
    if (!ex || ex.ringId.rep !== msg.ringId.rep || ex.ringId.seq !== msg.ringId.seq || !ex.nodes.includes(sender) || ex.complete.has(sender)) {
      this.count('exchangeStale');
      return;
    }
    const report = ex.reports.get(sender) ?? [];
    report.push(...msg.groups.map((g) => ({ group: g.group, members: [...g.members] })));
    ex.reports.set(sender, report);
    if (msg.quorum) ex.quorum.set(sender, msg.quorum);
    if (!msg.last) return;
    ex.complete.add(sender);
    if (ex.nodes.every((n) => ex.complete.has(n))) this.finishExchange(false);
  }

  /** Eager mode: a node's complete report sets its members at once. */
  private onEagerReport(sender: number, msg: Extract<GroupMessage, { type: 'exchange' }>): void {
    if (!this.nodes.includes(sender)) { this.count('exchangeStale'); return; }
    const report = this.partial.get(sender) ?? [];
    report.push(...msg.groups.map((g) => ({ group: g.group, members: [...g.members] })));
    if (!msg.last) { this.partial.set(sender, report); return; }
    this.partial.delete(sender);
    const changes = this.mergeReports({ nodes: [sender], complete: new Set([sender]), reports: new Map([[sender, report]]) });
    for (const [group, c] of changes) {
      this.emitMembership(group, c);
      this.table.prune(group);
    }
  }

  /** last_man_standing: lower expected votes, at this point of the order on every node of the ring. */
  private onExpected(msg: Extract<GroupMessage, { type: 'expected' }>): void {
    if (msg.ringId.rep !== this.ringId.rep || msg.ringId.seq !== this.ringId.seq) { this.count('exchangeStale'); return; }
    const before = this.quorum.state;
    this.quorum.lower(msg.expected);
    if (this.quorum.state.expected < before.expected) this.count('expectedLowered');
    this.quorumChanged(before, new Set());
  }

  private hold(sender: number, msg: GroupMessage, order: Order): void {
    const ex = this.exchange;
    assert(ex, 'hold() only during an exchange');
    const kept = msg.type === 'data' ? { ...msg, data: msg.data.slice() } : msg;
    ex.held.push({ sender, msg: kept, order });
    ex.heldBytes += msg.type === 'data' ? msg.data.length + 64 : 64;
    this.count('heldMessages');
    if (ex.held.length >= HELD_MESSAGES_MAX || ex.heldBytes >= HELD_BYTES_MAX) {
      this.opts.log('warn', 'state exchange held too many messages; finishing it with the reports received', { held: ex.held.length });
      this.finishExchange(true);
    }
  }

  /** Ends the exchange: every reported membership set, the differences told in one regular
   *  event per group, then the held messages applied. `next`: the configuration that interrupted
   *  it (module comment: nodes whose report did not arrive lose their members; views named on the
   *  way to `next`). */
  private finishExchange(forced: boolean, next?: RingId): void {
    const ex = this.exchange;
    assert(ex, 'finishExchange() only during an exchange');
    this.exchange = null;
    if (forced) this.count('exchangesForced');
    this.finishingTo = next ?? null;
    try {
      const before = this.quorum.state;
      this.quorum.configuration(ex.nodes, this.now());
      this.quorum.merge([...ex.quorum.values()]);
      const changes = this.mergeReports(ex);
      for (const [group, left] of ex.pendingLeft) changeOf(changes, group).left.push(...left);
      for (const group of ex.touched) changeOf(changes, group);
      for (const [group, c] of changes) {
        this.emitMembership(group, { ...c, kind: 'regular', ringId: ex.ringId, view: { ringId: ex.ringId, seq: 1 } });
        this.table.prune(group);
      }
      this.quorumChanged(before, new Set(changes.keys()));
      for (const h of ex.held) this.apply(h.sender, h.msg, h.order);
    } finally {
      this.finishingTo = null;
    }
  }

  /** Sets each reporting node's members to its report; returns the differences per group. */
  private mergeReports(ex: Pick<Exchange, 'nodes' | 'complete' | 'reports'>): Map<string, { joined: MemberChange[]; left: MemberChange[] }> {
    const changes = new Map<string, { joined: MemberChange[]; left: MemberChange[] }>();
    for (const node of ex.nodes) {
      if (!ex.complete.has(node)) continue;
      const reported = new Map<string, Member>();
      for (const g of ex.reports.get(node) ?? []) {
        for (const m of g.members) {
          const member = { nodeId: node, pid: m.pid, port: m.port };
          reported.set(`${g.group}\n${memberKey(member)}`, member);
          if (this.table.ensure(g.group).add(member, m.identity)) changeOf(changes, g.group).joined.push({ member, reason: 'join' });
        }
      }
      for (const g of this.table.all()) {
        for (const m of g.ofNode(node)) {
          if (reported.has(`${g.name}\n${memberKey(m)}`)) continue;
          g.remove(m);
          changeOf(changes, g.name).left.push({ member: m, reason: 'nodedown' });
        }
      }
    }
    return changes;
  }

  // ---- the control queue --------------------------------------------------------------------

  private sendControl(item: ControlItem): void {
    if (item.local) this.outstanding.set(item.local, (this.outstanding.get(item.local) ?? 0) + 1);
    this.control.push(item);
    assert(this.control.filter((c) => c.kind !== 'exchange').length <= this.controlMax() + this.opts.limits.socketsMax,
      'the control queue stays bounded: joins are refused past controlMax, each endpoint has one leave at most');
    this.drainControl();
  }

  private drainControl(): void {
    // A driver may deliver inside multicast(); what that delivery queues is sent by this loop.
    if (this.draining) return;
    this.draining = true;
    try { this.drainLoop(); } finally { this.draining = false; }
  }

  private drainLoop(): void {
    while (this.control.length > 0) {
      const item = this.control[0];
      try {
        this.opts.multicast(item.bytes, this.controlOrder);
        if (item.local && item.kind === 'join') this.announced.set(item.local, item.group ?? '');
        if (item.local && item.kind === 'leave') this.announced.delete(item.local);
      } catch (e) {
        if (isClusterError(e, 'EAGAIN')) { this.count('controlEagain'); return; }
        this.count('controlSendErrors');
        this.opts.log('error', 'the driver refused a group control message', { kind: item.kind, error: String(e) });
        if (item.local) this.ownApplied(item.local);
      }
      this.control.shift();
    }
  }

  /** A join still in the queue (never multicast) is simply withdrawn: nobody saw it. */
  private cancelQueuedJoin(local: string, group: string): boolean {
    for (let i = this.control.length - 1; i >= 0; i--) {
      const item = this.control[i];
      if (item.local !== local) continue;
      if (item.kind !== 'join' || item.group !== group) return false;
      this.control.splice(i, 1);
      this.ownApplied(local);
      return true;
    }
    return false;
  }

  /** Each endpoint has at most one queued leave and one queued join (a queued join is
   *  withdrawn, not answered by a leave), so twice the socket limit bounds the queue. */
  private controlMax(): number {
    return 2 * this.opts.limits.socketsMax;
  }

  // ---- helpers ------------------------------------------------------------------------------

  private checkName(group: string): void {
    if (typeof group !== 'string' || !isValidGroupName(group)) {
      throw new ClusterError('EINVAL', 'a group name is 1 or more characters without control characters');
    }
    const bytes = new TextEncoder().encode(group).length;
    const max = Math.min(this.opts.limits.groupNameMax, NAME_WIRE_MAX);
    if (bytes > max) throw new ClusterError('ENAMETOOLONG', `group name of ${bytes} bytes exceeds limits.group_name_max (${max})`);
  }

  private checkGroupLimits(group: string): void {
    const bound = new Set<string>();
    for (const ep of this.locals.values()) if (ep.binding) bound.add(ep.binding.group);
    if (!bound.has(group) && bound.size >= this.opts.limits.groupsMax) {
      throw new ClusterError('EMFILE', `sockets on this node are already bound to ${bound.size} groups (limits.groups_max); unbind some first`);
    }
    const size = this.table.get(group)?.size ?? 0;
    if (size >= this.opts.limits.membersMax) {
      throw new ClusterError('EMFILE', `group "${group}" already has limits.members_max (${this.opts.limits.membersMax}) members`);
    }
  }

  private supportedOrders(): Order[] {
    return (['fifo', 'agreed', 'safe'] as const).filter((o) => this.opts.guarantees[o]);
  }

  private count(name: string, n = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + n;
  }

  /** Runs an upcall; overrun endpoints are handled once the outermost upcall unwinds. */
  private guarded(fn: () => void): void {
    this.dispatching++;
    try { fn(); } finally { this.dispatching--; }
    if (this.dispatching === 0) this.flushOverruns();
  }
}

function reported(pid: number, port: number, identity: MemberIdentity | undefined): ReportedMember {
  return identity ? { pid, port, identity } : { pid, port };
}

function keyOf(ep: Endpoint): string {
  return `${ep.member.pid}:${ep.member.port}`;
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

function changeOf(changes: Map<string, { joined: MemberChange[]; left: MemberChange[] }>, group: string): { joined: MemberChange[]; left: MemberChange[] } {
  let c = changes.get(group);
  if (!c) { c = { joined: [], left: [] }; changes.set(group, c); }
  return c;
}

function sameQuorum(a: QuorumState, b: QuorumState): boolean {
  return a.quorate === b.quorate && a.votes === b.votes && a.expected === b.expected && a.quorum === b.quorum
    && a.flags.length === b.flags.length && a.flags.every((f, i) => f === b.flags[i]);
}
