// Turns a bench report into the text printed at the end of a run and the SVG charts (pure).
import { clientHeading } from './cluster-clients.ts';
import { COROSYNC_CIPHER, COROSYNC_HASH } from './corosync-conf.ts';
import { WARMUP_MS } from './driver-bench.ts';
import { formatProfileSummary } from './profile.ts';
import type { BenchReport, ThroughputRow } from './results.ts';
import { lineChart, type Series } from './svg.ts';
import { formatLatencyTable, formatLossTable, formatMemoryTable, formatPeakBySizeTable, formatSimScalingTable, formatThroughputTable } from './table.ts';

function configName(r: ThroughputRow): string {
  if (r.driver === 'udp') return 'raw UDP ceiling';
  const parts = [r.driver];
  if (r.crypto === 'on') parts.push('crypto');
  if (r.accelerated === 'on') parts.push('accelerated');
  return parts.join(' + ') + (r.senders === 'one' ? ', one sender' : '');
}

/** What the reference's rows are, for the top of the report (pure). */
export function referenceHeading(ref: NonNullable<BenchReport['reference']>, nodes: number): string {
  if (ref.skipped) return `${ref.name} skipped: ${ref.skipped}`;
  return `${ref.name} ${ref.version ?? ''}: ${nodes} nodes, each in its own network namespace on a bridge, knet, `
    + `crypto ${COROSYNC_CIPHER}+${COROSYNC_HASH} when on; client cpg-bench (libcpg, CPG_TYPE_AGREED). `
    + `Each ${ref.name} row is the same work as the row above it, measured right after it; "x ${ref.name}" = that row's figure over ${ref.name}'s.`;
}

/** Groups rows by configuration in first-seen order (pure). */
export function groupBy<R>(rows: readonly R[], key: (r: R) => string): Map<string, R[]> {
  const m = new Map<string, R[]>();
  for (const r of rows) {
    const k = key(r);
    const list = m.get(k);
    if (list) list.push(r);
    else m.set(k, [r]);
  }
  return m;
}

export function formatReport(r: BenchReport): string {
  const out: string[] = [];
  const section = (title: string, body: string) => out.push(`== ${title}`, body, '');
  section('clients', clientHeading(r.client ?? 'ts'));
  if (r.reference) section(`reference: ${r.reference.name}`, referenceHeading(r.reference, r.throughput[0]?.nodes ?? 0));
  for (const [name, rows] of groupBy(r.throughput, configName)) {
    const who = rows[0].driver === 'udp' ? '' : rows[0].senders === 'one' ? ", node 1's client alone sends" : ", every node's client sends";
    section(`throughput: ${name} (${rows[0].nodes} nodes${who}; TP/s = messages delivered per second at every node${windowsHeading(r, rows, 'its rates over all of them')})`, formatThroughputTable(rows));
  }
  if (r.loss?.length) section('loss: one sender (node 1), every cluster datagram dropped at its receiver with the given probability (iptables statistic on lo); confs = configurations installed during the window, summed over the nodes', formatLossTable(r.loss));
  const warm = `after ${r.latencyWarmupS ?? WARMUP_MS / 1000} s of round trips not counted`;
  // "The same load" only where a reference row under load was measured (not skipped, not failed).
  const shared = r.latency.some((l) => l.load !== 'idle' && l.reference !== undefined && l.reference.skipped === undefined);
  const loaded = r.reference && shared
    ? `, and under half the lower of the two measured maxima, the same load for ${r.reference.name}`
    : r.latency.some((l) => l.load !== 'idle') ? ', and under 50% of the measured maximum' : '';
  const paced = r.latency.find((l) => l.intervalMs)?.intervalMs;
  const idle = paced ? `idle: back to back, and one every ${paced} ms ("idle, 1/${paced}ms")` : 'idle';
  const windows = windowsHeading(r, r.latency, 'its percentiles of all their samples');
  if (r.latency.length) section(`latency: round trip to agreed self-delivery at node 1 (${idle}${loaded}; ${warm}${windows})`, formatLatencyTable(r.latency));
  if (r.memory.length) section('peak daemon RSS (VmHWM) over the whole run of each configuration', formatMemoryTable(r.memory));
  const bySize = formatPeakBySizeTable(r.memory);
  if (bySize) section("node 1's peak RSS after each size (VmHWM so far: the peak of the load of that size and those measured before it)", bySize);
  if (r.scaling.throughput.length) section('scaling on real daemons: throughput by node count', formatThroughputTable(r.scaling.throughput));
  if (r.scaling.latency.length) section(`scaling on real daemons: idle latency by node count (${warm})`, formatLatencyTable(r.scaling.latency));
  if (r.simScaling.length) section('scaling in the simulator: modelled 1 Gbit LAN, virtual time (CPU is not the limit)', formatSimScalingTable(r.simScaling));
  for (const p of r.profiles) {
    section(`cpu profile: ${p.config} (${p.file || 'not written'})`, p.summary ? formatProfileSummary(p.summary, 12) : '(no profile: the process did not exit cleanly)');
  }
  out.push(`(1-minute load average ${r.loadAverage.start.toFixed(1)} at start, ${r.loadAverage.end.toFixed(1)} at end, ${r.host.cpus} cores)`, '');
  if (r.notes.length) section('notes', r.notes.map((n) => `- ${n}`).join('\n'));
  return out.join('\n');
}

/** Throughput by message size: a line per configuration, the ceiling dashed. */
export function throughputChart(r: BenchReport): string {
  const series: Series[] = [...groupBy(r.throughput, configName)].map(([name, rows]) => ({
    name, dashed: rows[0].driver === 'udp', points: rows.map((x) => ({ x: x.size, y: x.mbPerSec })),
  }));
  const nodes = r.throughput[0]?.nodes ?? 0;
  return lineChart({ title: `Throughput by message size, ${nodes} nodes on loopback (MB/s delivered at every node)`, xLabel: 'bytes per message (log scale)', yLabel: 'MB/s', logX: true, series });
}

/** Throughput by node count on real daemons, with the raw UDP ceiling at each count. */
export function scalingChart(r: BenchReport): string {
  const series: Series[] = [...groupBy(r.scaling.throughput, configName)].map(([name, rows]) => ({
    name, dashed: rows[0].driver === 'udp', points: rows.map((x) => ({ x: x.nodes, y: x.tpPerSec })),
  }));
  const size = r.scaling.throughput[0]?.size ?? 0;
  return lineChart({ title: `Real daemons on loopback: throughput by node count, ${size} B messages`, xLabel: 'nodes', yLabel: 'messages delivered per second at every node', series });
}

/** Throughput by node count in the simulator (virtual time, modelled 1 Gbit LAN). */
export function simScalingChart(r: BenchReport): string {
  const series: Series[] = [...groupBy(r.simScaling, (x) => `${x.driver} ${x.transport}${x.loss ? ` ${(x.loss * 100).toFixed(1)}% loss` : ''}`)].map(([name, rows]) => ({
    name, points: rows.map((x) => ({ x: x.nodes, y: x.tpPerSec })),
  }));
  const size = r.simScaling[0]?.size ?? 0;
  return lineChart({ title: `Simulator, 1 Gbit sender NICs (receive side not modelled): throughput by node count, ${size} B`, xLabel: 'nodes', yLabel: 'messages delivered per second at every node (virtual)', series });
}

/** --rounds: how many windows each row is, and that they were taken in turns with the reference's. */
function windowsHeading(r: BenchReport, rows: readonly { rounds?: number }[], what: string): string {
  const rounds = rows.find((l) => (l.rounds ?? 1) > 1)?.rounds;
  return rounds ? `; each row ${rounds} windows${r.reference ? `, in turns with ${r.reference.name}'s` : ''}, ${what}` : '';
}
