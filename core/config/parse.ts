// Reads one node's TOML config into a validated NodeConfig. Every failure is a ClusterError
// EINVAL whose lines name the file, the key, the value and the expected form; unknown keys
// are errors, because a typo must not pass silently.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isIPv4 } from 'node:net';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { ClusterError } from '../api/errors.ts';
import type { DriverRegistry } from '../driver/registry.ts';
import type { AccessPrincipal, AccessRule, Endpoint, NodeConfig, NodeEntry } from './types.ts';
import { lookupId } from './accounts.ts';
import { formatValue, issueLines } from './describe.ts';
import {
  CORE_SECTIONS, DEFAULT_METRICS_PORT, DEFAULT_MULTICAST_ADDR, DEFAULT_PORT, formatEndpoint, isIpLiteral, parseEndpoint,
  type accessSection, type clusterSection, type cryptoSection, type limitsSection, type logSection, type metricsSection,
  type nodeSection, type quorumSection,
} from './schema.ts';

type Table = Record<string, unknown>;
const EMBEDDED = '<embedded>';

/** Reads and parses a config file. */
export function loadConfig(path: string, registry: DriverRegistry): NodeConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ClusterError('ENOENT', `${path}: no such config file`);
    if (code === 'EACCES') throw new ClusterError('EACCES', `${path}: permission denied reading the config file`);
    throw new ClusterError('EINVAL', `${path}: cannot read the config file: ${(e as Error).message}`);
  }
  return parseConfig(text, path, registry);
}

/**
 * Parses config text. `file` names it in messages; relative paths in the file (socket,
 * state_dir, key_file) are taken relative to the file's directory.
 */
export function parseConfig(text: string, file: string, registry: DriverRegistry): NodeConfig {
  const raw = parseTomlText(text, file);
  const errors: string[] = [];
  checkSectionNames(raw, file, registry, errors);
  const node = section<z.output<typeof nodeSection>>(raw, 'node', CORE_SECTIONS.node, file, errors);
  const cluster = section<z.output<typeof clusterSection>>(raw, 'cluster', CORE_SECTIONS.cluster, file, errors);
  const crypto = section<z.output<typeof cryptoSection>>(raw, 'crypto', CORE_SECTIONS.crypto, file, errors);
  const limits = section<z.output<typeof limitsSection>>(raw, 'limits', CORE_SECTIONS.limits, file, errors);
  const quorum = section<z.output<typeof quorumSection>>(raw, 'quorum', CORE_SECTIONS.quorum, file, errors);
  const log = section<z.output<typeof logSection>>(raw, 'log', CORE_SECTIONS.log, file, errors);
  const metrics = section<z.output<typeof metricsSection>>(raw, 'metrics', CORE_SECTIONS.metrics, file, errors);
  const accessRaw = section<z.output<typeof accessSection>>(raw, 'access', CORE_SECTIONS.access, file, errors);
  const access = accessRaw && accessRules(accessRaw, file, errors);
  const drivers = driverSections(raw, cluster?.driver, file, registry, errors);
  if (errors.length === 0 && node && cluster && crypto && limits && quorum && log && metrics && access) {
    const config = build({ file, node, cluster, crypto, limits, quorum, log, metrics, access, drivers });
    crossCheck(config, node.listen, file, errors);
    if (errors.length === 0) return config;
  }
  throw new ClusterError('EINVAL', errors.join('\n'));
}

function parseTomlText(text: string, file: string): Table {
  try {
    return parseToml(text) as Table;
  } catch (e) {
    if (e instanceof TomlError) {
      const reason = e.message.replace(/^Invalid TOML document: /, '').split('\n')[0];
      throw new ClusterError('EINVAL', `${file}:${e.line}:${e.column}: TOML syntax error: ${reason}\n${e.codeblock}`);
    }
    throw new ClusterError('EINVAL', `${file}: cannot parse TOML: ${(e as Error).message}`);
  }
}

function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function checkSectionNames(raw: Table, file: string, registry: DriverRegistry, errors: string[]): void {
  const known = [...Object.keys(CORE_SECTIONS), ...registry.names()];
  for (const [key, value] of Object.entries(raw)) {
    if (!known.includes(key)) {
      errors.push(`${file}: ${key}: unknown key (known: ${known.join(', ')})`);
    } else if (!isTable(value)) {
      errors.push(`${file}: ${key} = ${formatValue(value)}: expected a table [${key}]`);
    }
  }
}

/** Validates one section (absent = empty table, so defaults apply and required keys are named). */
function section<T>(raw: Table, name: string, schema: z.ZodType, file: string, errors: string[]): T | undefined {
  const value = raw[name] ?? {};
  if (!isTable(value)) return undefined; // already reported
  const r = schema.safeParse(value);
  if (r.success) return r.data as T;
  errors.push(...issueLines(file, [name], schema, value, r.error.issues));
  return undefined;
}

/** Every registered driver's section that is present, plus the selected driver's (defaults). */
function driverSections(raw: Table, selected: string | undefined, file: string, registry: DriverRegistry,
  errors: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (selected !== undefined && !registry.has(selected)) {
    const names = registry.names();
    errors.push(`${file}: cluster.driver = ${formatValue(selected)}: unknown driver (registered: ${names.length ? names.join(', ') : 'none'})`);
  }
  for (const name of registry.names()) {
    if (raw[name] === undefined && name !== selected) continue;
    const parsed = section<unknown>(raw, name, registry.get(name).optionsSchema, file, errors);
    if (parsed !== undefined) out[name] = parsed;
  }
  return out;
}

interface Parts {
  file: string;
  node: z.output<typeof nodeSection>;
  cluster: z.output<typeof clusterSection>;
  crypto: z.output<typeof cryptoSection>;
  limits: z.output<typeof limitsSection>;
  quorum: z.output<typeof quorumSection>;
  log: z.output<typeof logSection>;
  metrics: z.output<typeof metricsSection>;
  access: AccessRule[];
  drivers: Record<string, unknown>;
}

/** The [[access.group]] rules with user and group names resolved to ids (unknown names and
 *  rules naming the same groups twice are errors). */
function accessRules(a: z.output<typeof accessSection>, file: string, errors: string[]): AccessRule[] {
  const seen = new Map<string, number>();
  return a.group.map((r, i) => {
    const key = `access.group[${i}]`;
    const other = seen.get(r.name);
    if (other !== undefined) errors.push(`${file}: ${key}.name = ${formatValue(r.name)}: access.group[${other}] names the same groups; expected one rule per name`);
    seen.set(r.name, i);
    const list = (field: 'join' | 'send' | 'receive', names: readonly string[]): AccessPrincipal[] => names.map((n, j) => {
      if (n === '*') return { kind: 'anyone' };
      const kind = n.startsWith('@') ? 'group' : 'user';
      const name = kind === 'group' ? n.slice(1) : n;
      const id = lookupId(name, kind);
      if (id === undefined) {
        errors.push(`${file}: ${key}.${field}[${j}] = ${formatValue(n)}: no such ${kind} in ${kind === 'user' ? '/etc/passwd' : '/etc/group'}; expected an existing name or a numeric id`);
        return { kind, id: -1 };
      }
      return { kind, id };
    });
    const join = list('join', r.join);
    return { name: r.name, join, send: r.send ? list('send', r.send) : join, receive: r.receive ? list('receive', r.receive) : join };
  });
}

function endpoint(text: string, defaultPort = DEFAULT_PORT): Endpoint {
  const e = parseEndpoint(text, defaultPort, true);
  if (!e) throw new Error(`unreachable: ${text} passed the schema`);
  return e;
}

/** Where each node's entry stands in the file's cluster.nodes (the config lists them by id). */
const fileIndexes = new WeakMap<NodeConfig['cluster']['nodes'], ReadonlyMap<number, number>>();

/** "cluster.nodes[2]": the key of node `id`'s entry, as the file has it. */
export function nodeKey(c: NodeConfig, id: number): string {
  const i = fileIndexes.get(c.cluster.nodes)?.get(id);
  return i === undefined ? `cluster.nodes (id ${id})` : `cluster.nodes[${i}]`;
}

function build(p: Parts): NodeConfig {
  const base = p.file === EMBEDDED ? process.cwd() : dirname(resolve(p.file));
  const abs = (path: string) => resolve(base, path);
  const nodes: NodeEntry[] = p.cluster.nodes.map((n) => ({ id: n.id, addr: endpoint(n.addr), votes: n.votes, ...(n.name ? { name: n.name } : {}) }));
  const self = nodes.find((n) => n.id === p.node.id);
  const listen = p.node.listen !== undefined ? endpoint(p.node.listen) : (self?.addr ?? { host: '0.0.0.0', port: DEFAULT_PORT });
  const name = p.node.name ?? self?.name;
  const mcast = p.cluster.multicast_addr ?? (p.cluster.transport === 'multicast' ? DEFAULT_MULTICAST_ADDR : undefined);
  const asText = (v: string | number | undefined) => (v === undefined ? undefined : String(v));
  const sortedNodes = [...nodes].sort((a, b) => a.id - b.id);
  fileIndexes.set(sortedNodes, new Map(p.cluster.nodes.map((n, i) => [n.id, i])));
  return {
    node: {
      id: p.node.id, ...(name ? { name } : {}), listen, socket: abs(p.node.socket),
      socketDirMode: p.node.socket_dir_mode, socketMode: p.node.socket_mode,
      ...(p.node.socket_owner !== undefined ? { socketOwner: asText(p.node.socket_owner) } : {}),
      ...(p.node.socket_group !== undefined ? { socketGroup: asText(p.node.socket_group) } : {}),
      stateDir: abs(p.node.state_dir),
    },
    cluster: {
      name: p.cluster.name, driver: p.cluster.driver, nodes: sortedNodes,
      transport: p.cluster.transport, ...(mcast !== undefined ? { multicastAddr: endpoint(mcast) } : {}), mtu: p.cluster.mtu,
    },
    crypto: p.crypto.key_file !== undefined ? { keyFile: abs(p.crypto.key_file) } : {},
    limits: {
      messageSizeMax: p.limits.message_size_max, socketsMax: p.limits.sockets_max, groupsMax: p.limits.groups_max,
      groupNameMax: p.limits.group_name_max, recvQueueMax: p.limits.recv_queue_max,
      recvQueueBytesMax: p.limits.recv_queue_bytes_max, recvStallMs: p.limits.recv_stall_ms, membersMax: p.limits.members_max,
    },
    quorum: {
      enabled: p.quorum.enabled, expectedVotes: p.quorum.expected_votes, twoNode: p.quorum.two_node,
      waitForAll: p.quorum.wait_for_all ?? p.quorum.two_node, lastManStanding: p.quorum.last_man_standing,
      lastManStandingWindowMs: p.quorum.last_man_standing_window_ms, autoTieBreaker: p.quorum.auto_tie_breaker,
      autoTieBreakerNode: p.quorum.auto_tie_breaker_node,
      ...(p.quorum.fence_command !== undefined ? { fenceCommand: p.quorum.fence_command } : {}),
    },
    log: { level: p.log.level, format: p.log.format },
    metrics: p.metrics.listen !== undefined ? { listen: endpoint(p.metrics.listen, DEFAULT_METRICS_PORT) } : {},
    access: { groups: p.access },
    drivers: p.drivers,
    file: p.file,
  };
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.host === b.host && a.port === b.port;
}

function isMulticast(e: Endpoint): boolean {
  if (isIPv4(e.host)) {
    const first = Number(e.host.split('.')[0]);
    return first >= 224 && first <= 239;
  }
  return e.host.toLowerCase().startsWith('ff');
}

/** Checks that span keys (ids, addresses, this node's entry, multicast group, limits). Address
 *  checks wait for resolveConfig when the file names hosts. */
function crossCheck(c: NodeConfig, listenText: string | undefined, file: string, errors: string[]): void {
  const ids = new Set<number>();
  for (const n of c.cluster.nodes) {
    if (ids.has(n.id)) errors.push(`${file}: cluster.nodes: id ${n.id} appears twice: expected unique node ids`);
    ids.add(n.id);
  }
  if (!ids.has(c.node.id)) {
    errors.push(`${file}: node.id = ${c.node.id}: expected the id of one of cluster.nodes (${c.cluster.nodes.map((n) => n.id).join(', ')})`);
  }
  if (hostNames(c).length === 0) checkAddresses(c, errors, listenText);
  checkQuorum(c, file, errors);
  if (c.limits.recvQueueBytesMax < c.limits.messageSizeMax) {
    errors.push(`${file}: limits.recv_queue_bytes_max = ${c.limits.recvQueueBytesMax}: expected at least limits.message_size_max (${c.limits.messageSizeMax}), or a largest message could never be queued`);
  }
}

/** The host names (not IP literals) in node.listen and cluster.nodes, each once. */
export function hostNames(c: NodeConfig): string[] {
  return [...new Set([c.node.listen.host, ...c.cluster.nodes.map((n) => n.addr.host)].filter((h) => !isIpLiteral(h)))];
}

/**
 * Address checks on IP literals: one family, unique addresses, node.listen is this node's
 * address, a multicast group of the same family. `listenText` is node.listen as written
 * (undefined when left out); `resolved` says the addresses came from host names.
 */
export function checkAddresses(c: NodeConfig, errors: string[], listenText?: string, resolved = false): void {
  const file = c.file;
  const after = resolved ? ' (after resolving host names)' : '';
  const v4 = isIPv4(c.cluster.nodes[0].addr.host);
  const addrs = new Map<string, number>();
  for (const n of c.cluster.nodes) {
    const addr = formatEndpoint(n.addr);
    const other = addrs.get(addr);
    if (other !== undefined) errors.push(`${file}: cluster.nodes: addr "${addr}" appears twice${after} (nodes ${other} and ${n.id}): expected one address per node`);
    else addrs.set(addr, n.id);
    if (isIPv4(n.addr.host) !== v4) errors.push(`${file}: cluster.nodes: node ${n.id} addr "${addr}"${after}: expected an ${v4 ? 'IPv4' : 'IPv6'} address like the first node's`);
  }
  const self = c.cluster.nodes.find((n) => n.id === c.node.id);
  if (self && !sameEndpoint(c.node.listen, self.addr)) {
    const shown = listenText ?? formatEndpoint(c.node.listen);
    errors.push(`${file}: node.listen = ${formatValue(shown)}${after}: expected this node's address in cluster.nodes, "${formatEndpoint(self.addr)}" (or leave node.listen out)`);
  }
  const m = c.cluster.multicastAddr;
  if (c.cluster.transport === 'multicast' && !m) {
    errors.push(`${file}: cluster.multicast_addr: missing: expected an IPv6 multicast address "[ff..]:port" (an IPv6 cluster has no default group)`);
  } else if (m && (!isMulticast(m) || isIPv4(m.host) !== v4)) {
    errors.push(`${file}: cluster.multicast_addr = ${formatValue(formatEndpoint(m))}: expected an ${v4 ? 'IPv4 multicast address (224.0.0.0 to 239.255.255.255)' : 'IPv6 multicast address (ff00::/8)'}`);
  }
}

/** Combinations votequorum refuses, or that could not mean what they say. */
function checkQuorum(c: NodeConfig, file: string, errors: string[]): void {
  const q = c.quorum;
  const total = c.cluster.nodes.reduce((sum, n) => sum + n.votes, 0);
  const say = (key: string, value: unknown, expected: string): void => {
    errors.push(`${file}: ${key} = ${formatValue(value)}: ${expected}`);
  };
  if (total === 0) say('cluster.nodes', 'votes', 'expected at least one node with votes > 0, or no component could ever be quorate');
  if (q.expectedVotes !== 0 && q.expectedVotes < total) {
    say('quorum.expected_votes', q.expectedVotes, `expected 0 (the sum of the nodes' votes, ${total}) or at least ${total}: fewer would let two halves both be quorate`);
  }
  if (q.twoNode && (c.cluster.nodes.length !== 2 || total !== 2)) {
    say('quorum.two_node', true, `expected exactly 2 nodes of 1 vote each in cluster.nodes (found ${c.cluster.nodes.length} nodes, ${total} votes)`);
  }
  if (q.twoNode && q.autoTieBreaker) say('quorum.auto_tie_breaker', true, 'expected false with quorum.two_node (two_node already decides the 1-1 split)');
  if (q.twoNode && q.lastManStanding) say('quorum.last_man_standing', true, 'expected false with quorum.two_node (there is nothing to lower)');
  const tb = q.autoTieBreakerNode;
  if (typeof tb === 'number' && !c.cluster.nodes.some((n) => n.id === tb)) {
    say('quorum.auto_tie_breaker_node', tb, `expected "lowest", "highest" or the id of one of cluster.nodes (${c.cluster.nodes.map((n) => n.id).join(', ')})`);
  }
}
