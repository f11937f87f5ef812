// The bench's options: parsed and validated from argv (pure; no I/O), with the defaults the
// issue asks for (`afcluster bench --drivers totem,cman --nodes 3 --seconds 3`).
import { intFlag, parseFlags, UsageError } from '../command.ts';
import { SIZE_MIN } from './client-protocol.ts';
import { CLIENTS, type ClientKind } from './cluster-clients.ts';
import { parseLoss } from './loss.ts';

export type OnOff = 'on' | 'off';

/** Implementations --reference can measure beside afcluster (tools/bench/reference.ts). */
export const REFERENCES = ['corosync'] as const;
export type ReferenceName = (typeof REFERENCES)[number];

export interface BenchOptions {
  readonly drivers: readonly string[];
  readonly nodes: number;
  /** Application message sizes in bytes, ascending, no duplicates. */
  readonly sizes: readonly number[];
  /** Measurement window per size (a warm-up comes before it). */
  readonly seconds: number;
  /** Round trips before the latency rows' samples count (s): a daemon's idle path warms up in its JIT first. */
  readonly latencyWarmup: number;
  /** --latency-paced MS: also an idle row per size whose round trips start every MS ms (absent: none). */
  readonly latencyPaced?: number;
  /** --rounds N: each throughput and latency row of the size table measured in N windows, taken
   *  in turns with the reference's. */
  readonly rounds: number;
  /** One or both settings: 'on,off' runs the whole matrix twice. */
  readonly crypto: readonly OnOff[];
  readonly accelerated: readonly OnOff[];
  readonly latency: boolean;
  readonly scaling: boolean;
  /** Node counts for --scaling (real daemons and the simulator). */
  readonly scaleNodes: readonly number[];
  /** Skip the raw UDP ceiling (ratios then print as '-'). */
  readonly ceiling: boolean;
  readonly json?: string;
  readonly svg?: string;
  /** Write a .cpuprofile of every daemon into this directory. */
  readonly profile?: string;
  /** Keep the daemons' directory (configs, logs) for inspection. */
  readonly keep: boolean;
  /** Message size of the --scaling runs. */
  readonly scaleSize: number;
  /** Also measure the same work on this implementation, interleaved (--reference corosync). */
  readonly reference?: ReferenceName;
  /** Extra driver config keys (`--set totem.window_size=100`), by section. */
  readonly driverSections: Readonly<Record<string, Readonly<Record<string, number | boolean | string>>>>;
  /** --loss: drop probabilities (ascending) to measure one sender at, instead of the size table. */
  readonly loss?: readonly number[];
  /** cluster.mtu of every daemon (absent: the config's default, "auto": loopback's 65535); the ceiling's datagrams follow it. */
  readonly mtu?: number;
  /** --reference-mtu: the reference's link MTU (absent: the daemons' MTU, so both use the same packets). */
  readonly referenceMtu?: number;
  /** --client: afcluster's rows with the TypeScript library's clients (ts, the default) or the C library's (c). */
  readonly client: ClientKind;
}

export const DEFAULT_SIZES: readonly number[] = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 65536];
export const NODES_MAX = 32;
export const SIZE_MAX = 1 << 20;
const LATENCY_WARMUP_DEFAULT_S = 3;
export const ROUNDS_MAX = 20;

export const BENCH_FLAGS = {
  drivers: { type: 'string' },
  nodes: { type: 'string' },
  sizes: { type: 'string' },
  seconds: { type: 'string' },
  'latency-warmup': { type: 'string' },
  'latency-paced': { type: 'string' },
  rounds: { type: 'string' },
  crypto: { type: 'string' },
  accelerated: { type: 'string' },
  latency: { type: 'boolean' },
  scaling: { type: 'boolean' },
  'scale-nodes': { type: 'string' },
  'no-ceiling': { type: 'boolean' },
  json: { type: 'string' },
  svg: { type: 'string' },
  profile: { type: 'string' },
  keep: { type: 'boolean' },
  'scale-size': { type: 'string' },
  set: { type: 'string', multiple: true },
  loss: { type: 'string' },
  reference: { type: 'string' },
  mtu: { type: 'string' },
  'reference-mtu': { type: 'string' },
  client: { type: 'string' },
} as const;

export function parseBenchArgs(argv: string[]): BenchOptions {
  const { values: v, positionals } = parseFlags(argv, BENCH_FLAGS, true);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const nodes = intFlag(v.nodes, 'nodes', 3, 2, NODES_MAX);
  return {
    drivers: parseDrivers(v.drivers),
    nodes,
    sizes: parseSizes(v.sizes),
    seconds: parseSeconds(v.seconds),
    latencyWarmup: parseLatencyWarmup(v['latency-warmup']),
    latencyPaced: parseLatencyPaced(v['latency-paced'], v.latency === true || v.reference !== undefined, v.loss !== undefined),
    rounds: parseRounds(v.rounds, v.loss !== undefined),
    crypto: parseOnOff(v.crypto, 'crypto', ['off']),
    accelerated: parseOnOff(v.accelerated, 'accelerated', ['off']),
    latency: v.latency === true,
    scaling: v.scaling === true,
    scaleNodes: parseNodeList(v['scale-nodes'], 'scale-nodes', [2, 3, 4, 5, 6, 7, 8]),
    ceiling: v['no-ceiling'] !== true,
    json: v.json,
    svg: v.svg,
    profile: v.profile,
    keep: v.keep === true,
    scaleSize: intFlag(v['scale-size'], 'scale-size', 1300, SIZE_MIN, SIZE_MAX),
    driverSections: parseSets(v.set ?? []),
    loss: v.loss === undefined ? undefined : parseLoss(v.loss),
    reference: parseReference(v.reference),
    client: parseClient(v.client),
    ...(v.mtu === undefined ? {} : { mtu: intFlag(v.mtu, 'mtu', 1500, 576, 65535) }),
    ...(v['reference-mtu'] === undefined ? {} : { referenceMtu: intFlag(v['reference-mtu'], 'reference-mtu', 1500, 576, 65535) }),
  };
}

export function parseClient(value: string | undefined): ClientKind {
  if (value === undefined) return 'ts';
  const c = CLIENTS.find((n) => n === value);
  if (!c) throw new UsageError(`--client ${value}: expected ${CLIENTS.join(' or ')} (the TypeScript library's client or the C library's)`);
  return c;
}

export function parseReference(value: string | undefined): ReferenceName | undefined {
  if (value === undefined) return undefined;
  const r = REFERENCES.find((n) => n === value);
  if (!r) throw new UsageError(`--reference ${value}: the reference implementations are ${REFERENCES.join(', ')}`);
  return r;
}

/** `section.key=value` items (each --set may hold a comma-separated list) into driver sections. */
export function parseSets(items: readonly string[]): Record<string, Record<string, number | boolean | string>> {
  const out: Record<string, Record<string, number | boolean | string>> = {};
  for (const item of items.flatMap((i) => splitList(i, 'set'))) {
    const m = /^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)=(.+)$/.exec(item);
    if (!m) throw new UsageError(`--set ${item}: expected section.key=value, e.g. totem.window_size=100`);
    const [, section, key, raw] = m;
    const value = raw === 'true' ? true : raw === 'false' ? false : /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
    (out[section] ??= {})[key] = value;
  }
  return out;
}

function splitList(value: string, name: string): string[] {
  const items = value.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw new UsageError(`--${name} ${value}: empty item in the comma-separated list`);
  return items;
}

export function parseDrivers(value: string | undefined): string[] {
  if (value === undefined) return ['totem', 'cman'];
  const names = splitList(value, 'drivers');
  for (const n of names) {
    if (!/^[a-z][a-z0-9_-]*$/.test(n)) throw new UsageError(`--drivers: "${n}" is not a driver name (lowercase letters, digits, - and _)`);
  }
  if (new Set(names).size !== names.length) throw new UsageError(`--drivers ${value}: a driver is listed twice`);
  return names;
}

export function parseSizes(value: string | undefined): number[] {
  if (value === undefined) return [...DEFAULT_SIZES];
  const sizes = splitList(value, 'sizes').map((s) => intFlag(s, 'sizes', 0, SIZE_MIN, SIZE_MAX));
  if (new Set(sizes).size !== sizes.length) throw new UsageError(`--sizes ${value}: a size is listed twice`);
  return sizes.sort((a, b) => a - b);
}

export function parseSeconds(value: string | undefined): number {
  if (value === undefined) return 3;
  const s = Number(value);
  if (!Number.isFinite(s) || s < 0.1 || s > 3600) throw new UsageError(`--seconds ${value}: expected a number of seconds from 0.1 to 3600`);
  return s;
}

/** Default 3 s: a daemon's idle round trips run slower while V8 optimises their path, for up to two seconds after a start or a load (docs/BENCH.md). */
export function parseLatencyWarmup(value: string | undefined): number {
  if (value === undefined) return LATENCY_WARMUP_DEFAULT_S;
  const s = Number(value);
  if (value.trim() === '' || !Number.isFinite(s) || s < 0 || s > 600) throw new UsageError(`--latency-warmup ${value}: expected a number of seconds from 0 to 600`);
  return s;
}

/** --latency-paced MS: 1 to 1000 whole milliseconds, where latency rows are measured (--latency or --reference, not --loss). */
export function parseLatencyPaced(value: string | undefined, latencyRows: boolean, loss: boolean): number | undefined {
  if (value === undefined) return undefined;
  const ms = Number(value);
  if (value.trim() === '' || !Number.isInteger(ms) || ms < 1 || ms > 1000) throw new UsageError(`--latency-paced ${value}: expected whole milliseconds from 1 to 1000`);
  if (!latencyRows || loss) throw new UsageError('--latency-paced adds latency rows: give it with --latency or --reference, and without --loss');
  return ms;
}

/** --rounds N: 1 to 20 windows per row of the size table (default 1); not with --loss, whose rows are compared with their own lossless row. */
export function parseRounds(value: string | undefined, loss: boolean): number {
  if (value === undefined) return 1;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1 || n > ROUNDS_MAX) {
    throw new UsageError(`--rounds ${value}: expected a whole number from 1 to ${ROUNDS_MAX}`);
  }
  if (loss) throw new UsageError('--rounds applies to the size table: give it without --loss');
  return n;
}

export function parseOnOff(value: string | undefined, name: string, fallback: OnOff[]): OnOff[] {
  if (value === undefined) return fallback;
  const items = splitList(value, name);
  for (const i of items) {
    if (i !== 'on' && i !== 'off') throw new UsageError(`--${name} ${value}: expected on, off or on,off`);
  }
  if (new Set(items).size !== items.length) throw new UsageError(`--${name} ${value}: a setting is listed twice`);
  return items as OnOff[];
}

export function parseNodeList(value: string | undefined, name: string, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  const ns = splitList(value, name).map((s) => intFlag(s, name, 0, 2, NODES_MAX));
  return [...new Set(ns)].sort((a, b) => a - b);
}
