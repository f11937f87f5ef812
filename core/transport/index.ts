// core/transport: the datagram interface and its UDP implementation.
export type { DatagramBytes, Transport } from './types.ts';
export { openUdpTransport, SOCKET_BUFFER_BYTES, type UdpTransportOptions } from './udp.ts';
export { RateLimiter, DROP_LOG_INTERVAL_MS, type RateLimitOptions } from './ratelimit.ts';
export { resolveMtu, interfaceOf, MTU_FALLBACK, MTU_MAX, type ResolvedMtu } from './mtu.ts';
