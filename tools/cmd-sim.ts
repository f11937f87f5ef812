// `afcluster sim`: runs drivers in the deterministic simulator over a range of seeds and checks
// the extended virtual synchrony properties; every failure prints a command that replays it.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { builtinRegistry } from '../drivers/builtin.ts';
import type { DriverRegistry } from '../core/driver/registry.ts';
import type { DriverEntry } from '../core/driver/types.ts';
import { ALL_PROPERTIES, propertiesFor, type Property } from '../sim/checker.ts';
import { formatEvent, formatFault } from '../sim/log.ts';
import { FAULT_MIXES, runSeed, type FaultMix, type SeedResult } from '../sim/scenario.ts';
import { runWholeNodeSeed } from '../sim/whole-node.ts';
import { floodDriver } from '../sim/testdrivers/flood.ts';
import { nullDriver } from '../sim/testdrivers/null.ts';
import { sequencerDriver } from '../sim/testdrivers/sequencer.ts';
import { intFlag, parseFlags, UsageError, type Command } from './command.ts';
import { issueLines } from '../core/config/describe.ts';
import type { z } from 'zod';
import { DAEMON_ENTRY } from './local-cluster.ts';
import { formatLossRow, lossCurve, LOSS_CURVE_HEADER } from './bench/sim-loss.ts';
import { UDP_PAYLOAD_AT_MTU_1500 } from './bench/ceiling.ts';
import { HEADER_BYTES as SEALER_HEADER_BYTES } from '../core/crypto/sealer.ts';

/** The drivers a swarm runs as whole nodes by default (the product's drivers). */
const WHOLE_NODE_DRIVERS = new Set(['totem', 'cman']);

const HELP = `usage: afcluster sim --driver NAME [--seeds A-B] [--nodes N] [--swarm] [--faults none|loss|all|pause]
                     [--check declared|evs|PROPERTY,...] [--opt KEY=VALUE]... [--time-scale MS]
                     [--jobs N] [--whole-node | --driver-only] [--verbose]
       afcluster sim --loss-curve [--driver totem,cman] [--loss 0,1,5,10,20,40]
                     [--sizes 100,1300,65536] [--window MS] [--pings N] [--opt KEY=VALUE]...

Runs whole clusters of a driver in one process on a virtual clock, one run per seed: a safety
phase under the fault mix, then a liveness phase on a healed network with every node back up, in
which the cluster must converge to one configuration and deliver what is sent. The per-node logs
are then checked against the extended virtual synchrony properties (docs/TOTEM.md; Moser et
al., "Extended virtual synchrony", 1994), availability (sim/availability.ts) and quorum
(sim/quorum-check.ts). A seed replays exactly.

options:
  --driver NAME      a registered driver (totem, cman; test drivers: flood, null, sequencer)
  --seeds A-B        seed range, inclusive (default 1-100); one seed: --seeds 42-42 or --seeds 42
  --nodes N          cluster size (default 3; ignored with --swarm)
  --swarm            draw cluster size (2..12), fault mix (unless --faults; pause on 1 seed in 5)
                     and rates per seed
  --faults MIX       none: a perfect network; loss: loss, duplication, reordering up to ~30%;
                     all (default): also partitions, asymmetric cuts, clogs and swizzle-clogs,
                     crashes with restarts, pauses; pause: on a loss-free network, one fault at a
                     time: a pause of 1.0-1.6x the failure detection time (totem: token_ms +
                     consensus_ms) on any node, a crash and restart, or a clean partition, each
                     undone and settled before the next (where availability is judged)
  --check WHAT       declared (default): the properties the driver's guarantees promise;
                     evs: every property, to show what a weaker driver breaks; or a comma-separated
                     list of properties (${ALL_PROPERTIES.join(', ')})
  --opt KEY=VALUE    a driver option, as in its config section (e.g. --opt token_ms=200)
  --time-scale MS    the protocol time unit phases scale with (default: the driver's largest *_ms option)
  --jobs N           run the seeds in N processes at once (default: the number of CPUs when
                     there are at least 200 seeds, else 1); the output is the same as with one
  --whole-node       run whole nodes: on every host the real group layer and bridge state
                     machine over the driver, with simulated client processes speaking the
                     bridge protocol (bind, send, close, die, stop reading, rebind); the
                     group-level checker judges what the clients saw (views by id, failure
                     atomicity, one order, no duplicates, survivors in one final view).
                     The default with --swarm for totem and cman
  --driver-only      the driver alone under the checker of its configurations and messages
                     (the default without --swarm, and for the test drivers)
  --verbose          print the fault schedule, every event, driver logs and full violations
                     (implies --jobs 1)

--loss-curve measures instead of checking: one sender (node 1) in a group of --nodes (default 3)
on the modelled 1 Gbit LAN of \`afcluster bench --scaling\`, every datagram copy dropped at
random with each --loss probability (percent). Per driver, size and loss rate, one markdown row:
messages (16 B or more) and MB per virtual second (node 1 kept saturated for --window virtual ms, default
2000), the share of the lossless rate, datagram copies on the wire per delivered message, the
latency of a lone message, 20 ms after the previous one, to its delivery at every node (--pings of them, default 200, median
and p99), and the regular configurations the loss caused (docs/BENCH.md, "Loss").

Output: one line per failing seed (seed, property, message, replay command), then
"N seeds, N violations" (violations: every violation found, at most 5 per property per seed).
Exit status 1 when any seed fails.`;

function simRegistry(): DriverRegistry {
  const registry = builtinRegistry();
  for (const d of [floodDriver, nullDriver, sequencerDriver] as DriverEntry<unknown>[]) if (!registry.has(d.name)) registry.register(d);
  return registry;
}

export function parseSeeds(spec: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(spec);
  if (!m) throw new UsageError(`--seeds ${spec}: expected A-B or A (non-negative integers)`);
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a) {
    throw new UsageError(`--seeds ${spec}: expected A-B with A <= B`);
  }
  return [a, b];
}

function parseOpts(list: string[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--opt ${item}: expected KEY=VALUE`);
    const raw = item.slice(eq + 1);
    out[item.slice(0, eq)] = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
  }
  return out;
}

function oneOf<T extends string>(value: string | undefined, name: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${name} ${value}: expected one of ${allowed.join(', ')}`);
  return value as T;
}

/** --check: declared, evs, or a comma-separated list of property names. */
function checkedProperties(mode: string, driver: DriverEntry<unknown>): readonly Property[] {
  if (mode === 'declared') return propertiesFor(driver.guarantees);
  if (mode === 'evs') return ALL_PROPERTIES;
  const list = mode.split(',');
  for (const p of list) {
    if (!(ALL_PROPERTIES as readonly string[]).includes(p)) {
      throw new UsageError(`--check ${mode}: ${p} is not a property; expected declared, evs or some of ${ALL_PROPERTIES.join(', ')}`);
    }
  }
  return list as Property[];
}

function replayCommand(argvFor: (seed: number) => string[], seed: number): string {
  return ['afcluster', 'sim', ...argvFor(seed)].join(' ');
}

function printVerbose(r: SeedResult, notes: string[], driverLog: string[]): void {
  for (const n of notes) console.log(`# ${n}`);
  for (const e of r.sim.events()) console.log(formatEvent(e));
  for (const f of r.sim.faults()) console.log(`fault ${formatFault(f)}`);
  for (const l of driverLog) console.log(`log ${l}`);
  console.log(`# stats ${JSON.stringify(r.stats)} virtual ${r.virtualMs.toFixed(1)} ms trace ${r.traceHash}`);
  for (const v of r.violations) {
    console.log(`# violation ${v.property}: ${v.message} (nodes ${v.nodes.join(',')})`);
    for (const e of v.events) console.log(`#   ${e}`);
  }
}

/**
 * Splits seeds from..to into chunks and runs each in its own `afcluster sim --jobs 1` process,
 * at most `jobs` at a time. A chunk's failing-seed lines are printed when it ends (each names its
 * seed and replay command); its summary line is added up. A child that ends any other way than
 * with its summary and status 0 or 1 is an error, never a silent pass.
 */
async function runInProcesses(childArgs: string[], from: number, to: number, jobs: number): Promise<{ violations: number; failed: number }> {
  const size = Math.max(20, Math.ceil((to - from + 1) / (jobs * 8)));
  const chunks: [number, number][] = [];
  for (let a = from; a <= to; a += size) chunks.push([a, Math.min(to, a + size - 1)]);
  let violations = 0;
  let failed = 0;
  const runChunk = ([a, b]: [number, number]): Promise<void> => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-semi-space-size=2', DAEMON_ENTRY, 'sim', ...childArgs, '--seeds', `${a}-${b}`, '--jobs', '1'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let summary: { seeds: number; violations: number } | undefined;
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^(\d+) seeds, (\d+) violations$/.exec(line);
      if (m) summary = { seeds: Number(m[1]), violations: Number(m[2]) };
      else lines.push(line);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      for (const l of lines) console.log(l);
      if ((code !== 0 && code !== 1) || summary?.seeds !== b - a + 1) {
        reject(new Error(`sim of seeds ${a}-${b} ended with ${signal ?? `status ${code}`}${summary ? '' : ' before its summary'}`));
        return;
      }
      violations += summary.violations;
      failed += lines.filter((l) => l.startsWith('seed ')).length;
      resolve();
    });
  });
  let next = 0;
  const worker = async (): Promise<void> => { while (next < chunks.length) await runChunk(chunks[next++]); };
  await Promise.all(Array.from({ length: Math.min(jobs, chunks.length) }, worker));
  return { violations, failed };
}

/** --loss-curve: the throughput and latency of one sender by loss rate, in virtual time. */
function runLossCurve(values: Record<string, string | boolean | string[] | undefined>): number {
  const registry = simRegistry();
  const names = typeof values.driver === 'string' ? values.driver.split(',') : ['totem', 'cman'];
  const drivers = names.map((n) => registry.get(n));
  const list = (v: unknown, name: string, fallback: number[]) => (typeof v === 'string' ? v.split(',').map((x) => {
    const n = Number(x);
    if (x.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`--${name} ${v}: expected a comma-separated list of non-negative numbers`);
    return n;
  }) : fallback);
  const losses = list(values.loss, 'loss', [0, 1, 5, 10, 20, 40]);
  if (losses.some((l) => l >= 100)) throw new UsageError(`--loss ${String(values.loss)}: percentages below 100`);
  const sizes = list(values.sizes, 'sizes', [100, 1300, 65536]).map((n) => intFlag(String(n), 'sizes', 0, 16, 1 << 20));
  const opts = parseOpts(values.opt as string[] | undefined);
  console.log(`# afcluster sim --loss-curve: ${names.join(',')}, ${intFlag(values.nodes as string | undefined, 'nodes', 3, 2, 64)} nodes, one sender, 1 Gbit LAN model, virtual time`);
  console.log(LOSS_CURVE_HEADER);
  lossCurve({
    drivers, driverOptions: opts, losses: losses.map((l) => l / 100), sizes, nodes: intFlag(values.nodes as string | undefined, 'nodes', 3, 2, 64),
    windowMs: intFlag(values.window as string | undefined, 'window', 2000, 10, 600_000), pings: intFlag(values.pings as string | undefined, 'pings', 200, 0, 100_000),
    seed: 20040, mtu: UDP_PAYLOAD_AT_MTU_1500 - SEALER_HEADER_BYTES,
  }, (r, lossless) => console.log(formatLossRow(r, lossless)));
  return 0;
}

export const command: Command = {
  name: 'sim',
  summary: 'run a driver in the deterministic simulator and check virtual synchrony',
  help: HELP,
  async run(argv) {
    const { values } = parseFlags(argv, {
      driver: { type: 'string' }, seeds: { type: 'string' }, nodes: { type: 'string' }, swarm: { type: 'boolean' },
      faults: { type: 'string' }, check: { type: 'string' }, opt: { type: 'string', multiple: true },
      'time-scale': { type: 'string' }, verbose: { type: 'boolean' }, jobs: { type: 'string' }, 'whole-node': { type: 'boolean' },
      'driver-only': { type: 'boolean' },
      'loss-curve': { type: 'boolean' }, loss: { type: 'string' }, sizes: { type: 'string' }, window: { type: 'string' }, pings: { type: 'string' },
    });
    if (values['loss-curve']) return runLossCurve(values);
    for (const f of ['loss', 'sizes', 'window', 'pings'] as const) {
      if (values[f] !== undefined) throw new UsageError(`--${f} goes with --loss-curve`);
    }
    if (!values.driver) throw new UsageError('--driver NAME is required');
    const driver = simRegistry().get(values.driver);
    if (values['whole-node'] && values['driver-only']) throw new UsageError('--whole-node and --driver-only exclude each other');
    const listed = values.check !== undefined && values.check !== 'declared' && values.check !== 'evs';
    if (values['whole-node'] && listed) {
      throw new UsageError('--check with a list of properties judges the driver alone: use it with --driver-only (whole nodes take declared or evs)');
    }
    // Whole nodes are what clients run, so a swarm judges them unless told otherwise; the test
    // drivers (and property lists) are about the driver alone.
    const wholeNode = values['whole-node'] === true
      || (values.swarm === true && values['driver-only'] !== true && !listed && WHOLE_NODE_DRIVERS.has(driver.name));
    const [from, to] = parseSeeds(values.seeds ?? '1-100');
    const nodes = intFlag(values.nodes, 'nodes', 3, 1, 64);
    const faults = oneOf<FaultMix>(values.faults, 'faults', FAULT_MIXES);
    const checkMode = values.check ?? 'declared';
    const driverOptions = parseOpts(values.opt);
    const timeScaleMs = values['time-scale'] === undefined ? undefined : intFlag(values['time-scale'], 'time-scale', 0, 1);
    const swarm = values.swarm === true;
    const properties = checkedProperties(checkMode, driver);
    const checked = driver.optionsSchema.safeParse(driverOptions);
    if (!checked.success) {
      const lines = issueLines('--opt', [], driver.optionsSchema as z.ZodType, driverOptions, checked.error.issues);
      throw new UsageError(`not valid options for ${driver.name} (its [${driver.name}] keys, docs/CONFIG.md):\n${lines.join('\n')}`);
    }
    const argvFor = (seed: number) => [
      '--driver', driver.name, '--seeds', `${seed}-${seed}`,
      ...(swarm ? ['--swarm'] : ['--nodes', String(nodes)]),
      ...(faults ? ['--faults', faults] : swarm ? [] : ['--faults', 'all']),
      ...(checkMode === 'declared' ? [] : ['--check', checkMode]),
      ...(values.opt ?? []).flatMap((o) => ['--opt', o]),
      ...(timeScaleMs ? ['--time-scale', String(timeScaleMs)] : []),
      ...(wholeNode ? ['--whole-node'] : swarm ? ['--driver-only'] : []),
      '--verbose',
    ];
    const count = to - from + 1;
    const jobs = values.verbose ? 1 : intFlag(values.jobs, 'jobs', count >= 200 ? availableParallelism() : 1, 1, 64);
    if (jobs > 1 && count > 1) {
      const childArgs = [
        '--driver', driver.name,
        ...(swarm ? ['--swarm'] : ['--nodes', String(nodes)]),
        ...(faults ? ['--faults', faults] : []),
        '--check', checkMode,
        ...(values.opt ?? []).flatMap((o) => ['--opt', o]),
        ...(timeScaleMs ? ['--time-scale', String(timeScaleMs)] : []),
        ...(wholeNode ? ['--whole-node'] : swarm ? ['--driver-only'] : []),
      ];
      const r = await runInProcesses(childArgs, from, to, jobs);
      console.log(`${count} seeds, ${r.violations} violations`);
      return r.failed > 0 ? 1 : 0;
    }
    let violations = 0;
    let failed = 0;
    for (let seed = from; seed <= to; seed++) {
      const notes: string[] = [];
      const driverLog: string[] = [];
      if (wholeNode) {
        const r = runWholeNodeSeed({
          driver, seed, nodes, swarm, faults, driverOptions, timeScaleMs, check: checkMode === 'evs' ? 'evs' : 'declared', onNote: values.verbose ? (l) => notes.push(l) : undefined,
        });
        if (values.verbose) for (const n of notes) console.log(`# ${n}`);
        if (values.verbose) console.log(`# ${r.clients} clients, ${r.report?.messages ?? 0} messages, virtual ${r.virtualMs.toFixed(1)} ms, trace ${r.traceHash}`);
        violations += r.violations.length;
        if (r.violations.length === 0) continue;
        failed++;
        const more = r.violations.length > 1 ? ` (+${r.violations.length - 1} more)` : '';
        console.log(`seed ${seed}: ${r.violations[0].property}: ${r.violations[0].message}${more}  replay: ${replayCommand(argvFor, seed)}`);
        continue;
      }
      const r = runSeed({
        driver, seed, nodes, swarm, faults, properties, driverOptions, timeScaleMs,
        onNote: values.verbose ? (l) => notes.push(l) : undefined,
        onDriverLog: values.verbose ? (l) => driverLog.push(l) : undefined,
      });
      if (values.verbose) printVerbose(r, notes, driverLog);
      violations += r.violations.length;
      if (r.violations.length === 0) continue;
      failed++;
      const v = r.violations[0];
      const more = r.violations.length > 1 ? ` (+${r.violations.length - 1} more)` : '';
      console.log(`seed ${seed}: ${v.property}: ${v.message}${more}  replay: ${replayCommand(argvFor, seed)}`);
    }
    console.log(`${count} seeds, ${violations} violations`);
    return failed > 0 ? 1 : 0;
  },
};
