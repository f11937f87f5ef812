// Keeps the daemon's resident memory near what it holds alive. Under load the message path
// allocates a few buffers per message (a received datagram, a reassembled message, frames,
// events: see docs/BENCH.md, memory); they die at once, but their bytes live outside V8's heap
// and V8 collects them only once its own heap grows (which a daemon whose live heap is 10 to
// 20 MB rarely does) or their bytes grow by about 64 MB: that much garbage sat on top of what
// was alive, in a daemon whose idle size is about 63 MB.
// The governor samples the bytes of live and dead ArrayBuffers every few tens of milliseconds
// and, each `minorStepBytes` of growth, asks V8 for a young-generation collection: most
// per-message buffers die young, and a scavenge (about a millisecond) frees them (their bytes
// are swept concurrently, just after). Buffers that lived long enough to be promoted are only
// freed by a full collection: one when the bytes have grown by `stepBytes` since the last, and
// one when a load has stopped (`settleMs` without growth) and some are left, so an idle daemon
// goes back towards its idle size. Full collections are a backstop, not a pace: as the pace
// (every 16 MiB) they took a quarter of the throughput of 1 MiB messages for 10 MB less peak
// (docs/BENCH.md). Idle, the count does not grow and nothing runs.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface MemoryGovernorOptions {
  /** How often to sample (ms). */
  readonly checkMs: number;
  /** Growth of ArrayBuffer bytes since the last collection that starts the next one (a full one). */
  readonly stepBytes: number;
  /** Growth since the last collection that starts a young-generation one (0: never). */
  readonly minorStepBytes: number;
  /** No growth for this long after a load: one collection if more than `settleBytes` are left. */
  readonly settleMs: number;
  readonly settleBytes: number;
}

const MiB = 1024 * 1024;
export const MEMORY_GOVERNOR_DEFAULTS: MemoryGovernorOptions = {
  checkMs: 20, stepBytes: 64 * MiB, minorStepBytes: 8 * MiB, settleMs: 2000, settleBytes: 2 * MiB,
};

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

/** What the governor decides at one sample (pure): a full collection, a young one, or nothing. */
export function decide(g: GovernorState, ab: number, now: number, opts: MemoryGovernorOptions): 'major' | 'minor' | undefined {
  if (ab > g.last) { g.grewAt = now; g.settledDone = false; }
  g.last = ab;
  g.majorFloor = Math.min(g.majorFloor, ab);
  g.minorFloor = Math.min(g.minorFloor, ab);
  const settle = !g.settledDone && now - g.grewAt >= opts.settleMs && ab - g.idleFloor > opts.settleBytes;
  if (settle) g.settledDone = true;
  if (settle || ab - g.majorFloor >= opts.stepBytes) return 'major';
  if (opts.minorStepBytes > 0 && ab - g.minorFloor >= opts.minorStepBytes) {
    g.minorFloor = ab; // its bytes are swept concurrently: the count drops at a later sample
    return 'minor';
  }
  return undefined;
}

export interface GovernorState {
  /** ArrayBuffer bytes at the last full collection, and at the last collection of either kind. */
  majorFloor: number;
  minorFloor: number;
  /** The least ever left after a full collection: what an idle daemon holds. */
  idleFloor: number;
  last: number;
  grewAt: number;
  /** The settling collection ran since the last growth. */
  settledDone: boolean;
}

export function startMemoryGovernor(opts: MemoryGovernorOptions = MEMORY_GOVERNOR_DEFAULTS): MemoryGovernor {
  const gc = exposeGc();
  const counters = { gcRuns: 0, minorRuns: 0, gcFloorBytes: 0, gcLastMs: 0, gcMaxMs: 0 };
  if (!gc) return { stop: () => undefined, stats: () => ({ 'process.gcRuns': 0 }) };
  const ab0 = process.memoryUsage().arrayBuffers;
  const g: GovernorState = { majorFloor: ab0, minorFloor: ab0, idleFloor: ab0, last: ab0, grewAt: performance.now(), settledDone: true };
  let running = false;
  const major = (): void => {
    counters.gcRuns++;
    running = true;
    const t0 = performance.now();
    const done = (): void => {
      counters.gcLastMs = performance.now() - t0;
      counters.gcMaxMs = Math.max(counters.gcMaxMs, counters.gcLastMs);
      running = false;
      g.majorFloor = g.minorFloor = g.last = process.memoryUsage().arrayBuffers;
      g.idleFloor = Math.min(g.idleFloor, g.majorFloor);
      counters.gcFloorBytes = g.majorFloor;
    };
    try {
      const r = gc({ type: 'major', execution: 'async' });
      if (r && typeof r.then === 'function') r.then(done, done); else done();
    } catch {
      done();
    }
  };
  const timer = setInterval(() => {
    if (running) return;
    const what = decide(g, process.memoryUsage().arrayBuffers, performance.now(), opts);
    if (what === 'major') major();
    else if (what === 'minor') {
      counters.minorRuns++;
      try { void gc({ type: 'minor' }); } catch { /* not offered */ }
    }
  }, opts.checkMs);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    stats: () => ({
      'process.gcRuns': counters.gcRuns, 'process.gcMinorRuns': counters.minorRuns, 'process.gcFloorBytes': counters.gcFloorBytes,
      'process.gcLastMs': counters.gcLastMs, 'process.gcMaxMs': counters.gcMaxMs,
    }),
  };
}
