// `afcluster daemon`: one node's AF bridge, until SIGTERM or SIGINT; then it leaves the ring.
import { pino, type Level } from 'pino';
import { loadConfig } from '../core/config/index.ts';
import { builtinRegistry } from '../drivers/builtin.ts';
import type { DriverRegistry } from '../core/driver/registry.ts';
import { failureDetection, startDaemon } from '../core/af/daemon.ts';
import { DEFAULT_LOCK_GROUP, fenceDelayMs } from '../services/lock/lock.ts';
import { startLockReplica } from '../services/lock/replica.ts';
import type { Member } from '../core/api/types.ts';
import { runFence } from './fence.ts';
import { parseFlags, UsageError, type Command } from './command.ts';

const SECOND_SIGNAL_GRACE_MS = 2000;
const LEVELS: readonly Level[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** Run a daemon with this registry until a signal (tests pass a registry with test drivers). */
export async function runDaemon(argv: string[], registry: DriverRegistry): Promise<number> {
  const { values } = parseFlags(argv, { config: { type: 'string', short: 'c' }, 'log-level': { type: 'string' } });
  if (!values.config) throw new UsageError('--config FILE is required');
  const level = (values['log-level'] ?? process.env.AFCLUSTER_LOG_LEVEL ?? 'info') as Level;
  if (!LEVELS.includes(level)) throw new UsageError(`--log-level ${level}: expected one of ${LEVELS.join(', ')}`);
  const config = loadConfig(values.config, registry);
  const logger = pino({ level, base: { node: config.node.id } });
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
  const daemon = await startDaemon({ config, registry, logger });
  // The lock service's table on this node (services/lock/replica.ts), as member port 0 of the daemon.
  const entry = registry.get(config.cluster.driver);
  const fenceCommand = config.quorum.fenceCommand;
  const replica = startLockReplica(() => daemon.socket(0), {
    group: DEFAULT_LOCK_GROUP, order: entry.guarantees.agreed ? 'agreed' : 'fifo',
    fenceDelayMs: fenceDelayMs(failureDetection(entry, config)),
    log: (msg, fields) => logger.info({ ...fields, layer: 'locks' }, msg),
    ...(fenceCommand ? { fence: (m: Member) => runFence(fenceCommand, m.nodeId, (msg, f) => logger.warn({ ...f, layer: 'locks' }, msg)) } : {}),
  });
  if (!signalled) await new Promise<void>((resolve) => { wake = resolve; });
  logger.info({ signal: signalled }, 'stopping');
  await replica.stop();
  await daemon.stop();
  logger.flush();
  process.exit(0); // whatever handle a library left open, the daemon is done
}

export const command: Command = {
  name: 'daemon',
  summary: 'run one node: the driver over UDP and the bridge socket local processes use',
  help: `usage: afcluster daemon --config FILE [--log-level LEVEL]

Runs one node of the cluster: reads and validates FILE (TOML; see README), starts the
configured driver (cluster.driver) over UDP, and opens the bridge socket (node.socket; its
directory mode 0750 and socket mode 0660 by default, owner and group from node.socket_owner and
node.socket_group) through which local processes open cluster sockets (docs/PROTOCOL.md).
Runs until SIGTERM or SIGINT, then leaves the ring cleanly and removes its socket.
Logs are JSON lines (pino) on standard output.

options:
  -c, --config FILE     the node's config file
  --log-level LEVEL     trace, debug, info (default), warn, error, fatal
                        (or the AFCLUSTER_LOG_LEVEL environment variable)`,
  run: (argv) => runDaemon(argv, builtinRegistry()),
};
