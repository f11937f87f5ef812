// Keeps the daemon's resident memory near what it holds alive. Under load the message path
// allocates a few buffers per message (a received datagram, a reassembled message, frames,
// events: see docs/BENCH.md, memory); they die at once, but their bytes live outside V8's heap
// and V8 starts a full collection only once the heap itself grows, which a daemon whose live
// heap is 10 to 20 MB rarely does: dead buffers piled up to 300-500 MB before the collector ran.
// The governor samples the bytes of live and dead ArrayBuffers a few times a second and, when
// they have grown by `stepBytes` since the last collection, asks V8 for one (a full one, which
// frees the buffers' bytes; incremental when V8 offers it, so the pause is short), and once
// more when a load has stopped (`settleMs` without growth) and some are left, so an idle daemon
// goes back to its idle size. Under load it is a backstop, not a pace: collections cost the
// message path (measured: a step of 16 MiB took a quarter of the throughput of 1 MiB messages
// for 10 MB less peak), so the step is large. Idle, the count does not grow and nothing runs.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface MemoryGovernorOptions {
  /** How often to sample (ms). */
  readonly checkMs: number;
  /** Growth of ArrayBuffer bytes since the last collection that starts the next one. */
  readonly stepBytes: number;
  /** No growth for this long after a load: one collection if more than `settleBytes` are left. */
  readonly settleMs: number;
  readonly settleBytes: number;
}

const MiB = 1024 * 1024;
export const MEMORY_GOVERNOR_DEFAULTS: MemoryGovernorOptions = { checkMs: 100, stepBytes: 64 * MiB, settleMs: 2000, settleBytes: 2 * MiB };

type GcFunction = (opts?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => Promise<void> | void;

/** V8's gc(), exposed at run time (the flag may also be given on the command line). */
function exposeGc(): GcFunction | undefined {
  const g = (globalThis as { gc?: GcFunction }).gc;
  if (g) return g;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as GcFunction;
  } catch {
    return undefined;
  }
}

export interface MemoryGovernor {
  stop(): void;
  /** For STATS: collections it started. */
  stats(): Record<string, number>;
}

export function startMemoryGovernor(opts: MemoryGovernorOptions = MEMORY_GOVERNOR_DEFAULTS): MemoryGovernor {
  const gc = exposeGc();
  const counters = { gcRuns: 0, gcFloorBytes: 0, gcLastMs: 0, gcMaxMs: 0 };
  if (!gc) return { stop: () => undefined, stats: () => ({ 'process.gcRuns': 0 }) };
  let floor = process.memoryUsage().arrayBuffers;
  /** The least ever left after a collection: what an idle daemon holds. */
  let idleFloor = floor;
  let last = floor;
  let grewAt = performance.now();
  /** The settling collection ran since the last growth. */
  let settledDone = true;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    const ab = process.memoryUsage().arrayBuffers;
    const now = performance.now();
    if (ab > last) { grewAt = now; settledDone = false; }
    last = ab;
    if (ab < floor) floor = ab;
    const settle = !settledDone && now - grewAt >= opts.settleMs && ab - idleFloor > opts.settleBytes;
    if (settle) settledDone = true;
    if (ab - floor < opts.stepBytes && !settle) return;
    counters.gcRuns++;
    running = true;
    const t0 = performance.now();
    const done = (): void => {
      counters.gcLastMs = performance.now() - t0;
      counters.gcMaxMs = Math.max(counters.gcMaxMs, counters.gcLastMs);
      running = false;
      floor = last = process.memoryUsage().arrayBuffers;
      idleFloor = Math.min(idleFloor, floor);
      counters.gcFloorBytes = floor;
    };
    try {
      const r = gc({ type: 'major', execution: 'async' });
      if (r && typeof r.then === 'function') r.then(done, done); else done();
    } catch {
      done();
    }
  }, opts.checkMs);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    stats: () => ({ 'process.gcRuns': counters.gcRuns, 'process.gcFloorBytes': counters.gcFloorBytes, 'process.gcLastMs': counters.gcLastMs, 'process.gcMaxMs': counters.gcMaxMs }),
  };
}
