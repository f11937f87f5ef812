// Text tables for the bench (pure): evsbench's columns (writes, bytes per write, seconds,
// TP/s, MB/s) plus the ratio to the raw UDP ceiling and the driver counters. With --reference,
// each row is followed by the reference's row on the same work and carries the ratio to it.
import type { LatencyRow, LossRow, MemoryRow, PeakAfterSize, SimScalingRow, ThroughputRow } from './results.ts';

export type Align = 'left' | 'right';

export interface Column<R> {
  readonly header: string;
  readonly align: Align;
  readonly cell: (row: R) => string;
}

/** Lays rows out under their headers, each column as wide as its widest cell, two spaces apart. */
export function formatTable<R>(columns: readonly Column<R>[], rows: readonly R[]): string {
  const cells = rows.map((r) => columns.map((c) => c.cell(r)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i].length)));
  const line = (vals: string[]) => vals
    .map((v, i) => (columns[i].align === 'left' ? v.padEnd(widths[i]) : v.padStart(widths[i])))
    .join('  ').trimEnd();
  return [line(columns.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** A number with fixed decimals, '-' when absent or not finite. */
export function fixed(n: number | undefined, decimals: number): string {
  return n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(decimals);
}

export function percent(ratio: number | undefined): string {
  return ratio === undefined || !Number.isFinite(ratio) ? '-' : `${(ratio * 100).toFixed(1)}%`;
}

const left = <R>(header: string, cell: (r: R) => string): Column<R> => ({ header, align: 'left', cell });
const right = <R>(header: string, cell: (r: R) => string): Column<R> => ({ header, align: 'right', cell });

/** a / b as "8.20x" (afcluster's figure over the reference's), '-' when either is missing. */
export function times(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || !Number.isFinite(a / b) ? '-' : `${(a / b).toFixed(2)}x`;
}

/** Each row, then its reference's row (the same work, measured right after it). */
export function withReferences<R extends { readonly reference?: R }>(rows: readonly R[]): R[] {
  return rows.flatMap((r) => (r.reference ? [r, r.reference] : [r]));
}

/** Inserts the ratio columns after the column named `after` when some row has a reference ("x corosync"). */
function withRatios<R extends { readonly reference?: R; readonly driver: string }>(columns: readonly Column<R>[], rows: readonly R[], after: string, ratios: readonly [string, (r: R, ref: R) => string][]): Column<R>[] {
  const name = rows.find((r) => r.reference)?.reference?.driver;
  if (name === undefined) return [...columns];
  const added = ratios.map(([header, f]) => right<R>(`${header}x ${name}`, (r) => (r.reference ? f(r, r.reference) : '')));
  const at = columns.findIndex((c) => c.header === after) + 1;
  return [...columns.slice(0, at), ...added, ...columns.slice(at)];
}

const THROUGHPUT_COLUMNS: Column<ThroughputRow>[] = [
  left('driver', (r) => r.driver),
  left('crypto', (r) => r.crypto),
  left('accel', (r) => r.accelerated),
  right('nodes', (r) => String(r.nodes)),
  right('writes', (r) => r.skipped ? 'skipped' : String(r.writes)),
  right('bytes/write', (r) => String(r.size)),
  right('seconds', (r) => fixed(r.seconds, 3)),
  right('TP/s', (r) => fixed(r.tpPerSec, 1)),
  right('MB/s', (r) => fixed(r.mbPerSec, 3)),
  right('of ceiling', (r) => percent(r.ratio)),
  right('retrans', (r) => fixed(r.counters.retransmissions, 0)),
  right('rot/s', (r) => fixed(r.counters.tokenRotationsPerSec, 0)),
  right('cpu us/msg d+c', (r) => (r.cpuUsPerMessage ? `${fixed(r.cpuUsPerMessage.daemons, 0)}+${fixed(r.cpuUsPerMessage.clients, 0)}` : '-')),
  right('msg/dgram', (r) => fixed(r.counters.messagesPerDatagram, r.counters.messagesPerDatagram !== undefined && r.counters.messagesPerDatagram < 1 ? 3 : 1)),
];

export function formatThroughputTable(rows: readonly ThroughputRow[]): string {
  const columns = withRatios(THROUGHPUT_COLUMNS, rows, 'of ceiling', [['', (r, ref) => times(r.mbPerSec, ref.mbPerSec)]]);
  return formatTable(columns, withReferences(rows));
}

const LOSS_COLUMNS: Column<LossRow>[] = [
  left('driver', (r) => r.driver),
  left('crypto', (r) => r.crypto),
  left('accel', (r) => r.accelerated),
  right('nodes', (r) => String(r.nodes)),
  right('loss', (r) => `${(r.loss * 100).toFixed(1)}%`),
  right('bytes/write', (r) => String(r.size)),
  right('seconds', (r) => fixed(r.seconds, 3)),
  right('TP/s', (r) => fixed(r.tpPerSec, 1)),
  right('MB/s', (r) => fixed(r.mbPerSec, 3)),
  right('of lossless', (r) => percent(r.ofLossless)),
  right('retrans', (r) => fixed(r.counters.retransmissions, 0)),
  right('token resends', (r) => fixed(r.counters.tokenRetransmissions, 0)),
  right('confs', (r) => fixed(r.counters.configurations, 0)),
];

export function formatLossTable(rows: readonly LossRow[]): string {
  return formatTable(LOSS_COLUMNS, rows);
}

const LATENCY_COLUMNS: Column<LatencyRow>[] = [
  left('driver', (r) => r.driver),
  left('crypto', (r) => r.crypto),
  left('accel', (r) => r.accelerated),
  right('nodes', (r) => String(r.nodes)),
  right('bytes', (r) => String(r.size)),
  right('load msg/s', (r) => (r.load !== 'idle' ? String(Math.round(r.load)) : r.intervalMs ? `idle, 1/${r.intervalMs}ms` : 'idle')),
  right('samples', (r) => r.skipped ? 'skipped' : String(r.samples)),
  right('median us', (r) => fixed(r.medianUs, 0)),
  right('p99 us', (r) => fixed(r.p99Us, 0)),
  right('cpu us/rt d+c', (r) => (r.cpuUsPerRoundTrip ? `${fixed(r.cpuUsPerRoundTrip.daemons, 0)}+${fixed(r.cpuUsPerRoundTrip.clients, 0)}` : '-')),
];

export function formatLatencyTable(rows: readonly LatencyRow[]): string {
  const columns = withRatios(LATENCY_COLUMNS, rows, 'p99 us', [
    ['median ', (r, ref) => times(r.medianUs, ref.medianUs)], ['p99 ', (r, ref) => times(r.p99Us, ref.p99Us)],
  ]);
  return formatTable(columns, withReferences(rows));
}

const SIM_COLUMNS: Column<SimScalingRow>[] = [
  left('driver', (r) => r.driver),
  left('transport', (r) => r.transport),
  right('nodes', (r) => String(r.nodes)),
  right('loss', (r) => `${((r.loss ?? 0) * 100).toFixed(1)}%`),
  right('bytes', (r) => String(r.size)),
  right('TP/s (virtual)', (r) => fixed(r.tpPerSec, 0)),
  right('MB/s', (r) => fixed(r.mbPerSec, 2)),
  right('dgrams/msg', (r) => fixed(r.datagramsPerMessage, 3)),
  right('latency us', (r) => fixed(r.latencyMedianUs, 0)),
];

export function formatSimScalingTable(rows: readonly SimScalingRow[]): string {
  return formatTable(SIM_COLUMNS, rows);
}

const MEMORY_COLUMNS: Column<MemoryRow>[] = [
  left('driver', (r) => r.driver),
  left('crypto', (r) => r.crypto),
  left('accel', (r) => r.accelerated),
  right('nodes', (r) => String(r.nodes)),
  right('peak RSS MB (max)', (r) => fixed(Math.max(...r.peakRssBytes) / 1e6, 1)),
  left('per daemon MB', (r) => (r.skipped ? 'skipped' : r.peakRssBytes.map((b) => (b / 1e6).toFixed(1)).join(' '))),
];

export function formatMemoryTable(rows: readonly MemoryRow[]): string {
  // Node 1's daemon: the one whose client sends in every workload (the only sender in one-sender rows).
  const columns = withRatios(MEMORY_COLUMNS, rows, 'peak RSS MB (max)', [['node 1 ', (r, ref) => times(r.peakRssBytes[0], ref.peakRssBytes[0])]]);
  return formatTable(columns, withReferences(rows));
}

/** A configuration's node 1 after one size's rows, with the reference's at the same moment. */
interface PeakRow {
  readonly driver: string;
  readonly crypto: string;
  readonly accelerated: string;
  readonly size: number;
  readonly bytes: number | undefined;
  readonly reference?: PeakRow;
}

const PEAK_COLUMNS: Column<PeakRow>[] = [
  left('driver', (r) => r.driver),
  left('crypto', (r) => r.crypto),
  left('accel', (r) => r.accelerated),
  right('after size B', (r) => String(r.size)),
  right('node 1 peak RSS MB', (r) => fixed(r.bytes === undefined ? undefined : r.bytes / 1e6, 1)),
];

/** Node 1's peak after each size (the peak of a load of the sizes up to it), with the
 *  reference's; '' when no configuration recorded one (reports older than bySize). */
export function formatPeakBySizeTable(rows: readonly MemoryRow[]): string {
  const name = rows.find((r) => r.reference)?.reference?.driver;
  const peaks: PeakRow[] = rows.flatMap((r) => (r.bySize ?? []).map((p: PeakAfterSize) => {
    const ours = { driver: r.driver, crypto: r.crypto, accelerated: r.accelerated, size: p.size, bytes: p.node1Bytes };
    return name === undefined ? ours : { ...ours, reference: { driver: name, crypto: r.crypto, accelerated: '-', size: p.size, bytes: p.referenceNode1Bytes } };
  }));
  if (peaks.length === 0) return '';
  return formatTable(withRatios(PEAK_COLUMNS, peaks, 'node 1 peak RSS MB', [['', (r, ref) => times(r.bytes, ref.bytes)]]), withReferences(peaks));
}
