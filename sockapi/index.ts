// The public API of afcluster's client library: cluster sockets over the local daemon.
export { ClusterSocket, type OpenOptions } from './client.ts';
export type {
  BindOptions, ChangeReason, ErrorEvent, GroupSocket, LocalNode, Member, MemberChange, MembershipEvent,
  MessageEvent, Order, RingId, SendCallback, SendOptions, SocketEvent,
} from '../core/api/types.ts';
export { ClusterError, isClusterError, type ErrorCode } from '../core/api/errors.ts';
