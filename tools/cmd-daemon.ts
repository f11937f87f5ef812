// `afcluster daemon`: one node's AF bridge, until SIGTERM or SIGINT; then it leaves the ring.
// SIGHUP reloads the config file (what can change at run time: core/config/reload.ts) and never
// stops the daemon. Under systemd (Type=notify) it says READY=1 once the node is in a ring.
import type { Server } from 'node:http';
import type { Level, Logger } from 'pino';
import {
  CONFIG_ENV, DEFAULT_CONFIG, formatEndpoint, LOG_FORMATS, LOG_LEVELS, loadConfig, resolveConfig, type NodeConfig,
} from '../core/config/index.ts';
import { readKeyFile } from '../core/crypto/keyfile.ts';
import { builtinRegistry } from '../drivers/builtin.ts';
import type { DriverRegistry } from '../core/driver/registry.ts';
import { failureDetection, startDaemon, type Daemon } from '../core/af/daemon.ts';
import { DEFAULT_LOCK_GROUP, fenceDelayMs } from '../services/lock/lock.ts';
import { startLockReplica } from '../services/lock/replica.ts';
import type { Member } from '../core/api/types.ts';
import { runFence } from './fence.ts';
import { parseFlags, UsageError, type Command } from './command.ts';
import { createLogger, type LogFormat } from './log.ts';
import { sdNotify } from './sd-notify.ts';

const SECOND_SIGNAL_GRACE_MS = 2000;

/** The config file: --config, else $AFCLUSTER_CONFIG, else /etc/afcluster/afcluster.toml. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? (env[CONFIG_ENV] || DEFAULT_CONFIG);
}

/** Reads, validates and resolves a node's config; with `deep`, also reads its key file. */
export async function readConfig(path: string, registry: DriverRegistry, deep = false): Promise<NodeConfig> {
  const config = await resolveConfig(loadConfig(path, registry));
  if (deep && config.crypto.keyFile !== undefined) readKeyFile(config.crypto.keyFile);
  return config;
}

function summary(c: NodeConfig): string {
  const self = c.cluster.nodes.find((n) => n.id === c.node.id);
  const nodes = c.cluster.nodes.map((n) => `${n.id}${n.name ? ` (${n.name})` : ''} ${formatEndpoint(n.addr)}`).join(', ');
  return [
    `${c.file}: OK`,
    `  node ${c.node.id}${c.node.name ? ` (${c.node.name})` : ''}, listening on UDP ${formatEndpoint(c.node.listen)}${self ? '' : ' (not in cluster.nodes!)'}`,
    `  cluster "${c.cluster.name}", driver ${c.cluster.driver}, transport ${c.cluster.transport}, ${c.cluster.nodes.length} nodes: ${nodes}`,
    `  crypto: ${c.crypto.keyFile ? `on, key ${c.crypto.keyFile}` : 'OFF (no [crypto] key_file: traffic is neither encrypted nor authenticated)'}`,
    `  socket ${c.node.socket} (mode ${c.node.socketMode.toString(8)}), state in ${c.node.stateDir}`,
    `  metrics: ${c.metrics.listen ? `http://${formatEndpoint(c.metrics.listen)}/metrics` : 'off'}; log level ${c.log.level}, format ${c.log.format}`,
    `  access: ${c.access.groups.length ? c.access.groups.map((r) => r.name).join(', ') : 'no rules'}${c.access.groups.some((r) => r.name === DEFAULT_LOCK_GROUP) ? '' : `; ${DEFAULT_LOCK_GROUP} limited to root and the daemon's group`}`,
  ].join('\n');
}

/** Run a daemon with this registry until a signal (tests pass a registry with test drivers). */
export async function runDaemon(argv: string[], registry: DriverRegistry): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    config: { type: 'string', short: 'c' }, 'log-level': { type: 'string' }, 'log-format': { type: 'string' }, check: { type: 'boolean' },
  }, true);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"; give the config file as --config ${positionals[0]}`);
  const forcedLevel = values['log-level'] ?? (process.env.AFCLUSTER_LOG_LEVEL || undefined);
  if (forcedLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(forcedLevel)) {
    throw new UsageError(`--log-level ${forcedLevel}: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  const forcedFormat = values['log-format'];
  if (forcedFormat !== undefined && !(LOG_FORMATS as readonly string[]).includes(forcedFormat)) {
    throw new UsageError(`--log-format ${forcedFormat}: expected one of ${LOG_FORMATS.join(', ')}`);
  }
  const path = configPath(values.config);
  // SIGHUP's default action ends the process: take it before anything can take long (reading the
  // config resolves host names). Until the daemon runs, a reload has nothing to apply.
  const running: { daemon?: Daemon; logger?: Logger } = {};
  const counters = { reloads: 0, reloadFailures: 0 };
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(() => reload(path, registry, running, forcedLevel !== undefined, counters));
  });
  let config: NodeConfig;
  try {
    config = await readConfig(path, registry, values.check === true);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT' && values.config === undefined && (e as Error).message.includes(path)) {
      (e as Error).message += ` (the default: give --config FILE or set ${CONFIG_ENV}; docs/CONFIG.md has an example)`;
    }
    throw e;
  }
  if (values.check) {
    console.log(summary(config));
    return 0;
  }
  const logger = createLogger({
    level: (forcedLevel ?? config.log.level) as Level, format: (forcedFormat ?? config.log.format) as LogFormat, node: config.node.id,
  });
  running.logger = logger;
  // Handlers first: a signal during start-up still ends in a clean stop (socket removed, ring left).
  let signalled: string | undefined;
  let signalledAt = 0;
  let wake: (() => void) | undefined;
  const onSignal = (sig: string): void => {
    // A second signal forces the exit, unless it is the echo of the first: Ctrl-C under
    // `afcluster up` reaches the daemon from the terminal and then from `up` itself.
    if (signalled) {
      if (Date.now() - signalledAt > SECOND_SIGNAL_GRACE_MS) process.exit(1);
      return;
    }
    signalled = sig;
    signalledAt = Date.now();
    wake?.();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  const started = await startDaemon({ config, registry, logger, memoryGovernor: process.env.AFCLUSTER_MEMORY_GOVERNOR !== 'off' });
  running.daemon = started;
  // The lock service's table on this node (services/lock/replica.ts), as member port 0 of the daemon.
  const entry = registry.get(config.cluster.driver);
  const fenceCommand = config.quorum.fenceCommand;
  const replica = startLockReplica(() => started.socket(0), {
    group: DEFAULT_LOCK_GROUP, order: entry.guarantees.agreed ? 'agreed' : 'fifo',
    fenceDelayMs: fenceDelayMs(failureDetection(entry, config)),
    log: (msg, fields) => logger.info({ ...fields, layer: 'locks' }, msg),
    ...(fenceCommand ? { fence: (m: Member) => runFence(fenceCommand, m.nodeId, (msg, f) => logger.warn({ ...f, layer: 'locks' }, msg)) } : {}),
  });
  let metrics: Server | undefined;
  if (config.metrics.listen) {
    try {
      const { serveMetrics } = await import('./metrics.ts'); // node:http only where metrics are on
      metrics = await serveMetrics(config.metrics.listen, () => ({
        ...started.bridge.allStats(), 'daemon.reloads': counters.reloads, 'daemon.reloadFailures': counters.reloadFailures,
      }));
      logger.info({ layer: 'metrics', url: `http://${formatEndpoint(config.metrics.listen)}/metrics` }, 'metrics endpoint listening');
    } catch (e) {
      logger.error({ layer: 'metrics' }, `${config.file}: ${(e as Error).message}; running without metrics`);
    }
  }
  void started.ready.then(async () => {
    const node = started.groups.localNode();
    logger.info({ members: node.members }, 'in a ring: ready');
    const why = await sdNotify(`READY=1\nSTATUS=in a ring with nodes ${node.members.join(',')}`);
    if (why) logger.warn({ layer: 'systemd' }, why);
  });
  if (!signalled) await new Promise<void>((resolve) => { wake = resolve; });
  logger.info({ signal: signalled }, 'stopping');
  void sdNotify('STOPPING=1');
  metrics?.close();
  await replica.stop();
  await started.stop();
  logger.flush();
  process.exit(0); // whatever handle a library left open, the daemon is done
}

/** SIGHUP: read the file again and apply what may change at run time. Never throws. */
async function reload(path: string, registry: DriverRegistry, running: { daemon?: Daemon; logger?: Logger }, levelForced: boolean,
  counters: { reloads: number; reloadFailures: number }): Promise<void> {
  const { daemon, logger } = running;
  if (!daemon || !logger) {
    const msg = 'SIGHUP during start-up: ignored; send it again once the daemon is ready';
    if (logger) logger.warn({ layer: 'reload' }, msg);
    else process.stderr.write(`afcluster daemon: ${msg}\n`);
    return;
  }
  await sdNotify('RELOADING=1');
  try {
    let next: NodeConfig;
    try {
      next = await readConfig(path, registry);
    } catch (e) {
      counters.reloadFailures++;
      logger.error({ layer: 'reload', errors: (e as Error).message.split('\n') }, `reload: ${path} refused; still running with the previous config`);
      return;
    }
    const result = daemon.reload(next);
    counters.reloads++;
    if (result.logLevel && !levelForced) logger.level = result.logLevel;
    if (result.logLevel && levelForced) logger.warn({ layer: 'reload' }, 'reload: log.level changed, but --log-level or AFCLUSTER_LOG_LEVEL decides the level');
    const applied = result.apply.filter((k) => !result.refused.some((r) => r.startsWith(`${k}:`)) && !(k === 'log.level' && levelForced));
    logger.info({ layer: 'reload', applied, ...(result.nodes ? { nodes: daemon.config.cluster.nodes.map((n) => n.id) } : {}) },
      applied.length ? `reload: applied ${applied.join(', ')}` : 'reload: nothing to change at run time');
    for (const r of result.refused) logger.warn({ layer: 'reload' }, `reload: ${r}`);
    if (result.restart.length) {
      logger.warn({ layer: 'reload', restartNeeded: result.restart },
        `reload: ${result.restart.join(', ')} changed but apply only at a restart; still running with the previous values`);
    }
  } catch (e) {
    counters.reloadFailures++;
    logger.error({ layer: 'reload', error: String(e) }, 'reload failed; still running with the previous config');
  } finally {
    await sdNotify('READY=1');
  }
}

export const command: Command = {
  name: 'daemon',
  summary: 'run one node: the driver over UDP and the bridge socket local processes use',
  help: `usage: afcluster daemon [--config FILE] [--check] [--log-level LEVEL] [--log-format FORMAT]

Runs one node of the cluster: reads and validates FILE (TOML, every key in docs/CONFIG.md),
resolves host names in its addresses, starts the configured driver (cluster.driver) over UDP,
and opens the bridge socket (node.socket) through which local processes open cluster sockets.

FILE is --config, else $${CONFIG_ENV}, else ${DEFAULT_CONFIG}.

  --check    validate FILE (and read its key file), print what it configures, exit 0;
             or print every error (file, key, value, what is expected) and exit 1

Signals: SIGTERM or SIGINT: leave the ring cleanly, remove the socket, exit 0.
SIGHUP: read FILE again and apply what may change at run time (log.level, some limits, and,
with totem, cluster.nodes: nodes added or removed without restarting the others); every other
change is logged as needing a restart. A refused file changes nothing. The daemon never stops
on SIGHUP.
Under systemd (Type=notify, contrib/systemd/afcluster.service) it sends READY=1 once the node
has formed or joined its first ring.
Logs: JSON lines on standard output, or readable lines on a terminal (log.format).
Metrics: [metrics] listen = "127.0.0.1:9405" serves Prometheus metrics (docs/METRICS.md).

Security: a client's pid, user and groups are the kernel's word, checked at HELLO (its socket
file's owner and /proc); a HELLO claiming a process that does not hold the client's socket is
refused EACCES. [[access.group]] rules in FILE say which users ("alice", "1000") and groups
("@wheel") may join a group, send to it and receive from it (docs/CONFIG.md, "Who may use which
group"); refusals are answered EACCES and counted as bridge.accessDenied. Unless a rule names
it, the lock service's group ${DEFAULT_LOCK_GROUP} is limited to root and the daemon's own group.
Half-sent large messages are bounded per socket, per user and per node (docs/PROTOCOL.md).

options:
  -c, --config FILE     the node's config file (default above)
  --check               validate and exit
  --log-level LEVEL     ${LOG_LEVELS.join(', ')} (or $AFCLUSTER_LOG_LEVEL; default: log.level, info)
  --log-format FORMAT   auto (pretty on a terminal, else json), json, pretty (default: log.format)`,
  run: (argv) => runDaemon(argv, builtinRegistry()),
};
