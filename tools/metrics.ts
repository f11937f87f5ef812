// The daemon's Prometheus endpoint ([metrics] listen): GET /metrics answers the text exposition
// format (version 0.0.4) with the numbers STATS reports (core/af/daemon.ts, bridge.allStats()),
// under stable names. METRICS is the one list: the endpoint renders it and docs/METRICS.md's
// table is generated from it (tools/gen-config-doc.ts), so the two cannot disagree.
import { createServer, type Server } from 'node:http';
import type { StatValue } from '../core/af/codec.ts';
import { formatEndpoint, type Endpoint } from '../core/config/index.ts';

type Stats = Readonly<Record<string, StatValue>>;

export interface MetricDef {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  /** The STATS keys it is read from (the first present wins), for the docs. */
  readonly from: readonly string[];
  /** Samples: [labels, value]; none when the node does not have the number (e.g. cman has no token). */
  readonly samples: (s: Stats) => [Record<string, string>, number][];
}

function num(s: Stats, keys: readonly string[]): number | undefined {
  for (const k of keys) {
    const v = s[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

function one(name: string, type: MetricDef['type'], help: string, from: readonly string[]): MetricDef {
  return { name, type, help, from, samples: (s) => { const v = num(s, from); return v === undefined ? [] : [[{}, v]]; } };
}

const CRYPTO_DROPS = ['truncated', 'oversize', 'garbage', 'version', 'mode', 'other_cluster', 'auth'] as const;
const cryptoKey = (reason: string): string => `crypto.dropped${reason.replace(/(^|_)([a-z])/g, (_, _u: string, c: string) => c.toUpperCase())}`;

export const METRICS: readonly MetricDef[] = [
  {
    name: 'afcluster_info', type: 'gauge', help: 'Always 1; labels: the node id and the driver.', from: ['node.id', 'node.driver'],
    samples: (s) => [[{ node: String(s['node.id'] ?? ''), driver: String(s['node.driver'] ?? '') }, 1]],
  },
  {
    name: 'afcluster_ring_members', type: 'gauge', help: 'Nodes in the current configuration (this one included).', from: ['node.members'],
    samples: (s) => [[{}, String(s['node.members'] ?? '').split(',').filter(Boolean).length]],
  },
  {
    name: 'afcluster_ring_seq', type: 'gauge', help: 'Sequence number of the current ring id (it changes with every new ring).', from: ['node.ringId'],
    samples: (s) => { const seq = Number(String(s['node.ringId'] ?? '').split('.')[1]); return Number.isFinite(seq) ? [[{}, seq]] : []; },
  },
  one('afcluster_rings_formed_total', 'counter', 'Rings (configurations) this node has installed since it started.', ['driver.rings', 'driver.configurations']),
  one('afcluster_messages_sent_total', 'counter', "Messages this node's sockets sent to their groups.", ['groups.sent']),
  one('afcluster_messages_delivered_total', 'counter', 'Messages the driver delivered to this node (group data, joins, leaves and state reports).', ['groups.delivered']),
  one('afcluster_retransmissions_total', 'counter', 'Frames this node sent again because a member missed them.', ['driver.mcastRetransmits', 'driver.resent']),
  one('afcluster_token_rotations_total', 'counter', 'Tokens this node received: one per rotation of the ring (totem only).', ['driver.tokens']),
  one('afcluster_token_retransmissions_total', 'counter', 'Tokens this node sent again because the next node did not answer in time (totem only).', ['driver.tokenRetransmits']),
  one('afcluster_driver_send_queue_messages', 'gauge', "Messages waiting in the driver's send queue.", ['driver.queued', 'driver.queuedMessages']),
  one('afcluster_network_datagrams_sent_total', 'counter', 'UDP datagrams sent.', ['transport.sentDatagrams']),
  one('afcluster_network_datagrams_received_total', 'counter', 'UDP datagrams received from configured nodes.', ['transport.recvDatagrams']),
  one('afcluster_network_bytes_sent_total', 'counter', 'UDP payload bytes sent.', ['transport.sentBytes']),
  one('afcluster_network_bytes_received_total', 'counter', 'UDP payload bytes received from configured nodes.', ['transport.recvBytes']),
  one('afcluster_network_unknown_source_total', 'counter', 'Datagrams dropped because their source is no configured node.', ['transport.droppedUnknownSource']),
  one('afcluster_network_send_errors_total', 'counter', 'UDP sends that failed.', ['transport.sendErrors']),
  one('afcluster_crypto_encrypted', 'gauge', '1 when traffic is encrypted and authenticated (crypto.key_file), 0 when not.', ['crypto.encrypted']),
  one('afcluster_auth_failures_total', 'counter', 'Datagrams dropped because they failed authentication (another key, or forged).', ['crypto.droppedAuth']),
  {
    name: 'afcluster_crypto_dropped_total', type: 'counter', help: `Datagrams dropped before the driver, by reason (${CRYPTO_DROPS.join(', ')}).`,
    from: CRYPTO_DROPS.map(cryptoKey),
    samples: (s) => CRYPTO_DROPS.flatMap((r): [Record<string, string>, number][] => { const v = num(s, [cryptoKey(r)]); return v === undefined ? [] : [[{ reason: r }, v]]; }),
  },
  one('afcluster_bridge_sockets', 'gauge', 'Cluster sockets of local processes open on this node.', ['bridge.sockets']),
  one('afcluster_bridge_queue_events', 'gauge', 'Events queued in the daemon for all local sockets.', ['bridge.queueDepth']),
  one('afcluster_bridge_queue_events_max', 'gauge', 'Events queued for the most behind local socket.', ['bridge.queueDepthMax']),
  one('afcluster_bridge_queue_bytes', 'gauge', 'Bytes queued in the daemon for all local sockets.', ['bridge.queueBytes']),
  one('afcluster_groups', 'gauge', 'Groups this node knows (with members anywhere).', ['groups.groups']),
  one('afcluster_evictions_total', 'counter', 'Sockets removed from their group because their receive queue overflowed (ENOBUFS).', ['groups.overrun']),
  one('afcluster_procdowns_total', 'counter', 'Sockets removed because their process died or closed without CLOSE.', ['bridge.procdowns']),
  one('afcluster_quorate', 'gauge', '1 when this node is in the quorate component (or quorum is off), else 0.', ['quorum.quorate']),
  one('afcluster_quorum_votes', 'gauge', 'Votes present in the current configuration.', ['quorum.votes']),
  one('afcluster_quorum_expected_votes', 'gauge', 'Expected votes (the whole cluster).', ['quorum.expected']),
  one('afcluster_quorum_needed_votes', 'gauge', 'Votes needed to be quorate.', ['quorum.quorum']),
  {
    name: 'afcluster_reloads_total', type: 'counter', help: 'Reloads (SIGHUP) since start, by result: ok, or failed (the file was refused; nothing changed).',
    from: ['daemon.reloads', 'daemon.reloadFailures'],
    samples: (s) => [[{ result: 'ok' }, num(s, ['daemon.reloads']) ?? 0], [{ result: 'failed' }, num(s, ['daemon.reloadFailures']) ?? 0]],
  },
  one('afcluster_process_resident_memory_bytes', 'gauge', "The daemon's resident memory.", ['process.rss']),
  one('afcluster_process_heap_used_bytes', 'gauge', "The daemon's JavaScript heap in use.", ['process.heapUsed']),
];

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** The exposition text for one STATS snapshot. */
export function renderMetrics(stats: Stats): string {
  const out: string[] = [];
  for (const m of METRICS) {
    const samples = m.samples(stats);
    if (samples.length === 0) continue;
    out.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      out.push(`${m.name}${l ? `{${l}}` : ''} ${value}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** docs/METRICS.md's table. */
export function metricsDoc(): string {
  const rows = METRICS.map((m) => `| \`${m.name}\` | ${m.type} | ${m.help} | ${m.from.map((k) => `\`${k}\``).join(', ')} |`);
  return ['| name | type | meaning | from (STATS keys) |', '|---|---|---|---|', ...rows].join('\n');
}

/** Serves GET /metrics at `listen` until close(); `collect` is called per scrape. */
export function serveMetrics(listen: Endpoint, collect: () => Stats): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      let body: string;
      try {
        body = renderMetrics(collect());
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`cannot collect: ${(e as Error).message}\n`);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : body);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('afcluster: metrics are at /metrics\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(new Error(`metrics.listen = "${formatEndpoint(listen)}": cannot listen: ${e.code === 'EADDRINUSE' ? 'address in use' : e.code === 'EADDRNOTAVAIL' ? 'no local interface has this address' : e.message}`));
    });
    server.listen(listen.port, listen.host, () => {
      server.removeAllListeners('error');
      server.on('error', () => undefined);
      resolve(server);
    });
  });
}
