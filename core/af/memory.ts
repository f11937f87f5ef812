// Keeps the daemon's resident memory near what it holds alive. Under load the message path
// allocates a few buffers per message (a received datagram, a reassembled message, frames,
// events: see docs/BENCH.md, memory); they die at once, but their bytes live outside V8's heap
// and V8 starts a full collection only once the heap itself grows, which a daemon whose live
// heap is 10 to 20 MB rarely does: dead buffers piled up to 300-500 MB before the collector ran.
// The governor samples the bytes of live and dead ArrayBuffers a few times a second and, when
// they have grown by `stepBytes` since the last collection, asks V8 for one (a full one, which
// frees the buffers' bytes; incremental when V8 offers it, so the pause is short). Idle, the
// count does not grow and nothing runs.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface MemoryGovernorOptions {
  /** How often to sample (ms). */
  readonly checkMs: number;
  /** Growth of ArrayBuffer bytes since the last collection that starts the next one. */
  readonly stepBytes: number;
}

export const MEMORY_GOVERNOR_DEFAULTS: MemoryGovernorOptions = { checkMs: 50, stepBytes: 16 * 1024 * 1024 };

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
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    const ab = process.memoryUsage().arrayBuffers;
    if (ab < floor) floor = ab;
    if (ab - floor < opts.stepBytes) return;
    counters.gcRuns++;
    running = true;
    const t0 = performance.now();
    const done = (): void => {
      counters.gcLastMs = performance.now() - t0;
      counters.gcMaxMs = Math.max(counters.gcMaxMs, counters.gcLastMs);
      running = false;
      floor = process.memoryUsage().arrayBuffers;
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
