// The AF bridge daemon of one node: the driver from the registry bound to UDP by the runtime,
// the GroupService as the driver's upcalls, and the bridge socket in front of it
// (docs/ARCHITECTURE.md, "Layers and data flow": process -> bridge -> groups -> driver -> transport).
import type { Logger } from 'pino';
import type { NodeConfig } from '../config/types.ts';
import { planReload, type ReloadPlan } from '../config/reload.ts';
import type { DriverRegistry } from '../driver/registry.ts';
import type { Configuration, DriverEntry, LogLevel, MessageBytes, Order } from '../driver/types.ts';
import { ClusterError } from '../api/errors.ts';
import { driverMessageSizeMax, GroupService } from '../groups/service.ts';
import { EmbeddedSocket } from '../groups/embedded.ts';
import { WritableSignal } from '../api/queue.ts';
import { quorumOptions } from '../quorum/quorum.ts';
import { startRuntime } from '../runtime/index.ts';
import { BridgeServer } from './bridge.ts';
import { AccessPolicy } from './access.ts';
import type { StatValue } from './codec.ts';
import { startMemoryGovernor, type MemoryGovernor } from './memory.ts';
import { loadNative } from '../native/index.ts';
import { defaultUdpSockets } from '../transport/udp.ts';
import { leaseCounters, setReleaser } from '../wire/lease.ts';

export interface DaemonOptions {
  readonly config: NodeConfig;
  readonly registry: DriverRegistry;
  readonly logger: Logger;
  /** How often to look for dead client processes (default 1000 ms). */
  readonly procCheckMs?: number;
  /** Collect dead buffers when they have piled up (core/af/memory.ts): on for the daemon
   *  process (one per process), off where several daemons share one (tests). */
  readonly memoryGovernor?: boolean;
}

export interface Daemon {
  readonly bridge: BridgeServer;
  readonly groups: GroupService;
  /** A socket of the daemon's own (its pid, the given port: 0 and below the bridge's first, 1,
   *  so no client's member identity can be the same), for services the daemon runs itself. */
  socket(port: number): EmbeddedSocket;
  /** Resolves when the node has formed or joined its first ring (its first regular configuration). */
  readonly ready: Promise<void>;
  /** The config the daemon runs with: the file it started from, with what reloads applied. */
  readonly config: NodeConfig;
  /** Applies what a reload may change (core/config/reload.ts) from the file's new config; never
   *  throws. `refused`: keys it could not apply, and why. */
  reload(next: NodeConfig): ReloadResult;
  /** Close the bridge socket, leave the ring cleanly, stop the transport. */
  stop(): Promise<void>;
}

export interface ReloadResult extends ReloadPlan {
  readonly refused: readonly string[];
}

/** The largest message through the bridge: limits.message_size_max (larger than a datagram: in parts). */
export function bridgeMessageSizeMax(limits: NodeConfig['limits']): number {
  return limits.messageSizeMax;
}

type Runtime = Awaited<ReturnType<typeof startRuntime>>;

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const { config, registry, logger } = opts;
  const entry = registry.get(config.cluster.driver);
  const log = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => { logger[level](fields ?? {}, msg); };
  warnIfPlaintext(config, logger);
  const messageSizeMax = bridgeMessageSizeMax(config.limits);
  const failureDetectionMs = failureDetection(entry, config);
  // The service needs the driver's multicast and the runtime needs the service: tie the knot late.
  const late: { runtime?: Runtime; bridge?: BridgeServer } = {};
  const writable = new WritableSignal();
  // The limits and the node votes the bridge and the groups read at run time: objects of ours,
  // so a reload can change the values it may (core/config/reload.ts).
  const limits = { ...config.limits };
  const groupLimits = { ...config.limits, messageSizeMax };
  let votes = quorumOptions(config).votes;
  // [access]: the lock service's group defaults to root and this daemon's own group.
  const access = new AccessPolicy(config.access.groups, process.getgid?.() ?? 0);
  const groups = new GroupService({
    nodeId: config.node.id, limits: groupLimits, guarantees: entry.guarantees,
    driverName: entry.name, log: (level, msg, fields) => log(level, msg, { ...fields, layer: 'groups' }),
    multicast: (message: MessageBytes, order: Order) => {
      if (!late.runtime) throw new ClusterError('EAGAIN', 'the driver is starting');
      late.runtime.multicast(message, order);
    },
    // The driver's writable() upcall: sockets answered EAGAIN get a WRITABLE event and resend.
    onWritable: () => { late.bridge?.writable(); writable.notify(); },
    quorum: { ...quorumOptions(config), get votes() { return votes; } },
    now: () => performance.now(),
  });
  let firstRing!: () => void;
  const ready = new Promise<void>((resolve) => { firstRing = resolve; });
  // Started before the driver: glibc's thresholds (mallocTune) then hold for what the driver's
  // start allocates too, and an idle daemon stays at 58-63 MB, not 77-92 (docs/BENCH.md). Told
  // of each delivery, so that an idle daemon's governor may sample slowly and still see a load
  // from its first messages.
  const governor: MemoryGovernor | undefined = opts.memoryGovernor ? startMemoryGovernor() : undefined;
  // Frames go back as soon as their holders let go (core/wire/lease.ts), not at V8's next full
  // collection: in the daemon's own process (one per process, as the governor), over the native
  // helper's UDP sockets, whose datagrams have memory of their own. AFCLUSTER_RELEASE=off in the
  // environment leaves them to V8 (to compare).
  const native = opts.memoryGovernor && defaultUdpSockets() === 'native' && process.env.AFCLUSTER_RELEASE !== 'off' ? loadNative() : undefined;
  if (native) setReleaser((memory) => { native.release(memory); });
  const upcalls = {
    deliver: (sender: number, payload: Uint8Array, order: Order) => { governor?.activity(); groups.deliver(sender, payload, order); },
    deliverParts: (sender: number, parts: readonly Uint8Array[], order: Order) => { governor?.activity(); groups.deliverParts(sender, parts, order); },
    deliverAt: (sender: number, frame: Uint8Array, start: number, end: number, order: Order) => {
      governor?.activity();
      groups.deliverAt(sender, frame, start, end, order);
    },
    configuration: (conf: Configuration) => { groups.configuration(conf); if (conf.kind === 'regular') firstRing(); },
    writable: () => groups.writable(),
  };
  // The driver carries the groups header too: it must take a full-size message plus that.
  const runtimeConfig: NodeConfig = { ...config, limits: { ...config.limits, messageSizeMax: driverMessageSizeMax(config.limits) } };
  let rt: Runtime;
  try {
    rt = await startRuntime({ config: runtimeConfig, registry, upcalls, log: (level, msg, fields) => log(level, msg, { ...fields, layer: 'driver' }) });
  } catch (e) {
    governor?.stop();
    throw e;
  }
  late.runtime = rt;
  groups.writable(); // control messages queued while the driver was starting
  let bridge: BridgeServer;
  try {
    bridge = new BridgeServer({
      socket: {
        path: config.node.socket, dirMode: config.node.socketDirMode, mode: config.node.socketMode,
        owner: config.node.socketOwner, group: config.node.socketGroup,
      },
      nodeId: config.node.id, driver: entry.name, groups, limits,
      runtimeStats: () => ({ ...flattenStats(rt.stats()), ...memoryStats(native !== undefined), ...governor?.stats(), 'node.failureDetectionMs': failureDetectionMs }),
      messageSizeMax, multicastCopiesUpTo: rt.driver.multicastCopiesUpTo, multicastHolds: rt.driver.multicastHolds, procCheckMs: opts.procCheckMs, log: (level, msg, fields) => log(level, msg, { ...fields, layer: 'bridge' }),
      access,
    });
    late.bridge = bridge;
  } catch (e) {
    governor?.stop();
    await rt.stop({ leave: true });
    throw e;
  }
  logger.info({ socket: config.node.socket, driver: entry.name, listen: `${config.node.listen.host}:${config.node.listen.port}`, messageSizeMax }, 'daemon ready');
  let stopping: Promise<void> | undefined;
  let running = config;
  const reload = (next: NodeConfig): ReloadResult => {
    const plan = planReload(running, next);
    const refused: string[] = [];
    let nodes = running.cluster.nodes;
    if (plan.nodes) {
      try {
        rt.setNodes(plan.nodes);
        nodes = plan.nodes;
        // A new map only when ids or votes changed: quorum then re-reads the expected votes.
        const newVotes = quorumOptions(next).votes;
        if (newVotes.size !== votes.size || [...newVotes].some(([id, v]) => votes.get(id) !== v)) votes = newVotes;
      } catch (e) {
        refused.push(`cluster.nodes: ${(e as Error).message}`);
      }
    }
    if (plan.access) access.update(plan.access.groups);
    Object.assign(limits, plan.limits);
    Object.assign(groupLimits, plan.limits);
    running = {
      ...running, limits: { ...running.limits, ...plan.limits }, log: { ...running.log, level: plan.logLevel ?? running.log.level },
      cluster: { ...running.cluster, nodes }, access: plan.access ?? running.access,
    };
    return { ...plan, refused };
  };
  return {
    bridge, groups, ready, reload,
    get config() { return running; },
    socket: (port) => new EmbeddedSocket({
      groups, pid: process.pid, port, writable, eventQueueMax: config.limits.recvQueueMax,
      eventQueueBytesMax: config.limits.recvQueueBytesMax, onClose: () => undefined,
    }),
    stop: () => (stopping ??= (async () => {
      bridge.close();
      governor?.stop();
      await rt.stop({ leave: true });
      logger.info({ stats: bridge.stats() }, 'daemon stopped: left the ring');
    })()),
  };
}

/** How long a departure takes to be seen everywhere (DriverEntry.failureDetectionMs); a driver
 *  that does not say is assumed to take 10 s. */
export function failureDetection(entry: DriverEntry<unknown>, config: NodeConfig): number {
  const options = config.drivers[entry.name] ?? entry.optionsSchema.parse({});
  return entry.failureDetectionMs?.(options) ?? 10_000;
}

/** {driver: {sent: 1}} -> {'driver.sent': 1}; booleans as 0/1; anything else as text. */
export function flattenStats(obj: Record<string, unknown>, prefix = '', out: Record<string, StatValue> = {}, depth = 0): Record<string, StatValue> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'number' || typeof v === 'string') out[key] = v;
    else if (typeof v === 'boolean') out[key] = v ? 1 : 0;
    else if (typeof v === 'bigint') out[key] = Number(v);
    else if (v !== null && typeof v === 'object' && !Array.isArray(v) && depth < 4) flattenStats(v as Record<string, unknown>, key, out, depth + 1);
    else if (v !== undefined) out[key] = JSON.stringify(v);
  }
  return out;
}

function warnIfPlaintext(config: NodeConfig, logger: Logger): void {
  if (config.crypto.keyFile !== undefined) return;
  const msg = `CRYPTO IS OFF: ${config.file} has no [crypto] key_file, so cluster traffic is neither encrypted nor authenticated; anyone who can reach UDP ${config.node.listen.host}:${config.node.listen.port} can read and inject messages. Generate a key with "afcluster keygen" and set crypto.key_file.`;
  logger.warn({ crypto: 'off' }, msg);
  process.stderr.write(`\n*** ${msg}\n\n`);
}

/** The daemon's memory, in bytes, for STATS (`process.rss` is what the kernel charges it), and
 *  the buffers released as their holders let go (`releasing`: core/wire/lease.ts is on). */
function memoryStats(releasing: boolean): Record<string, number> {
  const m = process.memoryUsage();
  return {
    'process.rss': m.rss, 'process.heapTotal': m.heapTotal, 'process.heapUsed': m.heapUsed,
    'process.external': m.external, 'process.arrayBuffers': m.arrayBuffers,
    ...(releasing ? {
      'process.buffersReleased': leaseCounters.released, 'process.buffersReleasedBytes': leaseCounters.releasedBytes,
      'process.buffersUnbalanced': leaseCounters.unbalanced,
    } : {}),
  };
}
