// The cman driver: the baseline Totem was argued against on linux-cluster in 2004. A frame is
// multicast; every node of the sender's membership must acknowledge it; one not acknowledged
// within ack_timeout_ms is resent, by unicast, to the members that did not. Receivers deliver
// FIFO per sender and drop duplicates. Membership comes from heartbeats and each node decides
// it alone. No token, no sequencer, no total order, nothing across membership changes.
// Heartbeats carry a digest of whom the sender counts, so a node that a peer dropped while it
// kept counting that peer (a SIGSTOP past the dead time, a resend limit, lost heartbeats one
// way) reports that peer leaving and rejoining: the layer above then re-announces its state.
// Pure: the host injects clock, transport and state (docs/ARCHITECTURE.md, "The driver interface").
import { ClusterError, assert, isClusterError } from '../../core/api/errors.ts';
import { dropParts, holdParts } from '../../core/wire/lease.ts';
import { Packer, Reassembler, deliverTo, deliverWhole } from '../../core/driver/packing.ts';
import type {
  Driver, DriverCommon, DriverHost, DriverStats, Guarantees, MessageBytes, Order,
} from '../../core/driver/types.ts';
import {
  DATA_HEADER_BYTES, bitmapSeqs, decode, digestToken, encodeAck, encodeData, encodeDataAroundFrame, encodeHeartbeat, encodeLeave,
  makeBitmap, makeDigest, nodeListHash, type AckMsg, type DataMsg, type HeartbeatMsg,
} from './codec.ts';
import { Membership, type GoneReason } from './membership.ts';
import { frameWindowMax, type CmanOptions } from './options.ts';
import { loadPersisted, savePersisted } from './persist.ts';
import { RecvStream } from './stream.ts';
import { SendWindow } from './window.ts';

export const CMAN_GUARANTEES: Guarantees = { fifo: true, agreed: false, safe: false, virtualSynchrony: false };

type Phase = 'new' | 'running' | 'left';

/** Counters for stats(); names carry their unit where they have one. */
interface Counters {
  multicasts: number; eagain: number; delivered: number; selfDelivered: number;
  framesSent: number; messagesFramed: number; resent: number; resendRounds: number;
  acksSent: number; acksReceived: number; acksStale: number;
  heartbeatsSent: number; heartbeatsReceived: number; leavesReceived: number;
  framesReceived: number; duplicates: number; beyondWindow: number; framesSkipped: number;
  droppedMalformed: number; droppedMalformedFrames: number; droppedStale: number; droppedForeign: number;
  configurations: number; declaredSilent: number; declaredUnacked: number;
  declaredByPeer: number; reannounced: number; digestsIgnored: number;
}

function zeroCounters(): Counters {
  return {
    multicasts: 0, eagain: 0, delivered: 0, selfDelivered: 0,
    framesSent: 0, messagesFramed: 0, resent: 0, resendRounds: 0,
    acksSent: 0, acksReceived: 0, acksStale: 0,
    heartbeatsSent: 0, heartbeatsReceived: 0, leavesReceived: 0,
    framesReceived: 0, duplicates: 0, beyondWindow: 0, framesSkipped: 0,
    droppedMalformed: 0, droppedMalformedFrames: 0, droppedStale: 0, droppedForeign: 0,
    configurations: 0, declaredSilent: 0, declaredUnacked: 0,
    declaredByPeer: 0, reannounced: 0, digestsIgnored: 0,
  };
}

export class CmanDriver implements Driver {
  readonly name = 'cman';
  readonly guarantees = CMAN_GUARANTEES;
  private readonly self: number;
  private readonly others: ReadonlySet<number>;
  /** Every configured node, ascending: the index of a node's nibble in a digest. */
  private readonly allNodes: readonly number[];
  private readonly selfIndex: number;
  private readonly listHash: number;
  private listMismatchLogged = false;
  private readonly deadAfterMs: number;
  private phase: Phase = 'new';
  private incarnation = 0;
  private ringSeq = 0;
  private readonly members: Membership;
  private readonly window: SendWindow;
  /** window_max for this MTU's frames (options.ts, frameWindowMax). */
  private readonly windowMax: number;
  private readonly packer: Packer;
  private readonly reassembler: Reassembler;
  private readonly streams = new Map<number, RecvStream>();
  /** Own messages, delivered locally at the next event (never inside multicast()). */
  private selfQueue: MessageBytes[] = [];
  private readonly acksDue = new Set<number>();
  private ackDueAt = Infinity;
  private heartbeatAt = Infinity;
  /** The membership changed: the new digest goes out before any frame framed after it. */
  private announce = false;
  private readonly c = zeroCounters();

  constructor(common: DriverCommon, private readonly opts: CmanOptions, private readonly host: DriverHost) {
    assert(common.nodes.includes(common.nodeId), 'this node is in the configured node list');
    this.self = common.nodeId;
    this.others = new Set(common.nodes.filter((n) => n !== common.nodeId));
    this.allNodes = [...new Set(common.nodes)].sort((a, b) => a - b);
    this.selfIndex = this.allNodes.indexOf(this.self);
    this.listHash = nodeListHash(this.allNodes);
    this.deadAfterMs = (opts.deadAfterMissed + 0.5) * opts.heartbeatMs;
    this.members = new Membership(2 * this.deadAfterMs);
    this.windowMax = frameWindowMax(opts, common.mtu);
    this.window = new SendWindow(this.windowMax);
    this.packer = new Packer({
      frameSizeMax: common.mtu - DATA_HEADER_BYTES,
      messageSizeMax: common.messageSizeMax,
      queueMessagesMax: opts.queueMessagesMax,
      queueBytesMax: opts.queueBytesMax,
      // A frame's first DATA is written around it (pump), and the host's header in front.
      headroom: (common.headroom ?? 0) + DATA_HEADER_BYTES,
      // A host that encrypts (headroom 0) writes a new datagram: the frame need not be copied out.
      copyOut: common.headroom !== 0,
    });
    // A partial message must fit, or large messages could never be reassembled.
    const partialBytesMax = Math.max(opts.partialBytesMax, common.messageSizeMax);
    this.reassembler = new Reassembler({ messageSizeMax: common.messageSizeMax, partialBytesMax });
  }

  // ---- the driver interface ------------------------------------------------------------

  start(): void {
    assert(this.phase === 'new', 'start() is called once');
    const saved = loadPersisted(this.host.state);
    this.incarnation = saved.incarnation >= 0xffffffff ? 1 : saved.incarnation + 1;
    this.ringSeq = saved.ringSeq;
    this.phase = 'running';
    // The first configuration is this node alone; others join as their heartbeats arrive.
    this.reportConfiguration([], [this.self]);
    this.sendHeartbeat(this.host.now());
  }

  /** The send queue and the self-delivery queue hold what they keep (core/wire/lease.ts). */
  readonly multicastHolds = true;

  multicast(message: MessageBytes, order: Order): void {
    if (this.phase !== 'running') {
      throw new ClusterError('ENOTCONN', this.phase === 'new'
        ? 'the cman driver is not started yet' : 'this node left the cluster; restart it to rejoin');
    }
    if (order === 'safe' || (order === 'agreed' && !this.opts.serveAgreedAsFifo)) {
      throw new ClusterError('EOPNOTSUPP', `the cman driver gives FIFO order only, not '${order}'; `
        + "send with order 'fifo' or use the totem driver");
    }
    try {
      this.packer.push(message, 'fifo'); // closed after a refusal until its low mark (Packer.push)
    } catch (e) {
      if (isClusterError(e, 'EAGAIN')) this.c.eagain++;
      throw e;
    }
    this.c.multicasts++;
    this.selfQueue.push(message); // the packer's bytes too: neither writes them
    holdParts(message); // until delivered here (flushSelf)
  }

  handleDatagram(from: number, bytes: Uint8Array): void {
    if (this.phase !== 'running') return;
    this.flushSelf();
    if (!this.others.has(from)) {
      this.c.droppedForeign++;
      return;
    }
    const d = decode(bytes);
    if (!d.ok) {
      this.c.droppedMalformed++;
      this.host.log('debug', 'cman: dropped a malformed datagram', { from, reason: d.reason });
      return;
    }
    const msg = d.msg;
    const now = this.host.now();
    if (msg.type === 'leave') {
      this.onLeave(from, msg.incarnation, now);
      return;
    }
    if (!this.admit(from, msg.incarnation, now)) return;
    switch (msg.type) {
      case 'data': this.onData(from, msg); break;
      case 'ack': this.onAck(from, msg); break;
      case 'heartbeat': this.onHeartbeat(from, msg); break;
    }
    this.pump(now);
  }

  handleTimeout(): void {
    if (this.phase !== 'running') return;
    const now = this.host.now();
    this.flushSelf();
    if (this.ackDueAt <= now) this.sendAcks();
    this.checkSilent(now);
    this.resendDue(now);
    if (this.heartbeatAt <= now || this.announce) this.sendHeartbeat(now);
    this.pump(now);
  }

  nextDeadline(): number {
    if (this.phase !== 'running') return Infinity;
    const now = this.host.now();
    if (this.announce || this.selfQueue.length > 0 || (this.packer.queuedMessages > 0 && this.window.hasRoom)) return now;
    let at = Math.min(this.heartbeatAt, this.ackDueAt, this.window.earliestResend());
    for (const [, m] of this.members.entries()) at = Math.min(at, m.lastHeardAt + this.deadAfterMs);
    return at;
  }

  leave(): void {
    if (this.phase !== 'running') return;
    this.flushSelf();
    this.host.transmit('all', encodeLeave({ incarnation: this.incarnation }));
    this.phase = 'left';
    for (const m of this.selfQueue) dropParts(m);
    this.selfQueue = []; // multicast from inside those deliveries, never sent
    this.packer.clear();
    this.window.clear();
    this.streams.clear();
    this.acksDue.clear();
  }

  stats(): DriverStats {
    return {
      ...this.c,
      incarnation: this.incarnation,
      ringSeq: this.ringSeq,
      members: this.members.size + 1,
      windowFrames: this.window.inFlight,
      nextSeq: this.window.nextSeq,
      queuedMessages: this.packer.queuedMessages,
      queuedBytes: this.packer.queuedBytes,
      partialSenders: this.reassembler.partialSenders().length,
      fragmentsDiscarded: this.reassembler.counters.fragmentsDiscarded,
      partialsDropped: this.reassembler.counters.partialsDropped,
    };
  }

  checkInvariants(): void {
    const ids = new Set(this.members.ids);
    assert(!ids.has(this.self), 'this node is not in its own peer set');
    for (const n of ids) assert(this.others.has(n), `member ${n} is a configured node`);
    this.window.checkInvariants(ids);
    for (const s of this.streams.values()) s.checkInvariants();
    assert(this.streams.size <= this.others.size, 'one stream per configured peer at most');
    assert(this.selfQueue.length <= 2 * this.opts.queueMessagesMax,
      'self-delivery queue bounded by the send queue');
    assert(this.packer.queuedMessages <= this.opts.queueMessagesMax, 'send queue within its limit');
    if (this.phase === 'left') assert(this.window.inFlight === 0, 'nothing kept after leave');
  }

  // ---- receiving -----------------------------------------------------------------------

  /** Applies what a datagram's (node, incarnation) says about membership; false = drop it. */
  private admit(from: number, incarnation: number, now: number): boolean {
    const how = this.members.classify(from, incarnation, now);
    if (how === 'stale') {
      this.c.droppedStale++;
      return false;
    }
    if (how === 'restarted') this.removeNodes([from], 'restarted', now);
    if (how !== 'member') {
      const s = this.streams.get(from);
      if (s && s.incarnation !== incarnation) this.dropStream(from);
      this.members.add(from, incarnation, now);
      this.reportConfiguration([], [from]);
    }
    this.members.get(from)!.lastHeardAt = now;
    return true;
  }

  private onLeave(from: number, incarnation: number, now: number): void {
    this.c.leavesReceived++;
    const m = this.members.get(from);
    if (m && incarnation < m.incarnation) return; // a late leave of an older incarnation
    // A newer incarnation leaving means the node restarted and left: gone either way.
    if (m) {
      this.removeNodes([from], 'leave', now);
      this.dropStream(from);
    }
    this.members.noteLeft(from, incarnation, now);
  }

  private onData(from: number, msg: DataMsg): void {
    this.c.framesReceived++;
    const stream = this.streamFor(from, msg.incarnation, msg.low);
    const feed = (frame: Uint8Array): void => this.feed(from, frame);
    const gap = (n: number): void => {
      this.c.framesSkipped += n;
      this.reassembler.dropSender(from);
    };
    stream.drain(msg.low, feed, gap);
    const got = stream.offer(msg.seq, msg.frame, feed);
    if (got === 'duplicate') this.c.duplicates++;
    if (got === 'beyond') this.c.beyondWindow++;
    stream.drain(msg.low, feed, gap);
    this.ackLater(from);
  }

  private onHeartbeat(from: number, msg: HeartbeatMsg): void {
    this.c.heartbeatsReceived++;
    this.onDigest(from, msg);
    const stream = this.streamFor(from, msg.incarnation, msg.low);
    stream.drain(msg.low, (f) => this.feed(from, f), (n) => {
      this.c.framesSkipped += n;
      this.reassembler.dropSender(from);
    });
  }

  private onAck(from: number, msg: AckMsg): void {
    if (msg.ackedIncarnation !== this.incarnation) {
      this.c.acksStale++;
      return;
    }
    this.c.acksReceived++;
    this.window.ack(from, msg.cumulative, bitmapSeqs(msg.cumulative, msg.bitmap));
    this.window.collect();
  }

  /** The stream of `from`'s current incarnation; a new one starts at the sender's low. */
  private streamFor(from: number, incarnation: number, low: number): RecvStream {
    let s = this.streams.get(from);
    if (!s || s.incarnation !== incarnation) {
      if (s) this.dropStream(from);
      s = new RecvStream(incarnation, low, this.windowMax);
      this.streams.set(from, s);
    }
    return s;
  }

  private dropStream(from: number): void {
    this.streams.delete(from);
    this.reassembler.dropSender(from);
  }

  private feed(from: number, frame: Uint8Array): void {
    if (this.phase !== 'running') return;
    try {
      this.reassembler.accept(from, frame, (payload) => {
        this.c.delivered++;
        deliverTo(this.host, from, payload, 'fifo');
      }, (whole, start, end) => {
        this.c.delivered++;
        deliverWhole(this.host, from, whole, start, end, 'fifo');
      });
    } catch (e) {
      if (!isClusterError(e, 'EPROTO')) throw e;
      this.c.droppedMalformedFrames++;
      this.reassembler.dropSender(from);
    }
  }

  private flushSelf(): void {
    if (this.selfQueue.length === 0) return;
    const q = this.selfQueue;
    this.selfQueue = [];
    for (const m of q) {
      this.c.selfDelivered++;
      this.c.delivered++;
      // A message in parts goes up in those parts (the group layer's header and the payload).
      try {
        deliverTo(this.host, this.self, m, 'fifo');
      } finally {
        dropParts(m);
      }
    }
  }

  // ---- acks ----------------------------------------------------------------------------

  private ackLater(to: number): void {
    this.acksDue.add(to);
    if (this.ackDueAt === Infinity) this.ackDueAt = this.host.now() + this.opts.ackDelayMs;
  }

  /** One ack per sender heard from: cumulative plus a bitmap of the frames held above it. */
  private sendAcks(): void {
    for (const to of this.acksDue) {
      const s = this.streams.get(to);
      const m = this.members.get(to);
      if (!s || !m) continue;
      const cumulative = s.expected - 1;
      const bytes = encodeAck({
        incarnation: this.incarnation, ackedIncarnation: s.incarnation, cumulative,
        bitmap: makeBitmap(cumulative, s.held()),
      });
      this.host.transmit(to, bytes);
      this.c.acksSent++;
    }
    this.acksDue.clear();
    this.ackDueAt = Infinity;
  }

  // ---- sending -------------------------------------------------------------------------

  /** Frames queued messages while the window has room, then tells a blocked writer. */
  private pump(now: number): void {
    // Frames wait for the heartbeat a membership change calls for (sent at the next timeout, at
    // once: several changes in one burst of datagrams go out in one digest).
    while (!this.announce && this.phase === 'running' && this.window.hasRoom) {
      const frame = this.packer.nextFrame(now);
      if (!frame) break;
      const entry = this.window.add(frame.bytes, new Set(this.members.ids), now + this.opts.ackTimeoutMs);
      // The frame becomes the datagram: the DATA header and the host's go into the room in front.
      this.host.transmit('all', encodeDataAroundFrame({
        incarnation: this.incarnation, resend: false, seq: entry.seq, low: this.window.low, frame: frame.bytes,
      }), true);
      this.c.framesSent++;
      this.c.messagesFramed += frame.messages;
      this.window.collect();
    }
    if (this.packer.takeWritable()) this.host.writable?.();
  }

  /** Resends every overdue frame to the members that have not acked it, by unicast. */
  private resendDue(now: number): void {
    const unacked = new Set<number>();
    for (const e of this.window.pending()) {
      if (e.nextResendAt > now) continue;
      if (e.resends >= this.opts.resendMax) {
        for (const n of e.awaiting) unacked.add(n);
        continue;
      }
      e.resends++;
      e.nextResendAt = now + this.opts.ackTimeoutMs;
      this.c.resendRounds++;
      const bytes = encodeData({ incarnation: this.incarnation, resend: true, seq: e.seq, low: this.window.low, frame: e.frame });
      const everyone = e.awaiting.size === this.others.size;
      for (const to of everyone ? ['all' as const] : e.awaiting) {
        this.host.transmit(to, to === 'all' ? bytes : bytes.slice());
      }
      this.c.resent += e.awaiting.size;
    }
    if (unacked.size > 0) {
      this.c.declaredUnacked += unacked.size;
      this.host.log('warn', 'cman: members never acknowledged a frame; declaring them down',
        { nodes: [...unacked], resends: this.opts.resendMax });
      this.removeNodes([...unacked], 'unacked', now);
    }
  }

  private sendHeartbeat(now: number): void {
    this.host.transmit('all', encodeHeartbeat({
      incarnation: this.incarnation, nextSeq: this.window.nextSeq, low: this.window.low,
      epoch: this.ringSeq, listHash: this.listHash,
      digest: makeDigest(this.allNodes.length, (i) => this.members.token(this.allNodes[i])),
    }));
    this.c.heartbeatsSent++;
    this.heartbeatAt = now + this.opts.heartbeatMs;
    this.packer.releaseIdle(); // nothing queued since the last heartbeat: its free frame buffers go
    this.announce = false;
  }

  // ---- membership ----------------------------------------------------------------------

  /**
   * What `from` says about this node. Its token for us changes only when it dropped us (0) or
   * dropped and re-added us (another value); each decides alone, so we learn it here:
   * - it counts us no longer: it left our configuration (its acks are not awaited, the layer
   *   above drops its state), and as it is alive it rejoins at once (its state is re-announced
   *   after its own re-add, which follows this digest on the link, and ours after this join);
   * - it already re-added us (every digest saying otherwise was lost): a new configuration with
   *   the same members, so the layer above re-announces ours. Not a leave: its re-announcement
   *   may already have been delivered here, and a leave now would discard it.
   */
  private onDigest(from: number, msg: HeartbeatMsg): void {
    const m = this.members.get(from);
    if (!m) return;
    if (msg.listHash !== this.listHash) {
      this.c.digestsIgnored++;
      if (!this.listMismatchLogged) {
        this.listMismatchLogged = true;
        this.host.log('warn', 'cman: a peer has another cluster.nodes list; give every node the same list', { from });
      }
      return;
    }
    if (msg.epoch < m.digestEpoch) { // reordered: a later digest was already read
      this.c.digestsIgnored++;
      return;
    }
    const token = digestToken(msg.digest, this.selfIndex);
    const before = m.peerToken;
    m.peerToken = token;
    m.digestEpoch = msg.epoch;
    if (before <= 0 || token === before) return;
    this.c.declaredByPeer++;
    const now = this.host.now();
    this.host.log('info', 'cman: a peer declared this node down', { from, rejoined: token !== 0 });
    if (token !== 0) {
      this.c.reannounced++;
      this.reportConfiguration([], []);
      return;
    }
    this.removeNodes([from], 'peer', now);
    this.members.add(from, m.incarnation, now);
    Object.assign(this.members.get(from)!, { peerToken: 0, digestEpoch: msg.epoch });
    this.reportConfiguration([], [from]);
  }

  private checkSilent(now: number): void {
    const silent: number[] = [];
    for (const [n, m] of this.members.entries()) if (m.lastHeardAt + this.deadAfterMs <= now) silent.push(n);
    if (silent.length === 0) return;
    this.c.declaredSilent += silent.length;
    this.removeNodes(silent, 'silent', now);
  }

  /** Takes nodes out of the membership: their acks are no longer awaited. One configuration. */
  private removeNodes(nodes: number[], reason: GoneReason, now: number): void {
    const hold = reason === 'unacked' ? this.deadAfterMs : 0;
    for (const n of nodes) {
      this.members.remove(n, reason, now, hold);
      this.window.forget(n);
      this.acksDue.delete(n);
      if (reason === 'restarted') this.dropStream(n);
    }
    this.window.collect();
    this.reportConfiguration(nodes, []);
  }

  private reportConfiguration(left: number[], joined: number[]): void {
    this.ringSeq++;
    savePersisted(this.host.state, { incarnation: this.incarnation, ringSeq: this.ringSeq });
    this.c.configurations++;
    const members = [...this.members.ids, this.self].sort((a, b) => a - b);
    this.host.configuration({
      kind: 'regular',
      ringId: { rep: this.self, seq: this.ringSeq },
      members,
      left: [...left].sort((a, b) => a - b),
      joined: [...joined].sort((a, b) => a - b),
    });
    this.announce = true;
  }
}
