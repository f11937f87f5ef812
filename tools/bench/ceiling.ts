// The raw UDP ceiling: N processes on 127.0.0.1..N exchanging the same bytes the drivers carry
// (messages packed into datagrams of the drivers' size), fan-out to every other node, with no
// protocol. What arrives per second is the most any driver could deliver on this machine.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, request, spawnWorker, stop } from './proc.ts';
import type { ThroughputRow } from './results.ts';

export type CeilingRequest =
  | { type: 'init'; host: string }
  | { type: 'run'; peers: { host: string; port: number }[]; size: number; datagramBytes: number; warmupMs: number; seconds: number }
  | { type: 'exit' };

export interface CeilingResult {
  type: 'result';
  bytesIn: number;
  datagramsIn: number;
  datagramsOut: number;
  elapsedS: number;
}

/** UDP payload of one datagram at a 1500-byte path MTU (IPv4 20 + UDP 8 bytes of headers). */
export const UDP_PAYLOAD_AT_MTU_1500 = 1472;

/**
 * The datagrams that carry one "unit" of a message stream (pure): for messages that fit, one
 * datagram packed with as many whole messages as fit; for larger ones, the message's fragments.
 */
export function unitDatagrams(size: number, datagramBytes: number): number[] {
  if (size <= datagramBytes) return [Math.floor(datagramBytes / size) * size];
  const out: number[] = [];
  for (let left = size; left > 0; left -= datagramBytes) out.push(Math.min(left, datagramBytes));
  return out;
}

export function hostOf(node: number): string {
  return `127.0.0.${node}`;
}

const WORKER = fileURLToPath(new URL('./ceiling-worker.ts', import.meta.url));

export class CeilingCluster {
  private constructor(private readonly workers: ChildProcess[], private readonly ports: number[]) {}

  /** Starts one process per node, each bound to 127.0.0.i on an ephemeral port. */
  static async start(nodes: number): Promise<CeilingCluster> {
    const workers = Array.from({ length: nodes }, () => spawnWorker(WORKER));
    try {
      const ready = await Promise.all(workers.map((w, i) => request<{ type: 'ready'; port: number }>(w, { type: 'init', host: hostOf(i + 1) }, 30_000)));
      return new CeilingCluster(workers, ready.map((r) => r.port));
    } catch (e) {
      await Promise.all(workers.map((w) => stop(w)));
      throw e;
    }
  }

  get pids(): number[] {
    return this.workers.map((w) => w.pid ?? 0);
  }

  /** All nodes send at once for warm-up + seconds; returns per-node results. */
  async measure(size: number, opts: { seconds: number; warmupMs: number; datagramBytes: number }): Promise<CeilingResult[]> {
    const all = this.ports.map((port, i) => ({ host: hostOf(i + 1), port }));
    const timeoutMs = opts.warmupMs + opts.seconds * 1000 + 30_000;
    let cpuStart = this.cpuSeconds();
    const t = setTimeout(() => { cpuStart = this.cpuSeconds(); }, opts.warmupMs);
    const results = await Promise.all(this.workers.map((w, i) => request<CeilingResult>(w, {
      type: 'run', peers: all.filter((_, j) => j !== i), size, datagramBytes: opts.datagramBytes, warmupMs: opts.warmupMs, seconds: opts.seconds,
    } satisfies CeilingRequest, timeoutMs)));
    clearTimeout(t);
    this.lastCpuSeconds = this.cpuSeconds() - cpuStart;
    return results;
  }

  /** CPU seconds all workers used in the last measure() window (approximately: from the end of warm-up). */
  lastCpuSeconds = 0;

  private cpuSeconds(): number {
    return this.workers.reduce((a, w) => a + (w.pid ? cpuSeconds(w.pid) ?? 0 : 0), 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => stop(w)));
  }
}

/** Messages carried by `datagrams` datagrams of the stream for this size (pure). */
export function messagesSent(size: number, datagrams: number, datagramBytes = UDP_PAYLOAD_AT_MTU_1500): number {
  const unit = unitDatagrams(size, datagramBytes);
  const perUnit = unit.reduce((a, b) => a + b, 0) / size;
  return (datagrams / unit.length) * perUnit;
}

/**
 * A ceiling row (pure). A message counts as delivered at every node once all N-1 other nodes
 * received it, so messages delivered everywhere per second = messages received in total / (N-1)
 * / seconds. Drivers' rows count the same thing at each node (their self-delivery included).
 */
export function ceilingRow(size: number, results: readonly CeilingResult[], opts: { crypto: 'on' | 'off'; datagramBytes: number; cpuSeconds?: number }): ThroughputRow {
  const n = results.length;
  const seconds = results.reduce((a, r) => a + r.elapsedS, 0) / n;
  const msgsIn = results.map((r) => r.bytesIn / size);
  const perNodeTp = msgsIn.map((m, i) => m / results[i].elapsedS);
  const tp = perNodeTp.reduce((a, b) => a + b, 0) / Math.max(1, n - 1);
  const writes = Math.round(results.reduce((a, r) => a + messagesSent(size, r.datagramsOut / Math.max(1, n - 1), opts.datagramBytes), 0));
  return {
    driver: 'udp', crypto: opts.crypto, accelerated: '-', nodes: n, size, writes, seconds, tpPerSec: tp,
    tpMinPerSec: (Math.min(...perNodeTp) * n) / Math.max(1, n - 1),
    mbPerSec: (tp * size) / 1e6, counters: {},
    cpuUsPerMessage: opts.cpuSeconds !== undefined && tp > 0 ? { daemons: (opts.cpuSeconds * 1e6) / (tp * seconds), clients: 0 } : undefined,
  };
}
