// The user's contract: what a cluster socket offers, whether it talks to a daemon over the
// bridge protocol (ClusterSocket) or runs embedded in the process. The client library re-exports it.
/** Delivery order a sender asks for. A driver that cannot give it refuses with EOPNOTSUPP. */
export type Order = 'fifo' | 'agreed' | 'safe';

/** Ring id {rep, seq}; printed as `rep.seq`. seq stays below 2^53. */
export interface RingId {
  readonly rep: number;
  readonly seq: number;
}

export function formatRingId(r: RingId): string {
  return `${r.rep}.${r.seq}`;
}

export function ringIdEquals(a: RingId, b: RingId): boolean {
  return a.rep === b.rep && a.seq === b.seq;
}

/** A group member: a socket of a process on a node. */
export interface Member {
  readonly nodeId: number;
  readonly pid: number;
  /** Tells sockets of one process apart. */
  readonly port: number;
}

/** Who a member's process is, as its node's daemon established it from the kernel (bridge
 *  protocol HELLO): the owner and group of its socket file. */
export interface MemberIdentity {
  readonly uid: number;
  readonly gid: number;
  /** The daemon saw the process hold the socket (false: it could only check the process's user). */
  readonly verified: boolean;
}

/** A member and who it is (MEMBER_INFO); `identity` is absent when its node did not say (an older daemon). */
export interface MemberInfo {
  readonly member: Member;
  readonly identity?: MemberIdentity;
}

export type ChangeReason = 'join' | 'leave' | 'nodedown' | 'procdown' | 'overrun';

export interface MemberChange {
  readonly member: Member;
  readonly reason: ChangeReason;
}

export interface MessageEvent {
  readonly type: 'message';
  readonly group: string;
  readonly sender: Member;
  readonly order: Order;
  readonly data: Uint8Array;
}

/** What the quorum state says (core/quorum): `quorate` is what services act on. */
export type QuorumFlag = 'disabled' | 'two_node' | 'wait_for_all' | 'wait_for_all_pending' | 'last_man_standing' | 'auto_tie_breaker';

export interface QuorumState {
  /** This node's component is the primary one: it may act for the cluster. */
  readonly quorate: boolean;
  /** Votes of the nodes in this node's current configuration. */
  readonly votes: number;
  /** Expected votes: configured (or the sum of all nodes'), raised by more votes seen, lowered by last_man_standing. */
  readonly expected: number;
  /** Votes needed to be quorate: floor(expected / 2) + 1, or 1 under two_node. */
  readonly quorum: number;
  readonly flags: readonly QuorumFlag[];
}

/**
 * A group view's identity, the same at every member that receives the event: the ring it
 * belongs to and its number within that ring. A regular configuration starts every group's
 * views at 1; each later change of the group's membership on that ring counts up; a
 * transitional view continues the old ring's count (its members all come from that ring), and is
 * named together with the event's ringId (the new ring): the parts of a split ring each pass
 * through a transitional view of their own, counted alike on the old ring.
 */
export interface ViewId {
  readonly ringId: RingId;
  readonly seq: number;
}

export interface MembershipEvent {
  readonly type: 'membership';
  readonly group: string;
  readonly kind: 'regular' | 'transitional';
  readonly ringId: RingId;
  /** Members after the change, sorted by (nodeId, pid, port). */
  readonly members: readonly Member[];
  readonly joined: readonly MemberChange[];
  readonly left: readonly MemberChange[];
  /** The view this event opens (bridge protocol version 3 and the embedded node; absent from older daemons). */
  readonly viewId?: ViewId;
  /** The node's quorum state as of this event (version 3 and embedded; absent from older daemons). */
  readonly quorum?: QuorumState;
  /** Who each member is, aligned with `members` (its node's daemon established it from the
   *  kernel at HELLO; null where that node did not say): bridge protocol version 4 and embedded. */
  readonly identities?: readonly (MemberIdentity | null)[];
}

/** The QUORUM request's answer: the node's quorum state and every configured node. */
export interface QuorumInfo {
  readonly state: QuorumState;
  readonly nodes: readonly { readonly nodeId: number; readonly votes: number; readonly present: boolean }[];
}

/** The node's quorum state changed without a change of this group's membership (version 3). */
export interface QuorumEvent {
  readonly type: 'quorum';
  readonly group: string;
  readonly ringId: RingId;
  readonly quorum: QuorumState;
}

/** An asynchronous error for this socket (e.g. ENOBUFS: it fell behind and was removed). */
export interface ErrorEvent {
  readonly type: 'error';
  readonly code: string;
  readonly message: string;
}

export type SocketEvent = MessageEvent | MembershipEvent | QuorumEvent | ErrorEvent;

export interface SendOptions {
  /** Default 'agreed'. */
  readonly order?: Order;
  /** Default true: wait while the daemon answers EAGAIN. false: throw EAGAIN at once. */
  readonly wait?: boolean;
  readonly signal?: AbortSignal;
}

/** A send's outcome, for send's callback form: null when the daemon (or the embedded node)
 *  accepted the message, else the error a promise would have rejected with. */
export type SendCallback = (err: Error | null) => void;

export interface BindOptions {
  /** Default true: the sender receives its own messages. */
  readonly selfDelivery?: boolean;
  readonly signal?: AbortSignal;
}

export interface LocalNode {
  readonly nodeId: number;
  readonly driver: string;
  readonly ringId: RingId;
  readonly members: readonly number[];
  /** Version 3 and the embedded node; absent from older daemons. */
  readonly quorum?: QuorumState;
}

/** What ClusterSocket (over the daemon) and the embedded node's sockets both offer. */
export interface GroupSocket extends AsyncIterable<SocketEvent> {
  /** This socket's own member identity (known after open). */
  readonly self: Member;
  bind(group: string, options?: BindOptions): Promise<void>;
  unbind(options?: { signal?: AbortSignal }): Promise<void>;
  send(data: Uint8Array | string, options?: SendOptions): Promise<void>;
  /** send's callback form: no promise; `callback` is called once, with null when the message was
   *  accepted or with the error, never before send returns. */
  send(data: Uint8Array | string, options: SendOptions, callback: SendCallback): void;
  /** Every event to `listener`, in order, in place of `for await` (one reader at a time);
   *  listen(undefined) goes back to `for await`. */
  listen(listener: ((ev: SocketEvent) => void) | undefined): void;
  members(options?: { signal?: AbortSignal }): Promise<Member[]>;
  localNode(options?: { signal?: AbortSignal }): Promise<LocalNode>;
  /** The node's quorum state and every configured node (EOPNOTSUPP from a daemon older than version 3). */
  quorum(options?: { signal?: AbortSignal }): Promise<QuorumInfo>;
  close(): Promise<void>;
}
