// The whole bench run: the raw UDP ceiling, then every driver configuration on real daemons
// (throughput by size, latency idle and under load, counters, peak RSS), then scaling by node
// count on real daemons and in the simulator. Returns the report; printing is cmd-bench's.
import { existsSync, readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { HEADER_BYTES as SEALER_HEADER_BYTES } from '../../core/crypto/sealer.ts';
import { resolveMtu } from '../../core/transport/mtu.ts';
import { builtinRegistry } from '../../drivers/builtin.ts';
import type { DriverRegistry } from '../../core/driver/registry.ts';
import type { Order } from '../../core/driver/types.ts';
import { UsageError } from '../command.ts';
import { CeilingCluster, ceilingRow, UDP_PAYLOAD_AT_MTU_1500 } from './ceiling.ts';
import { BenchCluster } from './cluster.ts';
import { idleRowName, measureLatency, measureThroughput, mergeLatency, mergeThroughput, WARMUP_MS, windowLabel, type LatencyWindow, type RunLabels } from './driver-bench.ts';
import type { BenchOptions, OnOff } from './options.ts';
import type { Progress } from './progress.ts';
import { readProfile, summarizeProfile, type ProfileSummary } from './profile.ts';
import { ReferenceRun, referenceInfo } from './reference.ts';
import type { BenchReport, MemoryRow, PeakAfterSize, Senders, SimScalingRow, ThroughputRow } from './results.ts';
import { simScaling } from './sim-scaling.ts';
import { checkLossPossible, LossRule } from './loss.ts';

/** accelerated_window when --accelerated on (frames of a visit sent after the token). */
export const ACCELERATED_WINDOW_ON = 8;
/** The ceiling's window per size: raw UDP settles fast, and the 3-minute budget is for the drivers. */
const CEILING_SECONDS_MAX = 1;
const SIM_WINDOW_MS = 100;
const SIM_SEED = 20040;

export interface Config {
  readonly driver: string;
  readonly crypto: OnOff;
  readonly accelerated: OnOff | '-';
}

/** Every driver x crypto x accelerated combination; accelerated applies to totem only (pure). */
export function configurations(o: Pick<BenchOptions, 'drivers' | 'crypto' | 'accelerated'>): Config[] {
  return o.drivers.flatMap((driver) => o.crypto.flatMap((crypto) => (driver === 'totem' ? o.accelerated : ['-' as const])
    .map((accelerated) => ({ driver, crypto, accelerated }))));
}

/** Steps for the progress bar (pure). */
export function stepCount(o: BenchOptions): number {
  const scaling = o.scaling ? o.drivers.length * o.scaleNodes.length * 3 : 0;
  return (withCeiling(o) ? 2 * o.sizes.length : 0) + configurations(o).length * stepsPerConfig(o) + scaling;
}

function stepsPerConfig(o: BenchOptions): number {
  // --loss: the start and a row per size and rate (no reference there).
  if (o.loss) return 1 + o.sizes.length * o.loss.length;
  // Per size and --rounds window: every node; with --reference one sender (afcluster, reference)
  // and every node (reference); the latency rows: idle (with --latency or --reference), under
  // load (--latency), paced (--latency-paced), and the reference's the same.
  const latencyRows = (o.latency ? 2 : o.reference ? 1 : 0) + (o.latencyPaced ? 1 : 0);
  const perSize = o.rounds * (1 + (o.reference ? 3 : 0) + latencyRows * (o.reference ? 2 : 1));
  // The start, the warm-up after it (warmStart), and the reference's start and its two warm-ups.
  return 2 + (o.reference ? 3 : 0) + o.sizes.length * perSize;
}

/** --loss rows are compared with the lossless row, not with the raw UDP ceiling. */
function withCeiling(o: Pick<BenchOptions, 'ceiling' | 'loss'>): boolean {
  return o.ceiling && !o.loss;
}

/** The driver sections for one configuration: --set items, plus accelerated_window for totem. */
export function sectionsFor(c: Config, o: Pick<BenchOptions, 'driverSections'>): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries(o.driverSections)) out[k] = { ...v };
  if (c.accelerated !== '-' && out.totem?.accelerated_window === undefined) {
    out.totem = { ...out.totem, accelerated_window: c.accelerated === 'on' ? ACCELERATED_WINDOW_ON : 0 };
  }
  return out;
}

export function orderFor(registry: DriverRegistry, driver: string): Order {
  return registry.get(driver).guarantees.agreed ? 'agreed' : 'fifo';
}

export interface RunContext {
  readonly opts: BenchOptions;
  readonly progress: Progress;
  readonly command: string;
  readonly registry?: DriverRegistry;
}

export async function runBench(ctx: RunContext): Promise<BenchReport> {
  const registry = ctx.registry ?? builtinRegistry();
  for (const d of ctx.opts.drivers) {
    if (!registry.has(d)) throw new UsageError(`--drivers: no driver named "${d}"; registered: ${registry.names().join(', ')}`);
  }
  const report: BenchReport = {
    startedAt: new Date().toISOString(), command: ctx.command,
    host: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', node: process.version, platform: `${process.platform} ${process.arch}` },
    loadAverage: { start: loadavg()[0], end: NaN },
    latencyWarmupS: ctx.opts.latencyWarmup,
    client: ctx.opts.client,
    throughput: [], latency: [], scaling: { throughput: [], latency: [] }, simScaling: [], memory: [], profiles: [], notes: [],
    ...(ctx.opts.loss ? { loss: [] } : {}),
  };
  if (ctx.opts.reference) {
    report.reference = referenceInfo(ctx.opts.reference);
    if (report.reference.skipped) note(report, `--reference ${ctx.opts.reference}: ${report.reference.skipped}`);
  }
  if (ctx.opts.loss) checkLossPossible();
  const ceiling = withCeiling(ctx.opts) ? await measureCeiling(ctx, ctx.opts.nodes, ctx.opts.sizes) : new Map<number, ThroughputRow>();
  for (const c of configurations(ctx.opts)) {
    // One configuration that cannot run (a daemon that fails to start or dies) must not lose the others' figures.
    try {
      await runConfig(ctx, registry, c, ceiling, report);
    } catch (e) {
      note(report, `${labelOf(c)}: not measured: ${(e as Error).message}`);
    }
  }
  if (withCeiling(ctx.opts)) {
    // Once more after the drivers: on a shared machine one sample can be unlucky; the ceiling is the better of the two.
    const again = await measureCeiling(ctx, ctx.opts.nodes, ctx.opts.sizes);
    const best = bestCeiling(ceiling, again);
    report.throughput.splice(0, report.throughput.length, ...best.values(), ...rerate(report.throughput, best));
  }
  if (ctx.opts.scaling) await runScaling(ctx, registry, report);
  report.loadAverage.end = loadavg()[0];
  const busy = Math.max(report.loadAverage.start, report.loadAverage.end);
  if (busy > report.host.cpus) note(report, `the machine was busy (1-minute load average ${busy.toFixed(1)} on ${report.host.cpus} cores): absolute figures are low and noisy; ratios to the ceiling are more stable`);
  return report;
}

async function measureCeiling(ctx: RunContext, nodes: number, sizes: readonly number[], showSteps = true): Promise<Map<number, ThroughputRow>> {
  const out = new Map<number, ThroughputRow>();
  const seconds = Math.min(ctx.opts.seconds, CEILING_SECONDS_MAX);
  const cluster = await CeilingCluster.start(nodes);
  try {
    for (const size of sizes) {
      if (showSteps) ctx.progress.step(`raw UDP ceiling, ${nodes} nodes, ${size} B`);
      const datagramBytes = ceilingDatagramBytes(daemonsMtu(ctx.opts));
      const results = await cluster.measure(size, { seconds, warmupMs: WARMUP_MS, datagramBytes });
      out.set(size, ceilingRow(size, results, { crypto: 'off', datagramBytes, cpuSeconds: cluster.lastCpuSeconds }));
      if (showSteps) ctx.progress.tick();
    }
  } finally {
    await cluster.close();
  }
  return out;
}

/** The network MTU the bench's daemons run at: --mtu, else loopback's (cluster.mtu = "auto"). */
function daemonsMtu(o: BenchOptions): number {
  return o.mtu ?? resolveMtu('auto', '127.0.0.1').mtu;
}

/** UDP payload of the ceiling's datagrams: what fits the daemons' MTU (IPv4 and UDP headers off; pure). */
export function ceilingDatagramBytes(mtu: number): number {
  return Math.min(mtu - 28, 65_507);
}

function labelOf(c: Config): string {
  return `${c.driver} crypto ${c.crypto}${c.accelerated === '-' ? '' : `, accelerated ${c.accelerated}`}`;
}

async function runConfig(ctx: RunContext, registry: DriverRegistry, c: Config, ceiling: Map<number, ThroughputRow>, report: BenchReport): Promise<void> {
  const o = ctx.opts;
  ctx.progress.step(`${labelOf(c)}: starting ${o.nodes} daemons`);
  const order = orderFor(registry, c.driver);
  const cluster = await BenchCluster.start({
    driver: c.driver, nodes: o.nodes, crypto: c.crypto === 'on', driverSections: sectionsFor(c, o), profileDir: o.profile ? profileDirFor(o.profile, c) : undefined, keep: o.keep, mtu: o.mtu,
    client: o.client, order,
  });
  ctx.progress.tick();
  const l: RunLabels = { ...c, order };
  let ref: ReferenceRun | undefined;
  const bySize: PeakAfterSize[] = [];
  try {
    // --loss measures one sender under loss against its own lossless row; no reference there.
    if (report.reference && !o.loss) ref = await ReferenceRun.start({ info: report.reference, nodes: o.nodes, crypto: c.crypto, linkMtu: o.referenceMtu ?? daemonsMtu(o), keep: o.keep, progress: ctx.progress, note: (s) => note(report, s) });
    if (o.loss) await lossRows(ctx, cluster, l, report);
    else {
      await warmStart(ctx, report, { cluster, l, ref }, Math.min(o.sizes[0], cluster.messageSizeMax));
      for (const size of o.sizes) {
        const eff = Math.min(size, cluster.messageSizeMax);
        if (eff !== size) note(report, `${labelOf(c)}: ${size} B is over the ${cluster.messageSizeMax} B the daemon's bridge carries; measured ${eff} B instead`);
        const sizes = { size, eff, ceiling: ceiling.get(size) };
        if (ref) await throughputAt(ctx, { cluster, l, ref, report }, sizes, 'one');
        const row = await throughputAt(ctx, { cluster, l, ref, report }, sizes, 'all');
        if (o.latency || ref) await latencyAt(ctx, cluster, l, eff, row.tpPerSec, report, ref && { run: ref, maxTp: row.reference?.tpPerSec ?? NaN });
        bySize.push(peakAfter(size, cluster, ref));
      }
    }
    report.memory.push(memoryRow(c, cluster, ref, bySize));
  } finally {
    for (const f of cluster.failures()) note(report, f);
    await Promise.all([cluster.close(), ref?.close()]);
  }
  if (o.profile) {
    report.profiles.push(profileOf(join(profileDirFor(o.profile, c), 'node1'), `${labelOf(c)}, node 1's daemon`));
    // The C client writes no V8 profile.
    if (o.client === 'ts') report.profiles.push(profileOf(join(profileDirFor(o.profile, c), 'client1'), `${labelOf(c)}, node 1's client`));
  }
}

/** Every node sending for this long after a start, not measured, and with a reference one sender
 *  as long again (the one-sender rows come first): V8 compiles the daemons' and the clients'
 *  message path in their first seconds under load (about 150 functions a daemon, the token's
 *  path last: it runs once a rotation, not once a message), and a first row measured inside that
 *  ran 3 to 20% below the same row measured again with only the row's own WARMUP_MS before it;
 *  with every node's warm-up alone, a one-sender row at 100 B still spent 3.4 us of daemon CPU a
 *  message where the every-node row after it spent 1.9 (docs/BENCH.md, "A message read where it
 *  lies in its frame"). The reference does the same work, for the same time. */
export const START_WARMUP_S = 2;
/** One sender's warm-up after every node's: 2 s of it still left a first row with the daemons at
 *  2.41 us of CPU a message against 1.76 in the every-node row after it, once in four runs; 3 s
 *  brought the first measured row into the later rows' spread (docs/BENCH.md). Both are cut to
 *  --seconds when that is shorter than START_WARMUP_S (a quick run stays quick). */
export const START_WARMUP_ONE_S = 3;

async function warmStart(ctx: RunContext, report: BenchReport, m: { cluster: BenchCluster; l: RunLabels; ref?: ReferenceRun }, size: number): Promise<void> {
  const workloads: Senders[] = m.ref ? ['all', 'one'] : ['all'];
  for (const senders of workloads) {
    const seconds = ctx.opts.seconds < START_WARMUP_S ? ctx.opts.seconds : senders === 'one' ? START_WARMUP_ONE_S : START_WARMUP_S;
    const who = senders === 'one' ? 'one sender' : 'every node';
    ctx.progress.step(`${labelOf(m.l)}: warming up, ${size} B, ${who} (${seconds} s, not measured)`);
    const { errors } = await measureThroughput(m.cluster, m.l, size, seconds, senders);
    noteErrors(report, `${labelOf(m.l)} warm-up ${size} B, ${who}`, errors);
    if (m.ref) await m.ref.throughput(size, seconds, senders);
  }
  ctx.progress.tick();
}

/** --loss: per loss rate (the rule installed, removed whatever happens) and size, one sender. */
async function lossRows(ctx: RunContext, cluster: BenchCluster, l: RunLabels, report: BenchReport): Promise<void> {
  const o = ctx.opts;
  const lossless = new Map<number, number>();
  for (const p of o.loss ?? []) {
    const rule = LossRule.install(cluster.port, p);
    try {
      for (const size of o.sizes) {
        const eff = Math.min(size, cluster.messageSizeMax);
        ctx.progress.step(`${labelOf(l)}: ${(p * 100).toFixed(1)}% loss, ${eff} B, one sender`);
        const { row, errors } = await measureThroughput(cluster, l, eff, o.seconds, 'one');
        if (p === 0) lossless.set(eff, row.tpPerSec);
        const base = lossless.get(eff);
        report.loss?.push({ ...row, loss: p, senders: 'one', ofLossless: base ? row.tpPerSec / base : undefined });
        noteErrors(report, `${labelOf(l)} ${(p * 100).toFixed(1)}% loss ${eff} B`, errors);
        ctx.progress.tick();
      }
    } finally {
      rule?.remove();
    }
  }
}

/** Per size, the ceiling sample with the higher throughput (pure). */
export function bestCeiling(a: ReadonlyMap<number, ThroughputRow>, b: ReadonlyMap<number, ThroughputRow>): Map<number, ThroughputRow> {
  const out = new Map(a);
  for (const [size, row] of b) {
    const prev = out.get(size);
    if (!prev || row.mbPerSec > prev.mbPerSec) out.set(size, row);
  }
  return out;
}

/** Driver rows with their ratio recomputed against the ceiling at the size they asked for (pure). */
export function rerate(rows: readonly ThroughputRow[], ceiling: ReadonlyMap<number, ThroughputRow>): ThroughputRow[] {
  return rows.map((r) => {
    const c = ceiling.get(r.requestedSize ?? r.size);
    return c ? { ...r, ratio: r.mbPerSec / c.mbPerSec } : r;
  });
}

/** Where one configuration's daemons write their .cpuprofile files. */
export function profileDirFor(root: string, c: Config): string {
  return join(root, `${c.driver}-crypto-${c.crypto}${c.accelerated === '-' ? '' : `-accel-${c.accelerated}`}`);
}

/** The summary of one process's profile: of its thread profiles, the busiest (the main thread). */
export function profileOf(d: string, label: string): { config: string; file: string; summary: ProfileSummary | undefined } {
  const files = existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(d, f)) : [];
  let best: { file: string; summary: ProfileSummary | undefined } = { file: '', summary: undefined };
  for (const file of files) {
    const summary = summarizeProfile(readProfile(file));
    if (!best.summary || summary.idleShare < best.summary.idleShare) best = { file, summary };
  }
  return { config: label, ...best };
}

interface Measuring {
  readonly cluster: BenchCluster;
  readonly l: RunLabels;
  readonly ref: ReferenceRun | undefined;
  readonly report: BenchReport;
}

/** One throughput row at one size (eff: what the bridge carries), then the reference's on the
 *  same work right after it; with --rounds, in that many windows in turns (mergeThroughput). */
async function throughputAt(ctx: RunContext, m: Measuring, s: { size: number; eff: number; ceiling: ThroughputRow | undefined }, senders: Senders): Promise<ThroughputRow> {
  const who = senders === 'one' ? ', one sender' : '';
  const rounds = ctx.opts.rounds;
  const ours: ThroughputRow[] = [];
  const theirs: ThroughputRow[] = [];
  for (let round = 1; round <= rounds; round++) {
    ctx.progress.step(`${labelOf(m.l)}: throughput ${s.eff} B${who}${windowLabel(round, rounds)}`);
    const { row, errors } = await measureThroughput(m.cluster, m.l, s.eff, ctx.opts.seconds, senders);
    noteErrors(m.report, `${labelOf(m.l)} ${s.eff} B${who}`, errors);
    ours.push(row);
    ctx.progress.tick();
    if (m.ref) theirs.push(await m.ref.throughput(s.eff, ctx.opts.seconds, senders, round, rounds));
  }
  const row = mergeThroughput(ours);
  const reference = m.ref ? mergeThroughput(theirs) : undefined;
  const asked = { ...row, ...(s.eff === s.size ? {} : { requestedSize: s.size }), ...(reference ? { reference } : {}) };
  const out = s.ceiling ? { ...asked, ratio: row.mbPerSec / s.ceiling.mbPerSec } : asked;
  m.report.throughput.push(out);
  return out;
}

/** --latency-warmup in whole milliseconds, as the clients take it. */
function latencyWarmupMs(o: BenchOptions): number {
  return Math.round(o.latencyWarmup * 1000);
}

/** The offered load of a latency row under load: half the maximum just measured; with a
 *  reference that has one, half the lower of the two, so that both carry the same load (latency
 *  compared at one throughput: at its own half the faster system would carry more). */
export function latencyLoadPerSec(maxTp: number, refMaxTp?: number): number {
  // A maximum that was not measured (NaN: a skipped or failed row; 0) does not lower the other.
  const measured = [maxTp, refMaxTp ?? NaN].filter((x) => Number.isFinite(x) && x > 0);
  return measured.length > 0 ? Math.round(Math.min(...measured) * 0.5) : 0;
}

/** Idle (and with --latency, under load: latencyLoadPerSec); each followed by the reference's. */
async function latencyAt(ctx: RunContext, cluster: BenchCluster, l: RunLabels, size: number, maxTp: number, report: BenchReport, ref?: { run: ReferenceRun; maxTp: number }): Promise<void> {
  const seconds = Math.max(0.5, ctx.opts.seconds / 2);
  const warmupMs = latencyWarmupMs(ctx.opts);
  const load = latencyLoadPerSec(maxTp, ref?.maxTp);
  const paced = ctx.opts.latencyPaced;
  // Under load only when a maximum was measured (a failed row leaves none to take half of).
  const plans: { load: number; what: string; intervalMs?: number }[] = [
    { load: 0, what: idleRowName() },
    ...(paced ? [{ load: 0, what: idleRowName(paced), intervalMs: paced }] : []),
    ...(ctx.opts.latency && load > 0 ? [{ load, what: `under ${load} msg/s` }] : []),
  ];
  // --rounds: each row in that many windows, afcluster's and the reference's in turns, so that
  // both sample the same minutes of a machine whose speed drifts (docs/BENCH.md).
  const rounds = ctx.opts.rounds;
  for (const p of plans) {
    const ours: LatencyWindow[] = [];
    const theirs: LatencyWindow[] = [];
    for (let round = 1; round <= rounds; round++) {
      ctx.progress.step(`${l.driver}: latency ${size} B ${p.what}${windowLabel(round, rounds)}`);
      const w = await measureLatency(cluster, l, { size, seconds, loadPerSec: p.load, warmupMs, intervalMs: p.intervalMs });
      noteErrors(report, `${l.driver} latency ${size} B ${p.what}`, w.errors);
      ours.push(w);
      ctx.progress.tick();
      // A reference whose throughput was skipped has no maximum: its load is then none (a skipped row anyway).
      if (ref) theirs.push(await ref.run.latency({ size, seconds, loadPerSec: Number.isFinite(ref.maxTp) ? p.load : 0, warmupMs, intervalMs: p.intervalMs }, round, rounds));
    }
    const row = mergeLatency(ours);
    report.latency.push(ref ? { ...row, reference: mergeLatency(theirs) } : row);
  }
}

function memoryRow(c: Config, cluster: BenchCluster, ref: ReferenceRun | undefined, bySize: readonly PeakAfterSize[]): MemoryRow {
  const row = { driver: c.driver, crypto: c.crypto, accelerated: c.accelerated, nodes: cluster.size, peakRssBytes: cluster.peakRss(), ...(bySize.length ? { bySize } : {}) };
  return ref ? { ...row, reference: ref.memory() } : row;
}

/** Node 1's peak so far, ours and the reference's, once a size's rows are done. */
function peakAfter(size: number, cluster: BenchCluster, ref: ReferenceRun | undefined): PeakAfterSize {
  const theirs = ref?.memory().peakRssBytes[0];
  return { size, node1Bytes: cluster.peakRss()[0] ?? 0, ...(theirs ? { referenceNode1Bytes: theirs } : {}) };
}

function note(report: BenchReport, s: string): void {
  if (!report.notes.includes(s)) report.notes.push(s);
}

function noteErrors(report: BenchReport, where: string, errors: readonly string[]): void {
  for (const e of new Set(errors)) note(report, `${where}: ${e}`);
}

async function runScaling(ctx: RunContext, registry: DriverRegistry, report: BenchReport): Promise<void> {
  const o = ctx.opts;
  for (const n of o.scaleNodes) {
    const ceil = o.ceiling ? (await measureCeiling(ctx, n, [o.scaleSize], false)).get(o.scaleSize) : undefined;
    if (ceil) report.scaling.throughput.push(ceil);
    for (const driver of o.drivers) {
      const c: Config = { driver, crypto: o.crypto[0], accelerated: driver === 'totem' ? o.accelerated[0] : '-' };
      try {
        await scaleOne(ctx, { ...c, order: orderFor(registry, driver) }, n, ceil, report);
      } catch (e) {
        note(report, `scaling ${driver} ${n} nodes: not measured: ${(e as Error).message}`);
      }
      ctx.progress.step(`scaling ${driver}: simulator, ${n} nodes`);
      for (const loss of o.loss ?? [0]) {
        for (const transport of ['udpu', 'multicast'] as const) {
          report.simScaling.push(simRow(registry, { driver, transport, nodes: n, size: o.scaleSize, loss, section: sectionsFor(c, o)[driver] }, report));
        }
      }
      ctx.progress.tick();
    }
  }
}

/** Throughput and idle latency of one driver at n real daemons. */
async function scaleOne(ctx: RunContext, l: RunLabels, n: number, ceil: ThroughputRow | undefined, report: BenchReport): Promise<void> {
  const o = ctx.opts;
  ctx.progress.step(`scaling ${l.driver}: ${n} daemons, ${o.scaleSize} B`);
  const cluster = await BenchCluster.start({ driver: l.driver, nodes: n, crypto: l.crypto === 'on', driverSections: sectionsFor(l, o), keep: o.keep, mtu: o.mtu, client: o.client, order: l.order });
  try {
    const size = Math.min(o.scaleSize, cluster.messageSizeMax);
    const { row, errors } = await measureThroughput(cluster, l, size, o.seconds);
    report.scaling.throughput.push(ceil ? { ...row, ratio: row.mbPerSec / ceil.mbPerSec } : row);
    noteErrors(report, `scaling ${l.driver} ${n} nodes`, errors);
    ctx.progress.tick();
    ctx.progress.step(`scaling ${l.driver}: ${n} daemons, idle latency`);
    const lat = await measureLatency(cluster, l, { size, seconds: Math.max(0.5, o.seconds / 2), loadPerSec: 0, warmupMs: latencyWarmupMs(o) });
    report.scaling.latency.push(lat.row);
    noteErrors(report, `scaling ${l.driver} ${n} nodes latency`, lat.errors);
    ctx.progress.tick();
  } finally {
    for (const f of cluster.failures()) note(report, f);
    await cluster.close();
  }
}

interface SimPlan {
  readonly driver: string;
  readonly transport: 'udpu' | 'multicast';
  readonly nodes: number;
  readonly size: number;
  readonly loss: number;
  readonly section: Record<string, unknown> | undefined;
}

function simRow(registry: DriverRegistry, p: SimPlan, report: BenchReport): SimScalingRow {
  try {
    return simScaling({
      driver: registry.get(p.driver), driverOptions: p.section, nodes: p.nodes, size: p.size, transport: p.transport,
      mtu: UDP_PAYLOAD_AT_MTU_1500 - SEALER_HEADER_BYTES, windowMs: SIM_WINDOW_MS, seed: SIM_SEED, pings: 20, loss: p.loss,
    });
  } catch (e) {
    note(report, `simulator ${p.driver} ${p.transport} ${p.nodes} nodes: ${(e as Error).message}`);
    return { driver: p.driver, transport: p.transport, nodes: p.nodes, size: p.size, ...(p.loss ? { loss: p.loss } : {}), tpPerSec: NaN, mbPerSec: NaN, datagramsPerMessage: NaN };
  }
}

