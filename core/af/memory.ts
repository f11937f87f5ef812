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
// freed by a full collection: one when the bytes have grown by `stepBytes` since the last (at
// most one a second, `majorMinIntervalMs`), and one when a load has stopped (`settleMs` without
// growth) and some are left, so an idle daemon goes back towards its idle size. The message
// path's large buffers go back as their holders let go (core/wire/lease.ts); what still grows is
// what is left to V8 (small frames cut from a shared slab, tokens, datagrams nobody anchored): a
// few MB a load, which piled up from load to load until the step was 4 MiB (it was 64, and its
// full collections every 16 MiB had taken a quarter of 1 MiB messages' throughput, when every
// buffer waited for V8: docs/BENCH.md). A collection asked for this way is not quite V8's own:
// it also drops every object shape with no object alive at that moment, and the optimised code
// that met it; the shapes the message path makes per datagram are kept alive for that
// (core/transport/shapes.ts, the wire's Reader and Writer). Idle, the count barely grows (an idle
// ring's tokens: a few KiB a second) and no collection runs.
// What the collections free goes back to the C library's allocator, not to the kernel: glibc
// returns only the top of its heap, and between the freed buffers of a load sit small blocks that
// live on, so a daemon that carried 64 KiB messages kept 40 to 80 MB it no longer used. Once a
// load has settled and the ArrayBuffer bytes it moved since the last trim reach `trimBytes`, the
// governor calls malloc_trim (core/native), which returns every free page to the kernel; it also
// does once the start has settled. An idle daemon's few KiB a second add up to trimBytes too, so
// it trims about once in a quarter of an hour. Each such trim has one follow-up `trimFollowUpMs`
// later, once quiet: the sweeper may free a load's last buffers after the first trim (half a
// minute after a load, a daemon held 27 MB that a malloc_trim then gave back: free in glibc's heap).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadNative } from '../native/index.ts';

export interface MemoryGovernorOptions {
  /** How often to sample (ms). */
  readonly checkMs: number;
  /** How often to sample once the daemon is quiet (quiet()); activity() goes back to checkMs. */
  readonly idleCheckMs: number;
  /** Growth of ArrayBuffer bytes since the last collection that starts the next one (a full one). */
  readonly stepBytes: number;
  /** A full collection for growth (stepBytes) at most once in this long (0: no bound). */
  readonly majorMinIntervalMs: number;
  /** Growth since the last collection that starts a young-generation one (0: never). */
  readonly minorStepBytes: number;
  /** No growth for this long after a load: one collection if more than `settleBytes` are left. */
  readonly settleMs: number;
  readonly settleBytes: number;
  /** A rise of at most this is not growth (an idle ring's tokens take a few KiB a second). */
  readonly quietBytes: number;
  /** ArrayBuffer growth summed since the last trim that makes a settled daemon trim (0: never). */
  readonly trimBytes: number;
  /** After such a trim, one more this long after it, once quiet (0: none): what is freed after
   *  the first (buffers the sweeper frees late, compilers' zones) goes back too. */
  readonly trimFollowUpMs: number;
}

const MiB = 1024 * 1024;
export const MEMORY_GOVERNOR_DEFAULTS: MemoryGovernorOptions = {
  checkMs: 20, idleCheckMs: 250, stepBytes: 4 * MiB, majorMinIntervalMs: 1000, minorStepBytes: 8 * MiB, settleMs: 2000, settleBytes: 2 * MiB, quietBytes: MiB / 4, trimBytes: 16 * MiB, trimFollowUpMs: 10_000,
};

/** glibc's thresholds while the governor trims (mallocTune): free memory at the top of the heap
 *  kept up to this, the heap grown by this much more each time, and buffers up to this size taken
 *  from the heap (above it, mapped on their own). */
const MALLOC_TRIM_THRESHOLD = 64 * MiB;
const MALLOC_TOP_PAD = 16 * MiB;
const MALLOC_MMAP_THRESHOLD = 4 * MiB;

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
  /** Messages are moving (the daemon calls it per delivery): sample at checkMs again if quiet. */
  activity(): void;
  /** For STATS: collections it started. */
  stats(): Record<string, number>;
}

/**
 * What the governor decides at one sample (pure): a full collection, a young one, a trim or
 * nothing. A trim comes once a load has settled (after the settling collection, if there was one,
 * at the first sample at which the collection's sweep stopped lowering the count).
 */
export function decide(g: GovernorState, ab: number, now: number, opts: MemoryGovernorOptions): 'major' | 'minor' | 'trim' | undefined {
  const falling = ab < g.last;
  if (ab > g.last) g.churn += ab - g.last;
  g.quietBase = Math.min(g.quietBase, ab);
  if (ab - g.quietBase > opts.quietBytes) { g.grewAt = now; g.settledDone = false; g.quietBase = ab; }
  g.last = ab;
  g.majorFloor = Math.min(g.majorFloor, ab);
  g.minorFloor = Math.min(g.minorFloor, ab);
  const settled = !g.settledDone && now - g.grewAt >= opts.settleMs;
  if (settled) g.settledDone = true;
  // Due once settled and enough has come and gone, also when the churn gets there after the
  // settling (an idle ring's small rises add up without ever counting as growth).
  if (g.settledDone && opts.trimBytes > 0 && g.churn >= opts.trimBytes) g.trimDue = true;
  const stepDue = ab - g.majorFloor >= opts.stepBytes && now - g.majorAt >= opts.majorMinIntervalMs;
  if ((settled && ab - g.idleFloor > opts.settleBytes) || stepDue) {
    g.majorAt = now;
    return 'major';
  }
  if (g.trimDue && !falling && now - g.grewAt >= opts.settleMs) {
    g.trimDue = false;
    g.churn = 0;
    if (opts.trimFollowUpMs > 0) g.followUpAt = now + opts.trimFollowUpMs;
    return 'trim';
  }
  if (now >= g.followUpAt && !falling && now - g.grewAt >= opts.settleMs) {
    g.followUpAt = Infinity;
    return 'trim';
  }
  if (opts.minorStepBytes > 0 && ab - g.minorFloor >= opts.minorStepBytes) {
    g.minorFloor = ab; // its bytes are swept concurrently: the count drops at a later sample
    return 'minor';
  }
  return undefined;
}

/** Nothing is due, nor will be without growth: the load (if any) has settled and its collection
 *  run, no trim is waiting. The governor then samples at idleCheckMs, not checkMs: an idle
 *  daemon woke 50 times a second for it, about 0.8% of a core (the wake and the reading of
 *  /proc/self/stat), more than the rest of its idle work. */
export function quiet(g: GovernorState, now: number, opts: MemoryGovernorOptions): boolean {
  return g.settledDone && !g.trimDue && now - g.grewAt >= opts.settleMs;
}

export interface GovernorState {
  /** ArrayBuffer bytes at the last full collection, and at the last collection of either kind. */
  majorFloor: number;
  /** When the last full collection was asked for (-Infinity: never). */
  majorAt: number;
  minorFloor: number;
  /** The least ever left after a full collection: what an idle daemon holds. */
  idleFloor: number;
  last: number;
  grewAt: number;
  /** The count at the last growth, or the least since: growth is a rise of over quietBytes above it. */
  quietBase: number;
  /** The settling collection ran since the last growth. */
  settledDone: boolean;
  /** ArrayBuffer growth summed since the last trim, and whether one is due. */
  churn: number;
  trimDue: boolean;
  /** When the follow-up of the last trim is due (Infinity: none). */
  followUpAt: number;
}

/** The state a governor starts from (`ab0` ArrayBuffer bytes at `now`). A first trim is due once
 *  the start has settled: what starting up allocated and let go (the modules, the crypto library's
 *  set-up) goes back to the kernel too, since glibc keeps it from mallocTune on (an idle daemon
 *  with a key stayed at about 92 MB, 68 MB with it). */
export function initialState(ab0: number, now: number, opts: MemoryGovernorOptions): GovernorState {
  return { majorFloor: ab0, majorAt: -Infinity, minorFloor: ab0, idleFloor: ab0, last: ab0, grewAt: now, quietBase: ab0, settledDone: true, churn: 0, trimDue: opts.trimBytes > 0, followUpAt: Infinity };
}

export function startMemoryGovernor(opts: MemoryGovernorOptions = MEMORY_GOVERNOR_DEFAULTS): MemoryGovernor {
  const gc = exposeGc();
  const counters = { gcRuns: 0, minorRuns: 0, gcFloorBytes: 0, gcLastMs: 0, gcMaxMs: 0, trims: 0, trimLastMs: 0, samples: 0 };
  if (!gc) return { stop: () => undefined, activity: () => undefined, stats: () => ({ 'process.gcRuns': 0 }) };
  const g = initialState(process.memoryUsage().arrayBuffers, performance.now(), opts);
  const native = opts.trimBytes > 0 ? loadNative() : undefined;
  // This process trims itself once a load has settled: glibc need not hand back each large buffer
  // freed at the top of its heap, nor map and unmap those over 128 KiB one by one (a sender of
  // 64 KiB messages faulted in about 15,000 pages a second). Not without the trims.
  native?.mallocTune(MALLOC_TRIM_THRESHOLD, MALLOC_TOP_PAD, MALLOC_MMAP_THRESHOLD);
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
  let idle = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (ms: number): void => {
    timer = setTimeout(sample, ms);
    timer.unref();
  };
  const sample = (): void => {
    if (stopped) return;
    if (!running) {
      const now = performance.now();
      const what = decide(g, process.memoryUsage().arrayBuffers, now, opts);
      if (what === 'major') major();
      else if (what === 'trim' && native) {
        const t0 = performance.now();
        native.trim();
        counters.trims++;
        counters.trimLastMs = performance.now() - t0;
      }
      else if (what === 'minor') {
        counters.minorRuns++;
        try { void gc({ type: 'minor' }); } catch { /* not offered */ }
      }
      idle = what === undefined && quiet(g, now, opts);
    }
    counters.samples++;
    schedule(idle ? opts.idleCheckMs : opts.checkMs);
  };
  schedule(opts.checkMs);
  return {
    stop: () => { stopped = true; clearTimeout(timer); },
    activity: () => {
      if (!idle || stopped) return;
      idle = false;
      clearTimeout(timer);
      schedule(opts.checkMs);
    },
    stats: () => ({
      'process.gcRuns': counters.gcRuns, 'process.gcMinorRuns': counters.minorRuns, 'process.gcFloorBytes': counters.gcFloorBytes,
      'process.gcLastMs': counters.gcLastMs, 'process.gcMaxMs': counters.gcMaxMs,
      'process.mallocTrims': counters.trims, 'process.mallocTrimLastMs': counters.trimLastMs, 'process.memorySamples': counters.samples,
    }),
  };
}
