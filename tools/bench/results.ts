// What a bench run measures, as plain data (this is also the --json file's shape).
import type { ClientKind } from './cluster-clients.ts';
import type { ProfileSummary } from './profile.ts';

/** The driver counters shown next to each throughput row (from the daemon's stats). */
export interface DriverCounters {
  readonly retransmissions?: number;
  readonly tokenRotationsPerSec?: number;
  readonly messagesPerDatagram?: number;
  /** Tokens re-sent (totem), summed over the nodes. */
  readonly tokenRetransmissions?: number;
  /** Configurations installed (totem rings, cman configurations), summed over the nodes. */
  readonly configurations?: number;
}

/** Who sends: every node's client (the bench's default work), or node 1's alone (--reference). */
export type Senders = 'all' | 'one';

export interface ThroughputRow {
  /** Driver name, 'udp' for the raw UDP ceiling, or 'corosync' for the reference. */
  readonly driver: string;
  readonly crypto: 'on' | 'off';
  readonly accelerated: 'on' | 'off' | '-';
  readonly nodes: number;
  /** Bytes per write (application message size). */
  readonly size: number;
  /** The size asked for, when the daemon could not carry it and `size` is its maximum instead. */
  readonly requestedSize?: number;
  /** Messages written by all senders during the window. */
  readonly writes: number;
  readonly seconds: number;
  /** Messages delivered per second at every node (mean over the nodes' receiving clients). */
  readonly tpPerSec: number;
  /** The slowest node's deliveries per second (equal to tpPerSec when all nodes keep up). */
  readonly tpMinPerSec: number;
  /** tpPerSec x size / 10^6, as evsbench printed it. */
  readonly mbPerSec: number;
  /** This row's throughput over the raw UDP ceiling's at the same size (undefined if none). */
  readonly ratio?: number;
  readonly counters: DriverCounters;
  /**
   * CPU spent per message delivered at every node, in microseconds, by all daemons and by all
   * clients together during the window: the cost that bounds throughput when the cores are busy.
   */
  readonly cpuUsPerMessage?: { readonly daemons: number; readonly clients: number };
  /** Absent = 'all'. */
  readonly senders?: Senders;
  /** --rounds N (N > 1): the windows this row's rates are over (mergeThroughput), each taken in
   *  turn with the reference's; absent: one window. */
  readonly rounds?: number;
  /** With rounds: each window's tpPerSec, in the order taken (NaN for a skipped one). */
  readonly windowsTpPerSec?: readonly number[];
  /** The same work on the reference (--reference), measured right after this row. */
  readonly reference?: ThroughputRow;
  /** Why this (reference) row was not measured; its figures are then NaN. */
  readonly skipped?: string;
}

export interface LossRow extends ThroughputRow {
  /** Drop probability per datagram at its receiver. */
  readonly loss: number;
  /** This row's throughput over the same configuration's and size's at loss 0, when measured. */
  readonly ofLossless?: number;
}

export interface LatencyRow {
  readonly driver: string;
  readonly crypto: 'on' | 'off';
  readonly accelerated: 'on' | 'off' | '-';
  readonly nodes: number;
  readonly size: number;
  /** 'idle', or the background load in messages per second (all other nodes together). */
  readonly load: 'idle' | number;
  /** Paced idle rows (--latency-paced): a round trip started every this many ms; absent: back to back. */
  readonly intervalMs?: number;
  readonly samples: number;
  readonly medianUs: number;
  readonly p99Us: number;
  /** Idle rows: CPU of all daemons and of all clients per round trip, in microseconds. */
  readonly cpuUsPerRoundTrip?: { readonly daemons: number; readonly clients: number };
  /** --rounds N (N > 1): the windows the samples come from, each taken in turn with the
   *  reference's; absent: one window. */
  readonly rounds?: number;
  /** With rounds: each window's own p99, in the order taken (NaN for a skipped one). */
  readonly windowsP99Us?: readonly number[];
  /** The same work on the reference (--reference), measured right after this row (with rounds,
   *  in turns with it, window by window). */
  readonly reference?: LatencyRow;
  /** Why this (reference) row was not measured; its figures are then NaN. */
  readonly skipped?: string;
}

export interface SimScalingRow {
  readonly driver: string;
  /** udpu: unicast fan-out (N-1 copies per send); multicast: one copy per send. */
  readonly transport: 'udpu' | 'multicast';
  readonly nodes: number;
  readonly size: number;
  /** Drop probability per datagram copy (bench --scaling --loss); absent = none. */
  readonly loss?: number;
  /** Messages delivered per virtual second at every node. */
  readonly tpPerSec: number;
  readonly mbPerSec: number;
  /** Datagrams put on the (modelled) wire per message delivered at every node. */
  readonly datagramsPerMessage: number;
  /** Median virtual-time latency from send to delivery at the sender, when measured. */
  readonly latencyMedianUs?: number;
}

export interface MemoryRow {
  readonly driver: string;
  readonly crypto: 'on' | 'off';
  readonly accelerated: 'on' | 'off' | '-';
  readonly nodes: number;
  /** Peak RSS (VmHWM) of each daemon, in bytes, node 1 first. */
  readonly peakRssBytes: readonly number[];
  /** The reference's daemons over the same work (--reference), read at the same moment. */
  readonly reference?: MemoryRow;
  /** Why this (reference) row was not measured; peakRssBytes is then empty. */
  readonly skipped?: string;
  /** Node 1's peak RSS (VmHWM) so far after each size's rows, in the order measured: the peak of
   *  the load of that size and those measured before it (absent in reports older than it). */
  readonly bySize?: readonly PeakAfterSize[];
}

export interface PeakAfterSize {
  readonly size: number;
  readonly node1Bytes: number;
  /** The reference's node 1 at the same moment (--reference; absent when it was not running). */
  readonly referenceNode1Bytes?: number;
}

export interface BenchReport {
  readonly startedAt: string;
  readonly host: { readonly cpus: number; readonly cpuModel: string; readonly node: string; readonly platform: string };
  readonly command: string;
  readonly throughput: ThroughputRow[];
  readonly latency: LatencyRow[];
  /** Throughput and latency by node count on real daemons (--scaling). */
  readonly scaling: { throughput: ThroughputRow[]; latency: LatencyRow[] };
  readonly simScaling: SimScalingRow[];
  /** --loss: one sender's throughput with the cluster's datagrams dropped at random (tools/bench/loss.ts). */
  readonly loss?: LossRow[];
  readonly memory: MemoryRow[];
  /** 1-minute load average when the run started and ended (other work on the machine). */
  readonly loadAverage: { start: number; end: number };
  /** Seconds of round trips before a latency row's samples counted (absent in reports older than the option: 0.3). */
  readonly latencyWarmupS?: number;
  /** With --profile: where node 1's daemon spent its CPU, per configuration. */
  readonly profiles: { config: string; file: string; summary: ProfileSummary | undefined }[];
  /** With --reference: what ran (e.g. "corosync 3.1.7, knet, in network namespaces"), or why it could not. */
  reference?: { readonly name: string; readonly version?: string; readonly skipped?: string };
  /** The afcluster rows' client library (absent in reports older than --client: the TypeScript one). */
  readonly client?: ClientKind;
  readonly notes: string[];
}
