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

export interface MembershipEvent {
  readonly type: 'membership';
  readonly group: string;
  readonly kind: 'regular' | 'transitional';
  readonly ringId: RingId;
  /** Members after the change, sorted by (nodeId, pid, port). */
  readonly members: readonly Member[];
  readonly joined: readonly MemberChange[];
  readonly left: readonly MemberChange[];
}

/** An asynchronous error for this socket (e.g. ENOBUFS: it fell behind and was removed). */
export interface ErrorEvent {
  readonly type: 'error';
  readonly code: string;
  readonly message: string;
}

export type SocketEvent = MessageEvent | MembershipEvent | ErrorEvent;

export interface SendOptions {
  /** Default 'agreed'. */
  readonly order?: Order;
  /** Default true: wait while the daemon answers EAGAIN. false: throw EAGAIN at once. */
  readonly wait?: boolean;
  readonly signal?: AbortSignal;
}

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
}

/** What ClusterSocket (over the daemon) and the embedded node's sockets both offer. */
export interface GroupSocket extends AsyncIterable<SocketEvent> {
  /** This socket's own member identity (known after open). */
  readonly self: Member;
  bind(group: string, options?: BindOptions): Promise<void>;
  unbind(options?: { signal?: AbortSignal }): Promise<void>;
  send(data: Uint8Array | string, options?: SendOptions): Promise<void>;
  members(options?: { signal?: AbortSignal }): Promise<Member[]>;
  localNode(options?: { signal?: AbortSignal }): Promise<LocalNode>;
  close(): Promise<void>;
}
