// core/transport: the datagram interface and its UDP implementation.
export type { Transport } from './types.ts';
export { openUdpTransport, SOCKET_BUFFER_BYTES, type UdpTransportOptions } from './udp.ts';
