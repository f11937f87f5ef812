// core/groups: process groups over any driver (GroupService) and the embedded node.
export {
  GroupService, COUNTERS, HELD_MESSAGES_MAX, HELD_BYTES_MAX, driverMessageSizeMax,
  type EndpointSink, type GroupServiceOptions, type LocalEndpoint,
} from './service.ts';
export { createNode, EmbeddedSocket, type CreateNodeOptions, type EmbeddedNode, type SocketOptions } from './embedded.ts';
export {
  GROUPS_MAGIC, GROUPS_WIRE_VERSION, NAME_WIRE_MAX, dataOverhead, decodeGroupMessage, encodeData, encodeExchange,
  encodeJoin, encodeLeave, isValidGroupName, type GroupMessage, type ExchangeGroup, type LeaveReason,
} from './codec.ts';
