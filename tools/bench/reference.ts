// The reference implementation beside one bench configuration (--reference corosync): started
// with the configuration's crypto setting, it measures the same work right after each afcluster
// measurement, so every afcluster row carries the reference's row from the same minute. When the
// reference cannot run (not installed, not root, it failed) its rows are skipped rows that say
// why, and afcluster's rows are measured all the same.
import type { OnOff, ReferenceName } from './options.ts';
import { CorosyncCluster, corosyncSupport } from './corosync.ts';
import { idleRowName, measureLatency, measureThroughput, windowLabel, type LatencyPlan, type LatencyWindow, type RunLabels } from './driver-bench.ts';
import type { Progress } from './progress.ts';
import type { BenchReport, LatencyRow, MemoryRow, Senders, ThroughputRow } from './results.ts';

/** What --reference will run, or why it cannot (checked once per bench run). */
export function referenceInfo(name: ReferenceName): NonNullable<BenchReport['reference']> {
  const s = corosyncSupport();
  return s.ok
    ? { name, version: s.version }
    : { name, skipped: `${s.reason}; the ${name} rows are skipped, afcluster's are measured` };
}

export function referenceLabels(name: string, crypto: OnOff): RunLabels {
  // CPG's agreed order is what the bench asks of totem; corosync has one ordering for all sends.
  return { driver: name, crypto, accelerated: '-', order: 'agreed' };
}

/** A throughput row that was not measured, and why (pure). */
export function skippedThroughput(l: RunLabels, nodes: number, size: number, senders: Senders, reason: string): ThroughputRow {
  return {
    driver: l.driver, crypto: l.crypto, accelerated: l.accelerated, nodes, size, writes: NaN, seconds: NaN, tpPerSec: NaN,
    tpMinPerSec: NaN, mbPerSec: NaN, counters: {}, ...(senders === 'one' ? { senders } : {}), skipped: reason,
  };
}

export function skippedLatency(l: RunLabels, nodes: number, p: LatencyPlan, reason: string): LatencyRow {
  return {
    driver: l.driver, crypto: l.crypto, accelerated: l.accelerated, nodes, size: p.size,
    load: p.loadPerSec > 0 ? p.loadPerSec : 'idle', ...(p.intervalMs ? { intervalMs: p.intervalMs } : {}), samples: 0, medianUs: NaN, p99Us: NaN, skipped: reason,
  };
}

export interface ReferenceSpec {
  readonly info: NonNullable<BenchReport['reference']>;
  readonly nodes: number;
  readonly crypto: OnOff;
  /** The reference's link MTU: the afcluster daemons' network MTU, so both run on the same size of packet. */
  readonly linkMtu: number;
  readonly keep: boolean;
  readonly progress: Progress;
  readonly note: (s: string) => void;
}

export class ReferenceRun {
  private constructor(private readonly s: ReferenceSpec, private cluster: CorosyncCluster | undefined, private skipped: string | undefined) {}

  static async start(s: ReferenceSpec): Promise<ReferenceRun> {
    s.progress.step(`${s.info.name} crypto ${s.crypto}: starting ${s.nodes} nodes in network namespaces`);
    try {
      if (s.info.skipped) return new ReferenceRun(s, undefined, s.info.skipped);
      const cluster = await CorosyncCluster.start({ nodes: s.nodes, crypto: s.crypto === 'on', linkMtu: s.linkMtu, keep: s.keep });
      return new ReferenceRun(s, cluster, undefined);
    } catch (e) {
      const why = `${s.info.name} did not start: ${(e as Error).message}`;
      s.note(why);
      return new ReferenceRun(s, undefined, why);
    } finally {
      s.progress.tick();
    }
  }

  get labels(): RunLabels {
    return referenceLabels(this.s.info.name, this.s.crypto);
  }

  /** The rows of a reference that failed mid-run are skipped from then on. */
  private async measure<T extends { errors: string[] }>(what: string, f: (c: CorosyncCluster) => Promise<T>, skipped: (why: string) => T): Promise<T> {
    this.s.progress.step(`${this.s.info.name}: ${what}`);
    try {
      if (!this.cluster) return skipped(this.skipped ?? 'not running');
      const r = await f(this.cluster);
      for (const e of new Set(r.errors)) this.s.note(`${this.s.info.name} ${what}: ${e}`);
      return r;
    } catch (e) {
      this.skipped = `failed during ${what}: ${(e as Error).message}`;
      this.s.note(`${this.s.info.name} ${this.skipped}`);
      await this.close();
      return skipped(this.skipped);
    } finally {
      this.s.progress.tick();
    }
  }

  /** One throughput window (`round` of `rounds`, --rounds). */
  async throughput(size: number, seconds: number, senders: Senders, round = 1, rounds = 1): Promise<ThroughputRow> {
    const r = await this.measure(`throughput ${size} B, ${senders === 'one' ? 'one sender' : 'every node sends'}${windowLabel(round, rounds)}`,
      (c) => measureThroughput(c, this.labels, size, seconds, senders),
      (why) => ({ row: skippedThroughput(this.labels, this.s.nodes, size, senders, why), errors: [] }));
    return r.row;
  }

  /** One latency window (`round` of `rounds`, --rounds), with its samples. */
  latency(p: LatencyPlan, round = 1, rounds = 1): Promise<LatencyWindow> {
    const what = `latency ${p.size} B ${p.loadPerSec > 0 ? 'under load' : idleRowName(p.intervalMs)}${windowLabel(round, rounds)}`;
    return this.measure(what, (c) => measureLatency(c, this.labels, p),
      (why) => ({ row: skippedLatency(this.labels, this.s.nodes, p, why), errors: [], samplesUs: [] }));
  }

  /** Peak RSS of the reference's daemons so far (called when the configuration's work is done). */
  memory(): MemoryRow {
    const l = this.labels;
    const base = { driver: l.driver, crypto: l.crypto, accelerated: l.accelerated, nodes: this.s.nodes };
    return this.cluster ? { ...base, peakRssBytes: this.cluster.peakRss() } : { ...base, peakRssBytes: [], skipped: this.skipped ?? 'not running' };
  }

  async close(): Promise<void> {
    const c = this.cluster;
    this.cluster = undefined;
    this.skipped ??= 'stopped';
    for (const f of c?.failures() ?? []) this.s.note(f);
    await c?.close();
  }
}
