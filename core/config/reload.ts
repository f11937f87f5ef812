// What a reload (SIGHUP) may change in a running daemon, and what needs a restart. The daemon
// applies the plan; docs/CONFIG.md's "reload" column is generated from RELOADABLE.
import type { NodeConfig, NodeEntry } from './types.ts';
import { formatEndpoint } from './schema.ts';

/** Keys a reload applies, with what "applied" means for each; every other key needs a restart. */
export const RELOADABLE: Readonly<Record<string, string>> = {
  'log.level': 'applied at once (unless --log-level or AFCLUSTER_LOG_LEVEL set it)',
  'limits.sockets_max': 'applied to sockets opened after the reload',
  'limits.groups_max': 'applied to binds after the reload',
  'limits.recv_queue_max': 'applied to sockets opened after the reload',
  'limits.recv_queue_bytes_max': 'applied to sockets opened after the reload',
  'limits.recv_stall_ms': 'applied to sockets opened after the reload',
  'cluster.nodes': 'totem: nodes added and removed at once (see "Adding and removing a node"); cman: restart',
  'access.group': 'applied to binds after the reload (sockets already bound keep what their bind allowed)',
};

/** The keys of a config a reload compares, as the file spells them, with their values. */
function keyed(c: NodeConfig): [string, unknown][] {
  const nodes = c.cluster.nodes.map((n) => ({ ...n, addr: formatEndpoint(n.addr) }));
  return [
    ['node.id', c.node.id], ['node.name', c.node.name], ['node.listen', formatEndpoint(c.node.listen)],
    ['node.socket', c.node.socket], ['node.socket_dir_mode', c.node.socketDirMode], ['node.socket_mode', c.node.socketMode],
    ['node.socket_owner', c.node.socketOwner], ['node.socket_group', c.node.socketGroup], ['node.state_dir', c.node.stateDir],
    ['cluster.name', c.cluster.name], ['cluster.driver', c.cluster.driver], ['cluster.nodes', nodes],
    ['cluster.transport', c.cluster.transport],
    ['cluster.multicast_addr', c.cluster.multicastAddr && formatEndpoint(c.cluster.multicastAddr)], ['cluster.mtu', c.cluster.mtu],
    ['crypto.key_file', c.crypto.keyFile],
    ['limits.message_size_max', c.limits.messageSizeMax], ['limits.sockets_max', c.limits.socketsMax],
    ['limits.groups_max', c.limits.groupsMax], ['limits.group_name_max', c.limits.groupNameMax],
    ['limits.recv_queue_max', c.limits.recvQueueMax], ['limits.recv_queue_bytes_max', c.limits.recvQueueBytesMax],
    ['limits.recv_stall_ms', c.limits.recvStallMs],
    ['limits.members_max', c.limits.membersMax],
    ...Object.entries(c.quorum).map(([k, v]): [string, unknown] => [`quorum.${snake(k)}`, v]),
    ['log.level', c.log.level], ['log.format', c.log.format],
    ['metrics.listen', c.metrics.listen && formatEndpoint(c.metrics.listen)],
    ['access.group', c.access.groups],
    ...[...new Set([...Object.keys(c.drivers)])].map((d): [string, unknown] => [`[${d}]`, c.drivers[d]]),
  ];
}

const snake = (k: string): string => k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);

export interface ReloadPlan {
  /** Changed keys a reload applies. */
  readonly apply: readonly string[];
  /** Changed keys that need a restart (the running value stays). */
  readonly restart: readonly string[];
  readonly limits: Partial<NodeConfig['limits']>;
  readonly logLevel?: NodeConfig['log']['level'];
  readonly nodes?: readonly NodeEntry[];
  readonly access?: NodeConfig['access'];
}

/** Compares the running config with the file's new one. */
export function planReload(running: NodeConfig, next: NodeConfig): ReloadPlan {
  const before = new Map(keyed(running));
  const after = new Map(keyed(next));
  const changed = [...new Set([...before.keys(), ...after.keys()])]
    .filter((k) => JSON.stringify(before.get(k)) !== JSON.stringify(after.get(k)));
  const apply = changed.filter((k) => k in RELOADABLE);
  const limits: Partial<Record<keyof NodeConfig['limits'], number>> = {};
  for (const k of apply) {
    if (!k.startsWith('limits.')) continue;
    const camel = k.slice(7).replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase()) as keyof NodeConfig['limits'];
    limits[camel] = next.limits[camel];
  }
  return {
    apply, restart: changed.filter((k) => !(k in RELOADABLE)), limits,
    ...(apply.includes('log.level') ? { logLevel: next.log.level } : {}),
    ...(apply.includes('cluster.nodes') ? { nodes: next.cluster.nodes } : {}),
    ...(apply.includes('access.group') ? { access: next.access } : {}),
  };
}
