// Schemas of the core config sections (TOML keys, snake_case) with their defaults: everything a
// LAN needs, so a minimal file names only node.id and cluster.nodes.
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import type { Endpoint } from './types.ts';

export const DEFAULT_PORT = 5405;
export const DEFAULT_SOCKET = '/run/afcluster/afcluster.sock';
export const DEFAULT_STATE_DIR = '/var/lib/afcluster';
export const DEFAULT_CLUSTER_NAME = 'afcluster';
export const DEFAULT_DRIVER = 'totem';
/** Organisation-local scope (RFC 2365), so it does not leave the site by default. */
export const DEFAULT_MULTICAST_ADDR = '239.192.105.5';
export const NODE_ID_MAX = 0xffff_ffff;
export const NODES_MAX = 1024;
/** sun_path holds 108 bytes including the terminating NUL. */
export const SOCKET_PATH_MAX = 107;

/** "host:port", "host" (default port), "[v6]:port" or "[v6]"; IP literals only, so sources map to nodes. */
export function parseEndpoint(text: string, defaultPort: number): Endpoint | undefined {
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) {
    host = v6[1];
    portText = v6[2];
    if (!isIPv6(host)) return undefined;
  } else {
    const m = /^([^:]+)(?::(\d+))?$/.exec(text);
    if (!m || !isIPv4(m[1])) return undefined;
    host = m[1];
    portText = m[2];
  }
  const port = portText === undefined ? defaultPort : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

export function formatEndpoint(e: Endpoint): string {
  return isIPv6(e.host) ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

const endpoint = z.string()
  .refine((s) => parseEndpoint(s, DEFAULT_PORT) !== undefined)
  .describe('an address "IP:port" (IPv4, or [IPv6]; the port may be left out)');

const nodeId = z.int().min(1).max(NODE_ID_MAX);
const fileMode = z.int().min(0).max(0o7777).describe('a file mode from 0 to 0o7777, written in octal like 0o750');
const path = z.string().min(1).describe('a non-empty path');
const userOrGroup = z.union([z.string().min(1), z.int().min(0)]).describe('a name or a numeric id');
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/)
  .describe('a name of 1 to 64 characters: letters, digits, "_", "." and "-", starting with a letter or digit');

export const nodeSection = z.strictObject({
  id: nodeId,
  name: name.optional(),
  listen: endpoint.optional(),
  socket: path.refine((p) => Buffer.byteLength(p) <= SOCKET_PATH_MAX)
    .describe(`a path of at most ${SOCKET_PATH_MAX} bytes (the limit of a unix socket address)`).default(DEFAULT_SOCKET),
  socket_dir_mode: fileMode.default(0o750),
  socket_mode: fileMode.default(0o660),
  socket_owner: userOrGroup.optional(),
  socket_group: userOrGroup.optional(),
  state_dir: path.default(DEFAULT_STATE_DIR),
});

export const nodeEntry = z.strictObject({
  id: nodeId,
  addr: endpoint,
  name: name.optional(),
  votes: z.int().min(0).max(255).default(1).describe('a number of votes from 0 to 255'),
});

export const clusterSection = z.strictObject({
  name: name.default(DEFAULT_CLUSTER_NAME),
  driver: z.string().min(1).default(DEFAULT_DRIVER),
  nodes: z.array(nodeEntry).min(1).max(NODES_MAX)
    .describe(`an array of 1 to ${NODES_MAX} tables like { id = 1, addr = "10.0.0.1:${DEFAULT_PORT}", name = "a" }`),
  transport: z.enum(['udpu', 'multicast']).default('udpu'),
  multicast_addr: endpoint.optional(),
  mtu: z.int().min(576).max(65535).default(1500),
});

export const cryptoSection = z.strictObject({
  key_file: path.optional(),
});

const MiB = 1024 * 1024;

export const limitsSection = z.strictObject({
  message_size_max: z.int().min(1).max(64 * MiB).default(MiB),
  sockets_max: z.int().min(1).max(1_000_000).default(1024),
  groups_max: z.int().min(1).max(1_000_000).default(1024),
  group_name_max: z.int().min(1).max(65535).default(128),
  recv_queue_max: z.int().min(1).max(10_000_000).default(4096),
  // Per socket, so sockets_max of them can be full at once: 4 MiB (four largest messages, or
  // 4096 events of 1 KiB) keeps one slow reader from holding 16 MiB of a daemon meant to run
  // in ~100 MB; a reader that falls further behind gets ENOBUFS, as with any full queue.
  recv_queue_bytes_max: z.int().min(1).max(4096 * MiB).default(4 * MiB),
  // A socket over its receive-queue bound is evicted only once it has read nothing for this long
  // (or its queue reached twice the bound): a burst after a merge must not evict a reader.
  recv_stall_ms: z.int().min(100).max(600_000).default(2000),
  members_max: z.int().min(1).max(1_000_000).default(1024),
});

export const quorumSection = z.strictObject({
  enabled: z.boolean().default(true),
  expected_votes: z.int().min(0).max(255 * NODES_MAX).default(0)
    .describe('a number of votes (0 = the sum of the votes in cluster.nodes)'),
  two_node: z.boolean().default(false),
  wait_for_all: z.boolean().optional(),
  last_man_standing: z.boolean().default(false),
  last_man_standing_window_ms: z.int().min(1000).max(3_600_000).default(10_000),
  auto_tie_breaker: z.boolean().default(false),
  auto_tie_breaker_node: z.union([z.enum(['lowest', 'highest']), nodeId]).default('lowest')
    .describe('"lowest", "highest" or a node id'),
  fence_command: z.string().min(1).optional().describe('a command line (run as COMMAND NODE_ID through sh)'),
});

export const CORE_SECTIONS = {
  node: nodeSection,
  cluster: clusterSection,
  crypto: cryptoSection,
  limits: limitsSection,
  quorum: quorumSection,
} as const;

export type CoreSectionName = keyof typeof CORE_SECTIONS;
