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

/** A DNS host name (RFC 1123 labels; the last label not all digits, so "10.0.0.300" is no name). */
export function isHostName(text: string): boolean {
  if (text.length > 253) return false;
  const labels = text.replace(/\.$/, '').split('.');
  return labels.every((l) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l)) && !/^\d+$/.test(labels[labels.length - 1]);
}

/** An IPv4 or IPv6 literal (as opposed to a host name still to resolve). */
export function isIpLiteral(host: string): boolean {
  return isIPv4(host) || isIPv6(host);
}

/**
 * "host:port", "host" (default port), "[v6]:port" or "[v6]". The host is an IP literal or, with
 * `names`, a host name (resolved when the daemon starts: resolveConfig in resolve.ts).
 */
export function parseEndpoint(text: string, defaultPort: number, names = false): Endpoint | undefined {
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) {
    host = v6[1];
    portText = v6[2];
    if (!isIPv6(host)) return undefined;
  } else {
    const m = /^([^:]+)(?::(\d+))?$/.exec(text);
    if (!m || !(isIPv4(m[1]) || (names && isHostName(m[1])))) return undefined;
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
  .refine((s) => parseEndpoint(s, DEFAULT_PORT, true) !== undefined)
  .describe('an address "host:port": an IPv4 address, an [IPv6] address or a host name (resolved when the daemon starts); the port may be left out');
const ipEndpoint = z.string()
  .refine((s) => parseEndpoint(s, DEFAULT_PORT) !== undefined)
  .describe('an address "IP:port" (IPv4, or [IPv6]; the port may be left out)');

const nodeId = z.int().min(1).max(NODE_ID_MAX);
const fileMode = z.int().min(0).max(0o7777).describe('a file mode from 0 to 0o7777, written in octal like 0o750');
const path = z.string().min(1).describe('a non-empty path');
const userOrGroup = z.union([z.string().min(1), z.int().min(0)]).describe('a name or a numeric id');
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/)
  .describe('a name of 1 to 64 characters: letters, digits, "_", "." and "-", starting with a letter or digit');

/** What a key means, for docs/CONFIG.md (tools/gen-config-doc.ts reads it back): one source. */
export function doc<S extends z.ZodType>(schema: S, meaning: string): S {
  return schema.meta({ doc: meaning }) as S;
}

/** The meaning given to a schema with doc(), looking through wrappers; undefined when none. */
export function docOf(schema: z.ZodType): string | undefined {
  const m = z.globalRegistry.get(schema) as { doc?: unknown } | undefined;
  return typeof m?.doc === 'string' ? m.doc : undefined;
}

export const nodeSection = z.strictObject({
  id: doc(nodeId, "This node's id: the id of its entry in cluster.nodes."),
  name: doc(name.optional(), "A name for logs and status (default: the name of this node's entry in cluster.nodes)."),
  listen: doc(endpoint.optional(), "The UDP address this node listens on; it must be this node's address in cluster.nodes (default: that address)."),
  socket: doc(path.refine((p) => Buffer.byteLength(p) <= SOCKET_PATH_MAX)
    .describe(`a path of at most ${SOCKET_PATH_MAX} bytes (the limit of a unix socket address)`).default(DEFAULT_SOCKET),
  'The bridge\'s unix datagram socket, through which local processes open cluster sockets (relative paths are relative to the config file).'),
  socket_dir_mode: doc(fileMode.default(0o750), "Mode of the socket's directory, created if missing."),
  socket_mode: doc(fileMode.default(0o660), 'Mode of the socket file: whoever may write to it may use the cluster.'),
  socket_owner: doc(userOrGroup.optional(), "Owner of the socket and its directory (default: the daemon's user)."),
  socket_group: doc(userOrGroup.optional(), "Group of the socket and its directory: with the default modes, its members may use the cluster (default: the daemon's group)."),
  state_dir: doc(path.default(DEFAULT_STATE_DIR), 'Directory for durable state (the ring sequence number, fsynced), created if missing.'),
});

export const nodeEntry = z.strictObject({
  id: doc(nodeId, "The node's id, unique in the cluster."),
  addr: doc(endpoint, "The node's UDP address: the others send to it, and know the node by it (datagrams from any other source are dropped)."),
  name: doc(name.optional(), 'A name for logs and status.'),
  votes: doc(z.int().min(0).max(255).default(1).describe('a number of votes from 0 to 255'), "The node's quorum votes (0: it never counts towards quorum)."),
});

export const clusterSection = z.strictObject({
  name: doc(name.default(DEFAULT_CLUSTER_NAME), "The cluster's name, sealed into every datagram: clusters that share a network ignore each other. The same on every node."),
  driver: doc(z.string().min(1).default(DEFAULT_DRIVER), 'The protocol driver: "totem" (total order, virtual synchrony) or "cman" (FIFO, ack and resend). The same on every node.'),
  nodes: doc(z.array(nodeEntry).min(1).max(NODES_MAX)
    .describe(`an array of 1 to ${NODES_MAX} tables like { id = 1, addr = "10.0.0.1:${DEFAULT_PORT}", name = "a" }`),
  'Every node of the cluster, this one included: the same list on every node. Each entry\'s keys are below.'),
  transport: doc(z.enum(['udpu', 'multicast']).default('udpu'), '"udpu": one unicast datagram to each other node (works on any network); "multicast": one IP multicast datagram to all.'),
  multicast_addr: doc(ipEndpoint.optional(), `The multicast group and port for transport = "multicast" (default for IPv4: ${DEFAULT_MULTICAST_ADDR} and port ${DEFAULT_PORT}). An IPv6 group is joined and bound on the interface that holds the node's address (its scope, when it names one), so a link-local group (ff02::, ff12::) works; the node's address must then be an address, not a wildcard.`),
  mtu: doc(z.union([z.literal('auto'), z.int().min(576).max(65535)]).default('auto').describe('"auto" or an integer from 576 to 65535'),
    'The path MTU of the network (IP packet size): frames are sized to fit one packet. "auto": the MTU of the interface that holds this node\'s address, read at start (65535 on loopback, 1500 on most LANs, 9000 with jumbo frames); every node must see the same.'),
});

export const cryptoSection = z.strictObject({
  key_file: doc(path.optional(), 'The cluster key (32 bytes, mode 0600, made by `afcluster keygen`), the same on every node. Absent: traffic is neither encrypted nor authenticated, and the daemon says so at start.'),
});

const MiB = 1024 * 1024;

export const limitsSection = z.strictObject({
  message_size_max: doc(z.int().min(1).max(64 * MiB).default(MiB), 'The largest message a socket may send (larger than a datagram: it travels in parts). The same on every node.'),
  sockets_max: doc(z.int().min(1).max(1_000_000).default(1024), 'Cluster sockets open on this node at once.'),
  groups_max: doc(z.int().min(1).max(1_000_000).default(1024), "Distinct groups this node's sockets may be bound to at once."),
  group_name_max: doc(z.int().min(1).max(65535).default(128), 'The longest group name, in bytes. The same on every node.'),
  // 65536, not 4096: a backlog waits as the bytes of its events (written into containers,
  // core/af/outbox.ts), so recv_queue_bytes_max is what bounds the memory, and at 4096 the count
  // evicted readers that read all the time: every node sending 100 B as fast as the client
  // library's window allows (about 300,000 messages a second here), 8192 events (twice the bound)
  // are 27 ms of delivery, and a reader that was also a sender fell that far behind in 3 rows of
  // 12 (docs/bench/recv-queue-max.txt).
  // 65536 events of 100 B are about the 8 MiB byte bound.
  recv_queue_max: doc(z.int().min(1).max(10_000_000).default(65536), 'Events queued for one socket that is not reading; past it the socket leaves its group and gets ENOBUFS. For messages of about 100 bytes or more, recv_queue_bytes_max is the bound that counts.'),
  // Per socket, so sockets_max of them can be full at once: 8 MiB (eight largest messages, or
  // 4096 events of 2 KiB) keeps one slow reader from holding more than 16 MiB in a burst (32 MiB
  // of frames at worst, docs/ARCHITECTURE.md "Memory"); a reader that falls further behind gets
  // ENOBUFS, as with any full queue. At 4 MiB, bench readers of 1 MiB messages on two busy cores
  // were removed in half the runs once the daemons stopped copying fragments (docs/BENCH.md).
  recv_queue_bytes_max: doc(z.int().min(1).max(4096 * MiB).default(8 * MiB), 'The same bound for one socket in bytes (at least message_size_max). Readers of large messages at high rates may need more: at 300 MB/s, 8 MiB is 28 ms of delivery, and a reader that pauses for about 55 ms reaches twice the bound and is removed, whatever recv_stall_ms says.'),
  recv_stall_ms: doc(z.int().min(100).max(600_000).default(2000), 'A socket over its receive-queue bounds is removed from its group (overrun) once it has read nothing for this long, or its queue reaches twice the bounds: a burst after a merge does not evict a reader.'),
  members_max: doc(z.int().min(1).max(1_000_000).default(1024), 'Members of one group at most. The same on every node.'),
});

export const quorumSection = z.strictObject({
  enabled: doc(z.boolean().default(true), 'false: every component counts as quorate (no quorum; locks are then not partition-safe).'),
  expected_votes: doc(z.int().min(0).max(255 * NODES_MAX).default(0)
    .describe('a number of votes (0 = the sum of the votes in cluster.nodes)'), 'The votes of the whole cluster: a component is quorate with more than half of them (0: the sum of the votes in cluster.nodes).'),
  two_node: doc(z.boolean().default(false), 'A two-node cluster stays quorate with one vote (both halves of a split do: only fencing makes that safe); implies wait_for_all.'),
  wait_for_all: doc(z.boolean().optional(), 'After a cold start, not quorate until every configured node has been in one configuration (default: the value of two_node).'),
  last_man_standing: doc(z.boolean().default(false), 'Once a quorate membership has been stable for the window, expected votes drop to the votes present, so quorum degrades step by step.'),
  last_man_standing_window_ms: doc(z.int().min(1000).max(3_600_000).default(10_000), 'How long a membership must be stable before last_man_standing lowers expected votes.'),
  auto_tie_breaker: doc(z.boolean().default(false), 'In an exact half split, the half with the tie-breaker node stays quorate.'),
  auto_tie_breaker_node: doc(z.union([z.enum(['lowest', 'highest']), nodeId]).default('lowest')
    .describe('"lowest", "highest" or a node id'), 'The tie-breaker: the lowest configured node id, the highest, or this node id.'),
  fence_command: doc(z.string().min(1).optional().describe('a command line (run as COMMAND NODE_ID through sh)'),
    'Powers off a node cut off from the quorate part: run by the lock service as COMMAND NODE_ID; exit status 0 means done (docs/LOCKS.md).'),
});

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

export const logSection = z.strictObject({
  level: doc(z.enum(LOG_LEVELS).default('info'), 'The least severe level logged. --log-level and AFCLUSTER_LOG_LEVEL override it.'),
  format: doc(z.enum(LOG_FORMATS).default('auto'), '"json": one JSON object per line; "pretty": one readable line per entry; "auto": pretty on a terminal, else json. --log-format overrides it.'),
});

export const DEFAULT_METRICS_PORT = 9405;

export const metricsSection = z.strictObject({
  listen: doc(z.string().refine((s) => parseEndpoint(s, DEFAULT_METRICS_PORT) !== undefined)
    .describe(`an address "IP:port" (IPv4, or [IPv6]; the port may be left out: ${DEFAULT_METRICS_PORT})`).optional(),
  'Serve Prometheus metrics over HTTP at this address (GET /metrics; docs/METRICS.md). Absent: no endpoint. It has no authentication: keep it on a loopback or management address.'),
});

const principal = z.string().regex(/^(\*|@?[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?)$/)
  .describe('"*" (anyone), a user ("alice", or a uid like "1000") or a group ("@wheel", or a gid like "@10")');
const principals = z.array(principal).max(256).describe('an array of "*" (anyone), users ("alice", "1000") and groups ("@wheel", "@10")');
// eslint-disable-next-line no-control-regex
const groupPattern = z.string().min(1).max(4096).regex(/^[^\u0000-\u001f\u007f]+$/)
  .describe('a group name, or a prefix ending in "*" like "app.*" ("*" alone: every group)');

export const accessRule = z.strictObject({
  name: doc(groupPattern, 'The groups the rule is for: a group name, or a prefix ending in "*" ("*" alone: every group). For a group, a rule with its exact name decides, else the one with the longest matching prefix.'),
  join: doc(principals, 'Who may bind a socket to the group (BIND; others get EACCES): users by name or uid, groups by "@name" or "@gid" (the group of the client\'s socket file, or one of its process\'s supplementary groups), "*" for anyone.'),
  send: doc(principals.optional(), 'Who of the members may send to the group; the others get EACCES (default: as join).'),
  receive: doc(principals.optional(), "Who of the members gets the group's messages; the others get its membership events only (default: as join)."),
});

/** The lock service's group (services/lock DEFAULT_LOCK_GROUP), protected when no rule names it. */
export const LOCK_GROUP = 'afcluster.locks';

export const accessSection = z.strictObject({
  group: doc(z.array(accessRule).max(1024).default([])
    .describe('an array of tables like { name = "app.*", join = ["@app"], send = ["alice"] }'),
  `Who may join, send to and receive from which groups; a group no rule matches is open to every process that can use the socket. Unless a rule names "${LOCK_GROUP}" exactly, the lock service's group is limited to root and the daemon's own group (its gid). Identities are the kernel's word (docs/PROTOCOL.md, HELLO). Each rule's keys are below.`),
});

export const CORE_SECTIONS = {
  node: nodeSection,
  cluster: clusterSection,
  crypto: cryptoSection,
  limits: limitsSection,
  quorum: quorumSection,
  log: logSection,
  metrics: metricsSection,
  access: accessSection,
} as const;

export type CoreSectionName = keyof typeof CORE_SECTIONS;

/** Where the daemon reads its config when neither --config nor AFCLUSTER_CONFIG names one. */
export const DEFAULT_CONFIG = '/etc/afcluster/afcluster.toml';
export const CONFIG_ENV = 'AFCLUSTER_CONFIG';
