// afcluster's ratio to the reference (`afcluster bench --reference corosync --json F`) in several
// runs of the same command, side by side with their median: on a machine whose speed drifts, one
// run's ratio is one sample, and several runs' spread is what a figure in docs/BENCH.md should
// carry. Throughput is afcluster's MB/s over the reference's (above 1: afcluster faster); latency
// and memory are afcluster's figure over the reference's (below 1: afcluster lower).
// Run: npx tsx tools/bench/ratios.ts run1.json run2.json [...]
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { idleRowName } from './driver-bench.ts';
import { percentile } from './stats.ts';
import { fixed, formatTable, type Column } from './table.ts';
import type { BenchReport, LatencyRow, MemoryRow, ThroughputRow } from './results.ts';

export interface RatioLine {
  /** The work and the figure compared, e.g. "one sender, crypto off, 1300 B: MB/s". */
  readonly what: string;
  /** One per report, in order; undefined where that run has no such row or no reference figure. */
  readonly ratios: readonly (number | undefined)[];
  /** The median of the ratios there are (nearest rank, as the bench's percentiles); NaN for none. */
  readonly median: number;
}

const ratio = (a: number, b: number): number | undefined => (Number.isFinite(a / b) && b > 0 ? a / b : undefined);

function throughputLines(r: ThroughputRow): [string, number | undefined][] {
  if (!r.reference) return [];
  const senders = r.senders === 'one' ? 'one sender' : 'every node';
  const accel = r.accelerated === 'on' ? ', accelerated' : '';
  return [[`${senders}, crypto ${r.crypto}${accel}, ${r.size} B: MB/s`, ratio(r.mbPerSec, r.reference.mbPerSec)]];
}

function latencyLines(r: LatencyRow): [string, number | undefined][] {
  if (!r.reference) return [];
  const load = r.load !== 'idle' ? 'under load' : idleRowName(r.intervalMs);
  const at = `${r.size} B ${load}, crypto ${r.crypto}${r.accelerated === 'on' ? ', accelerated' : ''}`;
  return [[`${at}: median`, ratio(r.medianUs, r.reference.medianUs)], [`${at}: p99`, ratio(r.p99Us, r.reference.p99Us)]];
}

function memoryLines(r: MemoryRow): [string, number | undefined][] {
  if (!r.reference) return [];
  const of = `crypto ${r.crypto}${r.accelerated === 'on' ? ', accelerated' : ''}`;
  return [
    [`peak RSS of node 1, ${of}`, ratio(r.peakRssBytes[0], r.reference.peakRssBytes[0])],
    ...(r.bySize ?? []).map((p): [string, number | undefined] => [`peak RSS of node 1 after ${p.size} B, ${of}`, ratio(p.node1Bytes, p.referenceNode1Bytes ?? NaN)]),
  ];
}

/** Every figure that has a reference in some report, in the order the reports first give it. */
export function ratioLines(reports: readonly BenchReport[]): RatioLine[] {
  const byWhat = new Map<string, (number | undefined)[]>();
  reports.forEach((rep, i) => {
    const lines = [...rep.throughput.flatMap(throughputLines), ...rep.latency.flatMap(latencyLines), ...rep.memory.flatMap(memoryLines)];
    for (const [what, value] of lines) {
      let row = byWhat.get(what);
      if (!row) { row = new Array<number | undefined>(reports.length).fill(undefined); byWhat.set(what, row); }
      row[i] = value;
    }
  });
  return [...byWhat].map(([what, ratios]) => ({ what, ratios, median: percentile(ratios.filter((x): x is number => x !== undefined), 50) }));
}

export function formatRatios(lines: readonly RatioLine[], runs: number, reference: string): string {
  const columns: Column<RatioLine>[] = [
    { header: `afcluster x ${reference}`, align: 'left', cell: (l) => l.what },
    ...Array.from({ length: runs }, (_, i): Column<RatioLine> => ({ header: `run ${i + 1}`, align: 'right', cell: (l) => fixed(l.ratios[i], 2) })),
    { header: 'median', align: 'right', cell: (l) => fixed(l.median, 2) },
  ];
  return formatTable(columns, lines);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error('usage: npx tsx tools/bench/ratios.ts RUN.json [RUN.json ...]  (afcluster bench --reference ... --json RUN.json)');
    process.exit(2);
  }
  const reports = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as BenchReport);
  const reference = reports.find((r) => r.reference)?.reference?.name;
  if (!reference) {
    console.error('none of these runs has a reference: run afcluster bench with --reference corosync --json FILE');
    process.exit(1);
  }
  for (const [i, f] of files.entries()) console.log(`run ${i + 1}: ${f} (${reports[i].startedAt}, ${reports[i].command})`);
  console.log(formatRatios(ratioLines(reports), reports.length, reference));
}
