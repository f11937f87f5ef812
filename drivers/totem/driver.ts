// The Totem single-ring protocol as a pure state machine (docs/TOTEM.md; Amir et al., TOCS 1995):
// membership in four states (GATHER, COMMIT, RECOVERY, OPERATIONAL), total order by a rotating
// token, safe delivery, and extended virtual synchrony across configuration changes.
//
// Output ordering rules: the ring seq is saved (host.state) before this node enters COMMIT, so a
// restarted node never reuses a ring id; a configuration event is reported before any delivery
// that belongs to it; deliveries of one ring follow its seq order.
import { ClusterError, assert } from '../../core/api/errors.ts';
import { Packer, Reassembler, deliverTo, deliverWhole } from '../../core/driver/packing.ts';
import { drop, hold } from '../../core/wire/lease.ts';
import {
  ringIdEquals, formatRingId, type Configuration, type Driver, type DriverCommon, type DriverHost,
  type Guarantees, type MessageBytes, type Order, type RingId,
} from '../../core/driver/types.ts';
import {
  decode, encode, encodeMcastAroundFrame, MCAST_HEADER_BYTES, ENCAP_HEADER_BYTES, COMMIT_FIXED_BYTES, COMMIT_MEMBER_BYTES,
  type CommitMsg, type JoinMsg, type McastMsg, type TokenMsg, type TotemMsg, type DecodeLimits,
} from './codec.ts';
import { RingLog, type StoredMsg } from './ringlog.ts';
import { TokenTimer } from './token-timer.ts';
import { frameWindow, type TotemOptions } from './options.ts';

export const TOTEM_GUARANTEES: Guarantees = { fifo: true, agreed: true, safe: true, virtualSynchrony: true };
const RING_SEQ_KEY = 'totem.ringseq';
/** Visits after a sign of loss during which tokens go out in token_copies_on_loss copies. */
const LOSS_MEMORY_VISITS = 64;

type State = 'gather' | 'commit' | 'recovery' | 'operational' | 'left';

/** What RECOVERY needs from the commit token (docs/TOTEM.md, "Recovery"). */
interface Recovery {
  readonly old: RingLog;
  /** New members that shared my old ring: the transitional configuration. */
  readonly trans: readonly number[];
  /** Highest safe line among them: messages up to it are delivered in the old regular conf. */
  readonly maxSafe: number;
  /** Old-ring messages this node must re-send wrapped in new-ring messages. */
  readonly queue: StoredMsg[];
  /** The representative's install bookkeeping: seq all re-sends fit under, once known. */
  installSeq?: number;
  /** The representative's visits in RECOVERY: the first (origination) proves nothing. */
  repVisits: number;
  originated: boolean;
}

const sorted = (s: Iterable<number>): number[] => [...s].sort((a, b) => a - b);
const sameSet = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** Visits after its last park at which a node still leaves the token's `parks` flag set: a lone
 *  sender that parks at most visits must not let the others miss the flag between its runs. */
const PARKS_FLAG_VISITS = 4;
/** Visits in a row at which no other node had sent or queued anything before a node parks the
 *  token: a lone sender, not one between the bursts of others (a burst a millisecond is about five
 *  rotations on a LAN). */
const PARK_QUIET_VISITS = 8;
/** How long a ring stays idle at this node before its send queue lets its free frame buffers go
 *  (Packer.releaseIdle). */
const FRAME_BUFFERS_IDLE_MS = 1000;

export class TotemDriver implements Driver {
  readonly name = 'totem';
  readonly guarantees = TOTEM_GUARANTEES;
  private readonly me: number;
  private state: State = 'gather';
  private started = false;
  /** Operational ring (or, in GATHER/COMMIT, the last one); in RECOVERY the new ring. */
  private cur: RingLog;
  private rec: Recovery | undefined;
  /** Last regular configuration delivered; undefined before the first. */
  private lastRegular: Configuration | undefined;
  private ringSeqCommitted = 0;
  private ringSeqSeen = 0;
  /** A cold start waits this long for others before forming a ring alone. */
  private aloneNotBefore = 0;
  /** The configured node ids (common.nodes, or the list of the last setNodes). */
  private nodes: readonly number[];
  // GATHER
  private proc = new Set<number>();
  private failed = new Set<number>();
  private consensus = new Set<number>();
  private joinSeq = 0;
  /** The newest join seen from each node: older ones (delayed, held by a clogged link) are stale. */
  private readonly newestJoin = new Map<number, { rs: number; js: number }>();
  private commit: CommitMsg | undefined;
  // the token on the current ring
  private lastTokenSeq = -1;
  private prevVisitAru: number | undefined;
  private prevSafeAru: number | undefined;
  private lastRecvAru = -1;
  private lastForwardedSeq = 0;
  private aruStuck = 0;
  private sentLastVisit = 0;
  private backlogLastVisit = 0;
  private readonly missCount = new Map<number, number>();
  private idleRotations = 0;
  /** Idle visits in a row, not reset by a hold's end: the ring as the others see it (mayBeHeld). */
  private idleVisits = 0;
  /** When this node's current run of idle visits began (Infinity: the last visit was not idle). */
  private idleFrom = Infinity;
  private lastRotationSeq = -1;
  private held: TokenMsg | undefined;
  /** The held token is parked after my lone messages (shouldPark), not held on an idle ring. */
  private parked = false;
  /** I set the token's `parks` flag, and clear it PARKS_FLAG_VISITS visits after my last park. */
  private parksFlagMine = false;
  /** The visit at which I last parked the token, and when the current run of parks began. */
  private lastParkVisit = -Infinity;
  private parkRunStart = 0;
  /** Visits in a row at which the token showed no other node's frames or backlog. */
  private quietVisits = 0;
  /** The last token here said a node parks it: a message queued while it is away sends a hold cancel. */
  private parkSeen = false;
  /** The frames sent at this visit (or release) included a safe one: safe order needs rotations. */
  private sentSafe = false;
  /** Application messages (or fragments) in the frames sent at this visit (or release). */
  private sentMessages = 0;
  private holdCancelSentFor = -1;
  /** Re-sends of the hold cancel so far: a lost one must not cost a whole hold_ms. */
  private holdCancelAttempt = 0;
  private lastToken: { to: number; bytes: Uint8Array; regular: boolean } | undefined;
  /** Re-sends of lastToken so far (each waits twice the previous; TokenTimer). */
  private retransmitAttempt = 0;
  /** When I last forwarded a regular token: the next one back measures a rotation. */
  private forwardedAt: number | undefined;
  /** Frames of mine sent on releasing a held token, to deliver at the host's next turn. */
  private ownDeliveryDue = false;
  private readonly tokenTimer: TokenTimer;
  /** Tokens accepted on any ring, and the visit at which this node last saw a sign of loss. */
  private visits = 0;
  private lossSeenVisit = -Infinity;
  // deadlines (ms, host clock); Infinity = off
  private tokenLossAt = Infinity;
  private retransmitAt = Infinity;
  private joinAt = Infinity;
  /** OPERATIONAL: the install rotation has come round, so every member has installed this ring. */
  private settled = false;
  private consensusAt = Infinity;
  private holdUntil = Infinity;
  private holdCancelAt = Infinity;
  private mergeAt = Infinity;
  private readonly sendQueue: Packer;
  private readonly reassembler: Reassembler;
  private readonly local: Uint8Array[] = [];
  private draining = false;
  private readonly limits: DecodeLimits;
  /** window_size and max_messages for this MTU's frames (options.ts, frameWindow). */
  private readonly window: { readonly windowSize: number; readonly maxMessages: number };
  private readonly counters: Record<string, number> = {
    malformed: 0, unknownSender: 0, tokens: 0, tokenRetransmits: 0, mcastSent: 0, mcastRetransmits: 0,
    mcastReceived: 0, duplicates: 0, delivered: 0, rings: 0, gathers: 0, foreign: 0, failedToReceive: 0,
    tooFarAhead: 0, badFrames: 0, staleJoins: 0, rewinds: 0, holds: 0, parks: 0, holdCancels: 0, mergeDetects: 0,
  };

  constructor(private readonly common: DriverCommon, private readonly opts: TotemOptions,
    private readonly host: DriverHost) {
    this.me = common.nodeId;
    const membersMax = Math.floor((common.mtu - COMMIT_FIXED_BYTES) / COMMIT_MEMBER_BYTES);
    this.checkNodes(common.nodes, membersMax);
    this.nodes = [...common.nodes];
    this.limits = { rtrMax: opts.retransmitListMax, membersMax };
    this.tokenTimer = new TokenTimer(opts.tokenRetransmitMinMs, opts.tokenRetransmitMs);
    this.window = frameWindow(opts, common.mtu);
    this.cur = new RingLog({ rep: this.me, seq: 0 }, [this.me], this.storeSpanMax(1));
    this.sendQueue = new Packer({
      frameSizeMax: common.mtu - MCAST_HEADER_BYTES - ENCAP_HEADER_BYTES,
      messageSizeMax: common.messageSizeMax,
      queueMessagesMax: opts.sendQueueMax,
      queueBytesMax: opts.sendQueueBytesMax,
      // A new frame's first MCAST is written around it (multicastStored), and the host's header in front.
      headroom: (common.headroom ?? 0) + MCAST_HEADER_BYTES,
      // A host that encrypts (headroom 0) writes a new datagram: the frame need not be copied out.
      copyOut: common.headroom !== 0,
    });
    this.reassembler = new Reassembler({ messageSizeMax: common.messageSizeMax, partialBytesMax: opts.partialBytesMax });
  }

  // ---- the Driver interface -----------------------------------------------------------------

  start(): void {
    assert(!this.started, 'start() is called once');
    this.started = true;
    const saved = this.host.state.load(RING_SEQ_KEY);
    const loaded = saved && saved.length === 8 ? new DataView(saved.buffer, saved.byteOffset, 8).getFloat64(0) : 0;
    this.saveRingSeq(Number.isFinite(loaded) ? loaded + 1 : 1);
    this.cur = new RingLog({ rep: this.me, seq: this.ringSeqCommitted }, [this.me], this.storeSpanMax(1));
    this.proc = new Set([this.me]);
    this.state = 'commit';
    this.enterGather('start');
    this.drain();
  }

  handleDatagram(from: number, bytes: Uint8Array): void {
    if (this.state === 'left' || !this.started) return;
    const d = decode(bytes, this.limits);
    if ('error' in d) {
      this.counters.malformed++;
      return;
    }
    if (d.msg.sender !== from || !this.nodes.includes(from) || from === this.me) {
      this.counters.unknownSender++;
      return;
    }
    this.dispatch(d.msg);
    this.drain();
  }

  handleTimeout(): void {
    if (this.state === 'left' || !this.started) return;
    if (this.ownDeliveryDue) {
      this.ownDeliveryDue = false;
      if (this.state === 'operational') this.deliverReady();
      this.notifyWritable();
    }
    const now = this.host.now();
    if (this.retransmitAt <= now) this.retransmitToken(now);
    if (this.holdUntil <= now) this.releaseHold('expired');
    if (this.holdCancelAt <= now) this.holdCancelTimer();
    if (this.state === 'gather') {
      if (this.consensusAt <= now) this.consensusTimeout();
      else if (this.joinAt <= now) this.sendJoin();
    } else if (this.tokenLossAt <= now) {
      this.enterGather('token loss');
    }
    if (this.mergeAt <= now) this.mergeTimer(now);
    this.drain();
  }

  nextDeadline(): number {
    if (this.state === 'left' || !this.started) return Infinity;
    if (this.ownDeliveryDue) return this.host.now();
    return Math.min(this.tokenLossAt, this.retransmitAt, this.joinAt, this.consensusAt, this.holdUntil, this.holdCancelAt, this.mergeAt);
  }

  /** A message that fits a frame is written into one when it is queued (core/driver/packing.ts). */
  get multicastCopiesUpTo(): number {
    return this.sendQueue.wholeMax;
  }

  /** Only the send queue keeps a message, and it holds what it keeps (core/driver/packing.ts). */
  readonly multicastHolds = true;

  multicast(message: MessageBytes, order: Order): void {
    if (this.state === 'left') throw new ClusterError('ENOTCONN', 'this node left the cluster; start a new driver');
    this.sendQueue.push(message, order);
    if (this.held) {
      // The token goes with this message: a later one before the token is back needs no cancel
      // (the others see a busy ring). After a hold that ended on its own, one may: the idle
      // token may be lost on its way, and the cancel wakes every node's re-send.
      this.holdCancelSentFor = this.lastTokenSeq;
      this.releaseHold('send');
    } else if (this.wantsCancel() && this.holdCancelSentFor !== this.lastTokenSeq) {
      this.holdCancelSentFor = this.lastTokenSeq;
      this.holdCancelAttempt = 0;
      this.sendHoldCancel();
      this.tokenWanted();
    }
    this.drain();
  }

  /** The representative may be holding the token: the ring has been idle here for all but one of
   *  the rotations it waits for (it counts the same rotations, at most one visit apart), and for
   *  one at least. On a busy ring no hold cancel is sent. (The representative sends one too: it
   *  may not hold the token but wait, like the others, for one lost on an idle ring, and a cancel
   *  makes every node's re-send due at the short bound.) */
  private mayBeHeld(): boolean {
    return this.state === 'operational' && this.opts.holdMs > 0
      && this.idleVisits >= Math.max(1, this.opts.seqnoUnchangedConst - 1);
  }

  /** A message queued now may wait for a held or parked token: a hold cancel frees it. */
  private wantsCancel(): boolean {
    return this.mayBeHeld() || (this.parkSeen && !this.parksFlagMine && this.state === 'operational');
  }

  /** Sent again, at the re-send floor doubling, until a token arrives or a hold would be over. */
  private sendHoldCancel(): void {
    this.counters.holdCancels++;
    this.host.transmit('all', encode({ type: 'holdCancel', sender: this.me, ring: this.cur.ring }));
    const wait = this.opts.tokenRetransmitMinMs * 2 ** this.holdCancelAttempt;
    // As long as a hold may last, or a run of parks.
    const horizon = Math.max(this.opts.holdMs, this.opts.parkMs > 0 ? this.parkRunMaxMs() : 0);
    this.holdCancelAt = wait < horizon ? this.host.now() + wait : Infinity;
  }

  private holdCancelTimer(): void {
    this.holdCancelAt = Infinity;
    if (!this.wantsCancel() || this.holdCancelSentFor !== this.lastTokenSeq || this.held) return;
    this.holdCancelAttempt++;
    this.sendHoldCancel();
  }

  /** A new node list (a reload): joins from added nodes count from now on; datagrams from
   *  removed ones are ignored, so a removed member drops out at the next token loss. */
  setNodes(nodes: readonly number[]): void {
    this.checkNodes(nodes, this.limits.membersMax);
    this.nodes = [...nodes];
  }

  private checkNodes(nodes: readonly number[], membersMax: number): void {
    assert(nodes.includes(this.me), 'this node is in the configured node list');
    if (nodes.length > membersMax) {
      throw new ClusterError('EINVAL', `totem: ${nodes.length} nodes do not fit a commit token in an MTU of ${this.common.mtu}; at most ${membersMax}: raise the mtu`);
    }
  }

  leave(): void {
    if (this.state === 'left') return;
    const failed = sorted(new Set([...this.failed, this.me]));
    const proc = sorted(new Set([...this.proc, this.me]));
    const bytes = encode({ type: 'join', sender: this.me, ringSeqHigh: this.ringSeqHigh(), joinSeq: ++this.joinSeq, ring: this.cur.ring, proc, failed });
    // A leave is a join with self in the failed set; three copies ride out moderate loss, and
    // the token timeout covers the rest.
    for (let i = 0; i < 3; i++) this.host.transmit('all', bytes);
    this.state = 'left';
    this.sendQueue.clear();
    this.lastToken = undefined;
  }

  stats(): Record<string, number | string> {
    return {
      ...this.counters, state: this.state, ring: formatRingId(this.cur.ring), members: this.cur.members.length,
      aru: this.cur.aru, highSeq: this.cur.highSeq, highDelivered: this.cur.highDelivered,
      stored: this.cur.size, queued: this.sendQueue.queuedMessages, tokenRetransmitBoundMs: this.tokenTimer.bound,
    };
  }

  /** What one ring's store may hold: at most 2 x outstanding above aru, outstanding more not yet
   *  freed, plus a visit's window; a new ring also holds what RECOVERY re-sent: at most one old
   *  store per member (several members may re-send the same message). Its seqs span no more
   *  (nothing is freed in RECOVERY), so it bounds the ring log's span too. */
  private storeSpanMax(members: number): number {
    return (3 * this.opts.outstandingMax + this.window.windowSize) * (members + 1);
  }

  checkInvariants(): void {
    const c = this.cur;
    assert(c.aru <= c.highSeq, `aru ${c.aru} <= highSeq ${c.highSeq}`);
    assert(c.highDelivered <= c.aru, `highDelivered ${c.highDelivered} <= aru ${c.aru}`);
    assert(c.freedUpTo <= c.highDelivered || this.state === 'recovery', 'nothing freed before delivery');
    assert(c.freedUpTo <= c.gcLine, 'freed only what every member holds');
    assert(c.size <= this.storeSpanMax(c.members.length), `stored ${c.size} messages within bounds`);
    assert(this.missCount.size <= 3 * this.opts.outstandingMax, 'miss counters bounded');
    assert(this.sendQueue.queuedMessages <= this.opts.sendQueueMax, 'send queue bounded');
    assert(this.local.length <= 4, 'local token queue bounded');
    assert(this.ringSeqCommitted >= c.ring.seq, 'current ring seq was committed');
    if (this.lastRegular) assert(this.lastRegular.members.includes(this.me), 'a member of my configuration');
    switch (this.state) {
      case 'gather':
        assert(this.proc.has(this.me), 'in my own process set');
        assert(this.rec === undefined, 'no recovery in GATHER');
        for (const id of this.consensus) assert(this.proc.has(id), 'consensus within the process set');
        break;
      case 'commit':
        assert(this.commit !== undefined && this.rec === undefined, 'COMMIT holds a commit token');
        break;
      case 'recovery':
        assert(this.rec !== undefined && this.rec.trans.includes(this.me), 'RECOVERY has a transitional set with me');
        assert(c.highDelivered === 0, 'nothing of the new ring is delivered before install');
        break;
      case 'operational':
        assert(this.rec === undefined && c.members.includes(this.me), 'OPERATIONAL on a ring with me');
        assert(this.lastRegular !== undefined && ringIdEquals(this.lastRegular.ringId, c.ring), 'the ring was delivered');
        break;
      case 'left':
        break;
    }
  }

  // ---- dispatch -----------------------------------------------------------------------------

  private dispatch(m: TotemMsg): void {
    switch (m.type) {
      case 'token': this.onToken(m); break;
      case 'mcast': this.onMcast(m); break;
      case 'join': this.onJoin(m); break;
      case 'commit': this.onCommit(m); break;
      case 'merge': this.onForeign(m.sender, m.ring); break;
      case 'holdCancel':
        if (!ringIdEquals(m.ring, this.cur.ring)) break;
        if (this.held) this.releaseHold('cancel');
        else if (this.state === 'operational') this.tokenWanted();
        break;
    }
  }

  /** Tokens addressed to myself (a ring of one, the representative's first token) run here,
   * after the current handler, so that handlers never nest. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let b = this.local.shift(); b; b = this.local.shift()) {
        if (this.state === 'left') break;
        const d = decode(b, this.limits);
        assert(!('error' in d), 'my own token decodes');
        this.dispatch(d.msg);
      }
    } finally {
      this.draining = false;
    }
  }

  private sendToken(to: number, m: TokenMsg | CommitMsg): void {
    const bytes = encode(m);
    const regular = m.type === 'token';
    this.lastToken = { to, bytes, regular };
    this.retransmitAttempt = 0;
    this.retransmitAt = this.host.now() + (regular ? this.resendDelay(0) : this.opts.tokenRetransmitMs);
    if (to === this.me) this.local.push(bytes);
    else for (let i = regular ? this.tokenCopies() : 1; i > 0; i--) this.host.transmit(to, bytes);
  }

  /** Copies of a regular token to send: more than one while the ring shows loss (token re-sends
   *  or retransmission requests within the last LOSS_MEMORY_VISITS visits). Each copy is a few
   *  dozen bytes beside a visit's frames, and the successor drops all but the first by tokenSeq;
   *  at a loss rate p a hop then stalls with probability p^copies instead of p. */
  private tokenCopies(): number {
    return this.visits - this.lossSeenVisit <= LOSS_MEMORY_VISITS ? this.opts.tokenCopiesOnLoss : 1;
  }

  /** The last token again: lost tokens are recovered in about a rotation (TokenTimer); token_ms
   *  alone decides that the ring is broken. The successor drops a copy it already has by tokenSeq. */
  private retransmitToken(now: number): void {
    this.retransmitAt = Infinity;
    if (!this.lastToken || this.state === 'gather') return;
    this.counters.tokenRetransmits++;
    if (this.lastToken.to !== this.me) this.host.transmit(this.lastToken.to, this.lastToken.bytes);
    this.retransmitAttempt++;
    this.retransmitAt = now + (this.lastToken.regular ? this.resendDelay(this.retransmitAttempt) : this.opts.tokenRetransmitMs);
  }

  /** On an idle ring the representative may be holding the token for hold_ms: a first re-send
   *  before the hold ends would only be dropped (and read as a sign of loss). Unless this node has
   *  something to send, or a hold cancel says another node has (both re-arm the short bound):
   *  then a lost token must not wait out a hold. Later re-sends take the short bound, doubling. */
  private resendDelay(attempt: number): number {
    const d = this.tokenTimer.delay(attempt);
    if (attempt > 0 || !this.likelyHeld() || this.sendQueue.queuedMessages > 0) return d;
    return Math.max(d, this.opts.holdMs + this.tokenTimer.bound);
  }

  /** The token I forward will likely be held: I am not the representative and have seen as many
   *  idle visits as it waits for. One more than mayBeHeld asks of a node sending a hold cancel, so
   *  that any node with a message sends one before I wait out a hold (counts differ by one visit
   *  at most). */
  private likelyHeld(): boolean {
    return !this.isRep() && this.mayBeHeld() && this.idleVisits >= this.opts.seqnoUnchangedConst;
  }

  /** Someone wants the token now: the re-send of mine, if it waits out a possible hold, is due at the short bound. */
  private tokenWanted(): void {
    if (this.lastToken?.regular) this.retransmitAt = Math.min(this.retransmitAt, this.host.now() + this.tokenTimer.delay(this.retransmitAttempt));
  }

  private ringSeqHigh(): number {
    return Math.max(this.ringSeqCommitted, this.ringSeqSeen);
  }

  private saveRingSeq(seq: number): void {
    this.ringSeqCommitted = seq;
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, seq);
    this.host.state.save(RING_SEQ_KEY, b);
  }

  // ---- membership: GATHER and COMMIT ---------------------------------------------------------

  private enterGather(reason: string): void {
    if (this.state === 'recovery' && this.rec) {
      // The new ring never installed here: back to the old ring, its messages intact; the new
      // ring's messages are dropped (docs/TOTEM.md, "Recovery").
      this.cur = this.rec.old;
    }
    if (this.state !== 'gather') this.host.log('info', 'totem: gather', { reason, ring: formatRingId(this.cur.ring) });
    // A cold start waits a consensus period before forming a ring alone: others may be starting
    // too. (Later, a ring of one is formed at once: it is how an excluded node resets its sets;
    // delaying it measurably hurts convergence in the swarm.)
    if (reason === 'start') this.aloneNotBefore = this.host.now() + this.opts.consensusMs;
    this.counters.gathers++;
    this.rec = undefined;
    this.commit = undefined;
    this.state = 'gather';
    this.proc.add(this.me);
    this.failed.delete(this.me);
    this.consensus = new Set([this.me]);
    this.tokenLossAt = Infinity;
    this.retransmitAt = Infinity;
    this.lastToken = undefined;
    this.held = undefined;
    this.parked = false;
    this.holdUntil = Infinity;
    this.holdCancelAt = Infinity;
    this.mergeAt = Infinity;
    this.consensusAt = this.host.now() + this.opts.consensusMs;
    this.sendJoin();
  }

  private sendJoin(): void {
    this.joinAt = this.host.now() + this.opts.joinMs;
    this.host.transmit('all', encode({
      type: 'join', sender: this.me, ringSeqHigh: this.ringSeqHigh(), joinSeq: ++this.joinSeq, ring: this.cur.ring,
      proc: sorted(this.proc), failed: sorted(this.failed),
    }));
  }

  private onJoin(j: JoinMsg): void {
    const newest = this.newestJoin.get(j.sender);
    if (newest && (j.ringSeqHigh < newest.rs || (j.ringSeqHigh === newest.rs && j.joinSeq < newest.js))) {
      this.counters.staleJoins++;
      return;
    }
    this.newestJoin.set(j.sender, { rs: j.ringSeqHigh, js: j.joinSeq });
    this.ringSeqSeen = Math.max(this.ringSeqSeen, j.ringSeqHigh);
    const leaving = j.failed.includes(j.sender);
    switch (this.state) {
      case 'operational': {
        const member = this.cur.members.includes(j.sender);
        // A member's join from before this ring formed is stale; a non-member's leave is moot.
        if (member ? j.ringSeqHigh < this.cur.ring.seq : leaving) return;
        // A merge waits until every member has installed this ring: leaving it sooner breaks the
        // RECOVERY of members still installing, who fall back to the old ring with its verdicts,
        // and the newcomer is excluded again, round after round. Its joins repeat meanwhile.
        if (!member && !this.settled) return;
        this.enterGather(member ? 'join from a member' : 'join from a new node');
        // A join that counts me failed comes from a node still finishing a round without me:
        // joinProcess takes its process set, not its verdict, or two groups exclude each other.
        this.joinProcess(j);
        return;
      }
      case 'gather':
        this.joinProcess(j);
        return;
      case 'commit':
      case 'recovery': {
        const ring = this.state === 'commit' ? this.commit : this.cur;
        const newSeq = this.state === 'commit' ? this.commit?.ring.seq ?? 0 : this.cur.ring.seq;
        const members = this.state === 'commit' ? (this.commit?.members ?? []).map((e) => e.id) : this.cur.members;
        // Only a member that has seen this new ring (and given up on it) can break it; others
        // wait until it is installed (then a non-member's join starts a merge).
        if (!ring || !members.includes(j.sender) || (j.ringSeqHigh < newSeq && !leaving)) return;
        this.enterGather(`join during ${this.state}`);
        this.joinProcess(j);
        return;
      }
      case 'left':
        return;
    }
  }

  /** GATHER's join rule (docs/TOTEM.md, "Membership"; corosync memb_join_process). */
  private joinProcess(j: JoinMsg): void {
    const proc = sorted(this.proc);
    const failed = sorted(this.failed);
    if (j.failed.includes(j.sender)) {
      // A leave (or a node that cannot receive): it goes its own way.
      if (!this.failed.has(j.sender)) {
        this.proc.add(j.sender);
        this.failed.add(j.sender);
        this.changedSets();
      }
      return;
    }
    if (sameSet(j.proc, proc) && sameSet(j.failed, failed)) {
      this.consensus.add(j.sender);
      this.checkConsensus();
      return;
    }
    const subset = j.proc.every((id) => this.proc.has(id)) && j.failed.every((id) => this.failed.has(id) || id === this.me);
    if (this.failed.has(j.sender) || subset) return;
    const size = this.proc.size + this.failed.size;
    for (const id of j.proc) if (this.nodes.includes(id)) this.proc.add(id);
    // A join that counts me failed: its process set, not its verdict, and no verdict in return.
    // Its sender is in a round that excludes me, and that round may be long over: a node back
    // from a pause holds the joins of the round that failed it. Failing each sender in return
    // (corosync's memb_join_process) gave the returning node a failed set of healthy nodes; the
    // union below spread it, and healthy nodes failed each other in a GATHER storm (docs/TOTEM.md,
    // "Membership: GATHER and COMMIT", the join rule). If the sender still excludes me it never
    // agrees with me, and the consensus timeout fails it like any node that does not agree; once
    // its round is over, it answers my join with a fresh one and we agree.
    if (!j.failed.includes(this.me)) {
      // Failed sets only grow within a round, so every view converges to the union quickly;
      // a node failed by mistake rejoins in the next round (from OPERATIONAL, sets fresh).
      for (const id of j.failed) if (id !== this.me && this.proc.has(id)) this.failed.add(id);
    }
    // Re-announce only a real change: two nodes that keep different failed sets must not
    // answer each other's joins forever.
    if (this.proc.size + this.failed.size !== size) this.changedSets();
  }

  private changedSets(): void {
    this.consensus = new Set([this.me]);
    this.consensusAt = this.host.now() + this.opts.consensusMs;
    this.sendJoin();
    this.checkConsensus();
  }

  private activeSet(): number[] {
    return sorted([...this.proc].filter((id) => !this.failed.has(id)));
  }

  private checkConsensus(): void {
    if (this.state !== 'gather') return;
    const active = this.activeSet();
    if (active[0] !== this.me) return;
    if (active.length === 1 && this.host.now() < this.aloneNotBefore) return;
    if (!active.every((id) => this.consensus.has(id))) return;
    this.createCommit(active);
  }

  private consensusTimeout(): void {
    // Every node that has not agreed is declared failed (docs/TOTEM.md, "Membership").
    for (const id of this.activeSet()) if (!this.consensus.has(id)) this.failed.add(id);
    this.changedSets();
  }

  private createCommit(active: number[]): void {
    const ring = { rep: this.me, seq: this.ringSeqHigh() + 4 };
    const blank = { rep: 0, seq: 0 };
    const members = active.map((id) => ({ id, oldRing: blank, aru: 0, highSeq: 0, highDelivered: 0, safeLine: 0, filled: false }));
    this.host.log('debug', 'totem: commit token', { ring: formatRingId(ring), members: active });
    this.local.push(encode({ type: 'commit', sender: this.me, ring, hops: 0, members }));
  }

  private onCommit(c: CommitMsg): void {
    const n = c.members.length;
    const idx = c.members.findIndex((e) => e.id === this.me);
    if (idx < 0 || c.hops % n !== idx) return;
    const rotation = Math.floor(c.hops / n);
    const same = this.commit !== undefined && ringIdEquals(this.commit.ring, c.ring);
    if (rotation === 0 && this.state === 'gather') {
      if (!sameSet(c.members.map((e) => e.id), this.activeSet()) || c.ring.seq <= this.ringSeqCommitted) return;
      this.enterCommit(c, idx);
    } else if (rotation === 1 && this.state === 'commit' && same) {
      if (!c.members.every((e) => e.filled)) return;
      this.enterRecovery(c);
      this.forwardCommit(c, idx);
    } else if (rotation === 2 && this.state === 'recovery' && same && this.rec && !this.rec.originated) {
      this.rec.originated = true;
      this.lastToken = undefined;
      this.retransmitAt = Infinity;
      this.lastTokenSeq = -1;
      this.onToken({
        type: 'token', sender: this.me, ring: this.cur.ring, tokenSeq: 0, seq: 0, aru: 0, aruAddr: 0,
        fcc: 0, backlog: 0, retransFlag: false, install: false, rtr: [],
      });
    }
  }

  /** First rotation: record my old ring's state, persist the new ring seq, enter COMMIT. */
  private enterCommit(c: CommitMsg, idx: number): void {
    const old = this.cur;
    c.members[idx] = {
      id: this.me, oldRing: old.ring, aru: old.aru, highSeq: old.highSeq, highDelivered: old.highDelivered,
      safeLine: old.safeLine, filled: true,
    };
    this.saveRingSeq(c.ring.seq);
    this.state = 'commit';
    this.commit = c;
    this.joinAt = Infinity;
    this.consensusAt = Infinity;
    this.tokenLossAt = this.host.now() + this.opts.tokenMs;
    this.forwardCommit(c, idx);
  }

  private forwardCommit(c: CommitMsg, idx: number): void {
    const next = c.members[(idx + 1) % c.members.length].id;
    this.sendToken(next, { ...c, sender: this.me, hops: c.hops + 1 });
    this.tokenLossAt = this.host.now() + this.opts.tokenMs;
  }

  // ---- RECOVERY -----------------------------------------------------------------------------

  /** Second rotation: the new ring starts; old-ring messages some member lacks are queued to be
   * re-sent wrapped in new-ring messages (docs/TOTEM.md, "Recovery"). */
  private enterRecovery(c: CommitMsg): void {
    const old = this.cur;
    const transEntries = c.members.filter((e) => ringIdEquals(e.oldRing, old.ring));
    const trans = transEntries.map((e) => e.id);
    const lowAru = Math.min(...transEntries.map((e) => e.aru));
    const maxAru = Math.max(...transEntries.map((e) => e.aru));
    const maxHigh = Math.max(...transEntries.map((e) => e.highSeq));
    const queue: StoredMsg[] = [];
    if (!transEntries.every((e) => e.aru === maxHigh)) {
      // Up to the highest aru one member holds everything: it alone re-sends that range.
      // Above it, every holder re-sends what it has (duplicates are dropped on arrival).
      const responsible = transEntries.find((e) => e.aru === maxAru)?.id;
      const from = responsible === this.me ? lowAru + 1 : maxAru + 1;
      for (let s = Math.max(from, old.freedUpTo + 1); s <= old.highSeq; s++) {
        const m = old.get(s);
        if (m) queue.push(m);
      }
    }
    this.rec = {
      old, trans, maxSafe: Math.max(...transEntries.map((e) => e.safeLine)), queue, originated: false, repVisits: 0,
    };
    this.cur = new RingLog(c.ring, c.members.map((e) => e.id), this.storeSpanMax(c.members.length));
    this.state = 'recovery';
    this.commit = c;
    this.resetTokenState();
    this.tokenLossAt = this.host.now() + this.opts.tokenMs;
    this.host.log('debug', 'totem: recovery', { ring: formatRingId(c.ring), trans, resend: queue.length });
  }

  private resetTokenState(): void {
    this.lastTokenSeq = -1;
    this.prevVisitAru = undefined;
    this.prevSafeAru = undefined;
    this.lastRecvAru = -1;
    this.lastForwardedSeq = 0;
    this.aruStuck = 0;
    this.sentLastVisit = 0;
    this.backlogLastVisit = 0;
    this.missCount.clear();
    this.idleRotations = 0;
    this.idleVisits = 0;
    this.idleFrom = Infinity;
    this.lastRotationSeq = -1;
    this.forwardedAt = undefined;
    this.parksFlagMine = false;
    this.parkSeen = false;
    this.lastParkVisit = -Infinity;
    this.quietVisits = 0;
  }

  /** Enter OPERATIONAL on the new ring and deliver in the four steps of docs/TOTEM.md, "Recovery". */
  private install(): void {
    const rec = this.rec;
    assert(rec !== undefined, 'install from RECOVERY');
    this.rec = undefined;
    this.commit = undefined;
    this.state = 'operational';
    this.settled = false;
    this.counters.rings++;
    const old = rec.old;
    const members = this.cur.members;
    if (this.lastRegular) {
      // 1. old-ring messages up to the first gap, in the old regular configuration (a safe one
      //    only if some transitional member knew every old member held it).
      for (let m = old.get(old.highDelivered + 1); m; m = old.get(old.highDelivered + 1)) {
        if (m.safe && m.seq > rec.maxSafe) break;
        old.highDelivered = m.seq;
        this.deliverFrame(m);
      }
      // 2. the transitional configuration
      const trans = rec.trans;
      this.report({ kind: 'transitional', ringId: this.cur.ring, members: trans,
        left: this.lastRegular.members.filter((id) => !trans.includes(id)), joined: [] });
      // 3. the rest: past the first gap, only messages from transitional members (causality).
      let gap = false;
      for (let s = old.highDelivered + 1; s <= old.highSeq; s++) {
        const m = old.get(s);
        if (!m) { gap = true; continue; }
        old.highDelivered = s;
        if (gap && !trans.includes(m.origin)) { this.reassembler.dropSender(m.origin); continue; }
        this.deliverFrame(m);
      }
    }
    // 4. the regular configuration
    for (const s of this.reassembler.partialSenders()) this.reassembler.dropSender(s);
    if (this.sendQueue.rewind()) this.counters.rewinds++;
    const before = rec.trans.length && this.lastRegular ? rec.trans : [];
    this.report({ kind: 'regular', ringId: this.cur.ring, members,
      left: [], joined: members.filter((id) => !before.includes(id)) });
    this.proc = new Set(members);
    this.failed = new Set();
    this.prevSafeAru = undefined;
    this.cur.safeLine = 0;
    this.mergeAt = this.host.now() + this.opts.mergeMs;
    this.host.log('info', 'totem: operational', { ring: formatRingId(this.cur.ring), members });
  }

  private report(conf: Configuration): void {
    if (conf.kind === 'regular') this.lastRegular = conf;
    this.host.configuration(conf);
  }

  private deliverFrame(m: StoredMsg): void {
    // Held while its messages go up: a delivery may call back into this driver (a multicast from
    // inside it), and a visit run there may free the frame (core/wire/lease.ts).
    hold(m.frame);
    try {
      this.reassembler.accept(m.origin, m.frame, (payload, order) => {
        this.counters.delivered++;
        deliverTo(this.host, m.origin, payload, order);
      }, (frame, start, end, order) => {
        this.counters.delivered++;
        deliverWhole(this.host, m.origin, frame, start, end, order);
      });
    } catch (e) {
      if ((e as ClusterError).code !== 'EPROTO') throw e;
      this.counters.badFrames++;
    } finally {
      drop(m.frame);
    }
  }

  /** Agreed order: contiguous from highDelivered + 1; a safe frame waits for the safe line. */
  private deliverReady(): void {
    const c = this.cur;
    for (let m = c.get(c.highDelivered + 1); m; m = c.get(c.highDelivered + 1)) {
      if (m.encap) { c.highDelivered = m.seq; continue; }
      if (m.safe && m.seq > c.safeLine) break;
      c.highDelivered = m.seq;
      this.deliverFrame(m);
    }
  }

  // ---- the ordering token ------------------------------------------------------------------

  private onToken(t: TokenMsg): void {
    if (this.state !== 'operational' && this.state !== 'recovery') return;
    if (!ringIdEquals(t.ring, this.cur.ring) || t.tokenSeq <= this.lastTokenSeq) return;
    this.counters.tokens++;
    this.lastTokenSeq = t.tokenSeq;
    if (this.state === 'operational' && (!t.install || this.isRep())) this.settled = true;
    const now = this.host.now();
    this.tokenLossAt = now + this.opts.tokenMs;
    // Karn's rule: a rotation in which I re-sent the token measures nothing; nor does one in which
    // the representative held it (the hold is idleness, not the ring's speed).
    // A parked token (t.parks) may have waited anywhere, the representative's own rotation too.
    const held = (t.held === true && !this.isRep()) || t.parks === true;
    if (this.forwardedAt !== undefined && this.retransmitAttempt === 0 && !held) this.tokenTimer.sample(now - this.forwardedAt);
    if (this.isRep()) t.held = false;
    this.parkSeen = t.parks === true;
    // On arrival: every member holds every message, no one has asked for any, and for
    // PARK_QUIET_VISITS visits no one else sent any on their last visits (t.fcc counts every
    // node's) or had any queued: a lone sender.
    this.quietVisits = t.fcc === this.sentLastVisit && t.backlog === this.backlogLastVisit ? this.quietVisits + 1 : 0;
    const clean = t.aru === t.seq && t.rtr.length === 0 && !t.install && this.quietVisits >= PARK_QUIET_VISITS;
    this.visits++;
    if (this.retransmitAttempt > 0 || t.rtr.length > 0) this.lossSeenVisit = this.visits;
    this.forwardedAt = undefined;
    this.lastToken = undefined;
    this.retransmitAt = Infinity;
    this.holdCancelAt = Infinity;
    const c = this.cur;
    this.updateLines(t.aru);
    if (this.state === 'recovery') this.recoveryVisit(t);
    else if (t.install && this.isRep()) t.install = false;
    if (this.state === 'operational') c.free(Math.min(c.gcLine, c.highDelivered));
    let allowed = this.allowance(t);
    allowed -= this.answerRetransmits(t, allowed);
    const deferred: StoredMsg[] = [];
    const sent = this.sendNew(t, allowed, deferred, now);
    this.requestGaps(t);
    this.updateAru(t);
    t.fcc = Math.max(0, t.fcc + sent - this.sentLastVisit);
    this.sentLastVisit = sent;
    this.putBacklog(t);
    if (this.state === 'recovery' && this.rec && this.rec.queue.length > 0) t.retransFlag = true;
    if (this.failedToReceive(t)) {
      for (const m of deferred) this.multicastStored(m);
      return;
    }
    const hold = this.shouldHold(t, now);
    this.parkRunStart = now; // a run of parks begins at a visit (the clock read at its start)
    const park = !hold && clean && this.shouldPark(t, sent, now);
    if (!park && this.parksFlagMine && this.visits - this.lastParkVisit >= PARKS_FLAG_VISITS) {
      t.parks = false;
      this.parksFlagMine = false;
    }
    if (hold) {
      this.held = t;
      this.holdUntil = this.host.now() + this.opts.holdMs;
      this.counters.holds++;
    } else if (park) {
      this.park(t, now);
    } else {
      this.forwardToken(t);
    }
    // Accelerated Ring (Babay & Amir 2016): the visit's last frames go out after the token.
    for (const m of deferred) this.multicastStored(m);
    this.lastForwardedSeq = t.seq;
    if (this.state === 'operational') this.deliverReady();
    this.notifyWritable();
  }

  private isRep(): boolean {
    return this.cur.ring.rep === this.me;
  }

  /** aru seen on two successive visits: every member holds every message up to the lower. */
  private updateLines(aru: number): void {
    const c = this.cur;
    if (this.prevVisitAru !== undefined) c.gcLine = Math.max(c.gcLine, Math.min(aru, this.prevVisitAru));
    this.prevVisitAru = aru;
    if (this.state !== 'operational') return;
    if (this.prevSafeAru !== undefined) c.safeLine = Math.max(c.safeLine, Math.min(aru, this.prevSafeAru));
    this.prevSafeAru = aru;
  }

  /** RECOVERY on the token: the representative decides when every member holds every re-sent
   * message (retransFlag clear for a rotation, then the gc line past the last seq). */
  private recoveryVisit(t: TokenMsg): void {
    const rec = this.rec;
    assert(rec !== undefined, 'recovery state');
    if (this.isRep() && !t.install) {
      rec.repVisits++;
      const someonePending = t.retransFlag || rec.repVisits < 2;
      t.retransFlag = false;
      if (someonePending || rec.queue.length > 0) rec.installSeq = undefined;
      else if (rec.installSeq === undefined) rec.installSeq = t.seq;
      if (rec.installSeq !== undefined && this.cur.gcLine >= rec.installSeq && t.aru === t.seq) t.install = true;
    }
    if (t.install) {
      this.install();
      // The install visit's aru predates the others' install: safe counting starts after it.
      this.prevSafeAru = undefined;
    }
  }

  /** Flow control (docs/TOTEM.md, "Flow control"): the window, the per-visit cap, a share of the
   * backlog, and the outstanding bound that keeps every store bounded. */
  private allowance(t: TokenMsg): number {
    const w = this.window;
    let allowed = Math.min(w.maxMessages, w.windowSize - t.fcc);
    const mine = this.backlog();
    const total = t.backlog - this.backlogLastVisit + mine;
    if (total > w.windowSize && mine > 0) allowed = Math.min(allowed, Math.max(1, Math.floor(w.windowSize * mine / total)));
    return Math.max(0, allowed);
  }

  private backlog(): number {
    if (this.state === 'recovery') return this.rec?.queue.length ?? 0;
    return this.sendQueue.queuedMessages;
  }

  private answerRetransmits(t: TokenMsg, allowed: number): number {
    let used = 0;
    const keep: number[] = [];
    for (const s of t.rtr) {
      const m = used < allowed ? this.cur.get(s) : undefined;
      if (!m) { if (s > this.cur.freedUpTo) keep.push(s); continue; }
      used++;
      this.counters.mcastRetransmits++;
      this.multicastStored(m);
    }
    t.rtr = keep;
    return used;
  }

  /** Assigns seqs to this visit's frames and multicasts them, except the last
   * accelerated_window ones, which go to `deferred` (multicast after the token is forwarded).
   * `now`: the visit's clock, if read (the send queue tells from it how long frames waited). */
  private sendNew(t: TokenMsg, allowed: number, deferred: StoredMsg[], now: number | undefined): number {
    const room = Math.max(0, this.opts.outstandingMax - (t.seq - t.aru));
    let n = Math.min(allowed, room);
    let sent = 0;
    const rec = this.rec;
    this.sentSafe = false;
    this.sentMessages = 0;
    for (; n > 0; n--) {
      let m: StoredMsg;
      if (this.state === 'recovery') {
        const o = rec?.queue.shift();
        if (!o || !rec) break;
        m = { seq: t.seq + 1, origin: this.me, safe: false, frame: o.frame,
          encap: { ring: rec.old.ring, seq: o.seq, origin: o.origin, safe: o.safe } };
      } else {
        const f = this.sendQueue.nextFrame(now);
        if (!f) break;
        m = { seq: t.seq + 1, origin: this.me, safe: f.safe, frame: f.bytes, unsent: true };
        if (f.safe) this.sentSafe = true;
        this.sentMessages += f.messages;
      }
      t.seq++;
      this.cur.add(m);
      deferred.push(m);
      sent++;
    }
    const atOnce = deferred.splice(0, Math.max(0, deferred.length - this.opts.acceleratedWindow));
    for (const m of atOnce) this.multicastStored(m);
    return sent;
  }

  private multicastStored(m: StoredMsg): void {
    this.counters.mcastSent++;
    const msg: McastMsg = {
      type: 'mcast', sender: this.me, ring: this.cur.ring, seq: m.seq, origin: m.origin, safe: m.safe,
      encap: m.encap, frame: m.frame,
    };
    if (!m.unsent) {
      this.host.transmit('all', encode(msg)); // a retransmission: the room in front is the first one's
      return;
    }
    // The frame becomes the datagram: the MCAST header and the host's go into the room in front.
    m.unsent = false;
    this.host.transmit('all', encodeMcastAroundFrame(msg), true);
  }

  /** Ask for my gaps once each has been seen missing on miss_count_const visits. */
  private requestGaps(t: TokenMsg): void {
    const c = this.cur;
    if (this.missCount.size > 0) for (const s of this.missCount.keys()) if (s <= c.aru) this.missCount.delete(s);
    // Accelerated: frames above the last token I forwarded may still be on their way.
    const upTo = this.opts.acceleratedWindow > 0 ? Math.min(t.seq, this.lastForwardedSeq) : t.seq;
    if (upTo <= c.aru) return; // nothing missing: no set, no list (a token's visit, every visit)
    let present: Set<number> | undefined;
    for (const s of c.gaps(upTo, this.opts.outstandingMax * 2)) {
      const n = (this.missCount.get(s) ?? 0) + 1;
      this.missCount.set(s, n);
      if (n < this.opts.missCountConst || t.rtr.length >= this.opts.retransmitListMax) continue;
      present ??= new Set(t.rtr);
      if (present.has(s)) continue;
      t.rtr.push(s);
      present.add(s);
    }
  }

  private updateAru(t: TokenMsg): void {
    const mine = this.cur.aru;
    if (mine < t.aru || t.aruAddr === this.me || t.aruAddr === 0) {
      t.aru = Math.min(mine, t.seq);
      t.aruAddr = t.aru === t.seq ? 0 : this.me;
    }
  }

  /** aru stuck at me for fail_recv_const visits: I cannot receive; I leave the ring alone. */
  private failedToReceive(t: TokenMsg): boolean {
    if (t.aru === this.lastRecvAru && t.aru < t.seq) this.aruStuck++;
    else this.aruStuck = 0;
    this.lastRecvAru = t.aru;
    if (this.state !== 'operational' || this.aruStuck < this.opts.failRecvConst || t.aruAddr !== this.me) return false;
    this.counters.failedToReceive++;
    this.host.log('warn', 'totem: failed to receive; forming a ring alone', { ring: formatRingId(this.cur.ring) });
    this.enterGather('failed to receive');
    for (const id of this.proc) if (id !== this.me) this.failed.add(id);
    this.changedSets();
    return true;
  }

  private shouldHold(t: TokenMsg, now: number): boolean {
    // A ring whose aru is behind its seq is recovering a loss, not idle: holding its token would
    // keep the gap open for hold_ms.
    const idle = t.seq === this.lastRotationSeq && t.aru === t.seq && t.rtr.length === 0 && t.backlog === 0 && !t.install;
    this.lastRotationSeq = t.seq;
    this.idleRotations = idle ? this.idleRotations + 1 : 0;
    this.idleVisits = idle ? this.idleVisits + 1 : 0;
    // The send queue's free frame buffers go once the ring has been idle for a while: not at an
    // idle rotation or two under load (a sending client that did not run for a few milliseconds).
    if (!idle) this.idleFrom = Infinity;
    else if (this.idleFrom === Infinity) this.idleFrom = now;
    else if (now - this.idleFrom >= FRAME_BUFFERS_IDLE_MS) this.sendQueue.releaseIdle();
    return this.state === 'operational' && this.isRep() && this.opts.holdMs > 0
      && this.idleRotations >= this.opts.seqnoUnchangedConst && this.sendQueue.queuedMessages === 0;
  }

  /** A lone sender's next message should not wait a rotation. After a visit that sent a single
   *  message, my last queued (an agreed one, on a ring where every member holds everything and
   *  no one else sent or queued any for PARK_QUIET_VISITS visits), the token waits here up to
   *  park_ms for my next message, which then goes with this visit's token at once (releaseHold
   *  'send'), and the token may wait again. A stream of messages is left to the rotation, which
   *  fills its frames meanwhile. A run of parks is one visit's: once the visit has no room for a
   *  next message (max_messages, or the window: visitAllowance) the token goes on at once, to be
   *  back the sooner, and a run never lasts past parkRunMaxMs. A node that wants the token
   *  meanwhile sends a hold cancel (the token's `parks` flag tells it to). */
  private shouldPark(t: TokenMsg, sent: number, now: number): boolean {
    return this.opts.parkMs > 0 && this.state === 'operational' && sent === 1 && this.sentMessages === 1
      && !this.sentSafe && this.backlog() === 0 && t.rtr.length === 0 && this.cur.highDelivered >= t.seq - sent
      && this.visitAllowance(t) > 0 && now + this.opts.parkMs - this.parkRunStart <= this.parkRunMaxMs();
  }

  /** The longest run of parks: well inside token_ms, which every other node counts from its own
   *  last visit (a run's token visits no one else). */
  private parkRunMaxMs(): number {
    return this.opts.tokenMs / 4;
  }

  /** What this visit may still send: the window's room, and max_messages less what the visit sent
   *  already (a held or parked token's releases belong to the visit that held it). */
  private visitAllowance(t: TokenMsg): number {
    return Math.max(0, Math.min(this.allowance(t), this.window.maxMessages - this.sentLastVisit));
  }

  /** `now`: the caller's clock read (a visit's, or a release's). */
  private park(t: TokenMsg, now: number): void {
    this.held = t;
    this.parked = true;
    t.parks = true;
    this.parksFlagMine = true;
    this.lastParkVisit = this.visits;
    this.holdUntil = now + this.opts.parkMs;
    this.counters.parks++;
  }

  /** `expired`: hold_ms passed with nothing to send. The ring is as idle as it was: the token
   *  goes round once (the others see it within token_ms) and is held again at its next visit,
   *  not after seqno_unchanged_const more rotations of a hop per node each (an idle ring's whole
   *  traffic). A message or a hold cancel ends the idle count. `send`: a message of mine came; a
   *  parked token may park again after it. `cancel`: another node wants the token. */
  private releaseHold(why: 'expired' | 'send' | 'cancel'): void {
    const t = this.held;
    const parked = this.parked;
    this.held = undefined;
    this.parked = false;
    this.holdUntil = Infinity;
    if (t && this.state === 'operational' && ringIdEquals(t.ring, this.cur.ring)) {
      if (why !== 'expired') this.idleRotations = 0;
      t.held = true;
      // What was queued here since the visit goes now, with this visit's token, as the visit
      // would have sent it: not a rotation later. (The lines the token's aru moves are left to
      // the next real visit: this is the same visit, not a second one.)
      const deferred: StoredMsg[] = [];
      // A parked token's release for a message reads the clock (it may park again); others need none.
      const now = parked && why === 'send' ? this.host.now() : undefined;
      const sent = this.backlog() > 0 ? this.sendNew(t, this.visitAllowance(t), deferred, now) : 0;
      if (sent > 0) {
        this.updateAru(t);
        t.fcc += sent;
        this.sentLastVisit += sent;
      }
      // What is still queued goes into the backlog as a visit would put it: the others then see
      // a ring that is no longer idle (no long first re-send, no hold cancels) before my next visit.
      this.putBacklog(t);
      const again = now !== undefined && this.shouldPark(t, sent, now);
      if (again) {
        this.park(t, now);
      } else {
        this.forwardToken(t);
        this.lastForwardedSeq = t.seq;
      }
      for (const m of deferred) this.multicastStored(m);
      if (sent > 0) {
        // My own frames are deliverable now; but this may run inside multicast(), so the
        // deliveries (and the room they free) go at the host's next turn (nextDeadline).
        this.ownDeliveryDue = true;
      }
    }
  }

  /** My share of the token's backlog: what I queue now in place of what I put there last visit. */
  private putBacklog(t: TokenMsg): void {
    const mine = this.backlog();
    t.backlog = Math.max(0, t.backlog + mine - this.backlogLastVisit);
    this.backlogLastVisit = mine;
  }

  private forwardToken(t: TokenMsg): void {
    const members = this.cur.members;
    const next = members[(members.indexOf(this.me) + 1) % members.length];
    this.sendToken(next, { ...t, sender: this.me, tokenSeq: t.tokenSeq + 1 });
    this.forwardedAt = this.host.now();
  }

  private notifyWritable(): void {
    if (this.sendQueue.takeWritable()) this.host.writable?.();
  }

  // ---- multicast messages and other rings -----------------------------------------------------

  private onMcast(m: McastMsg): void {
    this.counters.mcastReceived++;
    const c = this.cur;
    if (!ringIdEquals(m.ring, c.ring)) { this.onForeign(m.sender, m.ring); return; }
    // In COMMIT the old ring is frozen: what each member holds was recorded in the commit token.
    if (this.state === 'commit') return;
    if (m.seq > c.aru + 2 * this.opts.outstandingMax || !c.fits(m.seq)) { this.counters.tooFarAhead++; return; }
    const stored: StoredMsg = { seq: m.seq, origin: m.origin, safe: m.safe, encap: m.encap, frame: m.frame }; // the datagram is ours to keep (DriverHost)
    this.successorHasToken(m);
    if (!c.add(stored)) { this.counters.duplicates++; return; }
    const rec = this.rec;
    if (m.encap && this.state === 'recovery' && rec && ringIdEquals(m.encap.ring, rec.old.ring)) {
      rec.old.add({ seq: m.encap.seq, origin: m.encap.origin, safe: m.encap.safe, frame: stored.frame });
    }
    if (this.state === 'operational') this.deliverReady();
  }

  /** A new seq from any other node proves my successor accepted the token I forwarded: only a
   *  holder of the token assigns seqs, and on a ring the token reaches every other node through my
   *  successor. Mine need not be re-sent (each node re-sends its own forward if that is lost), even
   *  when this rotation is slower than the bound: a token parked two hops on, say, while its
   *  holder sends. */
  private successorHasToken(m: McastMsg): void {
    const last = this.lastToken;
    if (last && last.regular && m.sender !== this.me && m.seq > this.lastForwardedSeq) this.retransmitAt = Infinity;
  }

  /** A message of another ring: in OPERATIONAL, a node outside my ring, or a member that has
   * moved on to a newer ring, means the rings should merge or re-form (docs/TOTEM.md, "Membership"). */
  private onForeign(sender: number, ring: RingId): void {
    if (this.state !== 'operational' || ringIdEquals(ring, this.cur.ring)) return;
    const member = this.cur.members.includes(sender);
    if (member && ring.seq <= this.cur.ring.seq) return;
    // As for a join (onJoin): a merge waits until every member has installed this ring.
    if (!member && !this.settled) return;
    this.counters.foreign++;
    this.enterGather(member ? 'a member moved to another ring' : 'foreign ring');
    if (!this.proc.has(sender)) {
      this.proc.add(sender);
      this.changedSets();
    }
  }

  private mergeTimer(now: number): void {
    this.mergeAt = Infinity;
    if (this.state !== 'operational' || !this.isRep()) return;
    this.mergeAt = now + this.opts.mergeMs;
    if (this.idleRotations < this.opts.seqnoUnchangedConst) return;
    this.counters.mergeDetects++;
    this.host.transmit('all', encode({ type: 'merge', sender: this.me, ring: this.cur.ring }));
  }
}
