// Proves the daemon's memory governor: young collections each minor step of ArrayBuffer growth, a full one past its step and once when growth stops, then a trim once the collection is swept (the pure decision; an idle ring's small rises are not growth); that on V8 a full collection frees dead buffers, then the governor stays quiet; and that the native trim returns glibc's free pages to the kernel.
import { describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { decide, initialState, quiet, startMemoryGovernor, type GovernorState, type MemoryGovernorOptions } from './memory.ts';
import { loadNative } from '../native/index.ts';

const MiB = 1024 * 1024;

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const NATIVE_FILE = new URL('../native/build/Release/afcluster_native.node', import.meta.url).pathname;

/** The native helper's tests need it built (npm install does, with a C compiler) and glibc (its
 *  malloc_trim and mallopt): elsewhere a daemon neither tunes nor trims (the pack test checks the build). */
function skipWithoutNativeGlibc(ctx: { skip(): void }): void {
  const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  if (glibc && loadNative()) return;
  console.log(`skipped: ${glibc ? 'core/native/build/Release/afcluster_native.node not built (npm run build:native)' : 'not glibc'}`);
  ctx.skip();
}

/** The options most tests start from (each test changes what it is about). */
const BASE: MemoryGovernorOptions = { checkMs: 10, idleCheckMs: 250, stepBytes: 64 * MiB, majorMinIntervalMs: 0, minorStepBytes: 0, settleMs: 100, settleBytes: 2 * MiB, quietBytes: MiB / 4, trimBytes: 16 * MiB, trimFollowUpMs: 0 };

/** A governor at 0 bytes, settled, nothing due. */
function zeroState(): GovernorState {
  return { majorFloor: 0, majorAt: -Infinity, minorFloor: 0, idleFloor: 0, last: 0, grewAt: 0, quietBase: 0, settledDone: true, churn: 0, trimDue: false, followUpAt: Infinity };
}

describe('memory governor', () => {
  it('collects dead buffers past its step, once more when growth stops, then nothing', async () => {
    const gov = startMemoryGovernor({ ...BASE, idleCheckMs: 50, stepBytes: 8 * MiB, settleBytes: 1 * MiB, quietBytes: 0, trimBytes: 0 });
    try {
      const runs = () => Number(gov.stats()['process.gcRuns']);
      const before = process.memoryUsage().arrayBuffers;
      let dead: Uint8Array[] = [];
      for (let i = 0; i < 32; i++) dead.push(new Uint8Array(MiB).fill(i)); // 32 MiB, then garbage
      dead = [];
      await until('a collection past the step', () => runs() >= 1);
      await until('the dead buffers freed', () => process.memoryUsage().arrayBuffers < before + 8 * MiB);
      await new Promise((r) => setTimeout(r, 300));
      const afterStep = runs();
      // 4 MiB more, below the step, kept alive so that no other collection can take them first.
      const kept: Uint8Array[] = [];
      for (let i = 0; i < 4; i++) kept.push(new Uint8Array(MiB).fill(i));
      await until('the settling collection once growth stopped', () => runs() === afterStep + 1);
      await new Promise((r) => setTimeout(r, 300));
      expect(runs()).toBe(afterStep + 1); // and then nothing while nothing grows
      expect(kept.length).toBe(4);
    } finally {
      gov.stop();
    }
  });

  it('decides: a young collection each minor step, a full one past the step, one more when growth stops, then nothing', () => {
    const opts: MemoryGovernorOptions = { ...BASE, minorStepBytes: 8 * MiB, quietBytes: 0, trimBytes: 0 };
    const g = zeroState();
    expect(decide(g, 4 * MiB, 1, opts)).toBeUndefined();
    expect(decide(g, 8 * MiB, 2, opts)).toBe('minor');
    expect(decide(g, 12 * MiB, 3, opts)).toBeUndefined(); // 4 MiB since the last one
    expect(decide(g, 16 * MiB, 4, opts)).toBe('minor');
    expect(decide(g, 64 * MiB, 5, opts)).toBe('major'); // promoted buffers: past the full step
    Object.assign(g, { majorFloor: 6 * MiB, minorFloor: 6 * MiB, last: 6 * MiB }); // what the full one left
    expect(decide(g, 6 * MiB, 50, opts)).toBeUndefined(); // not settled yet
    expect(decide(g, 6 * MiB, 200, opts)).toBe('major'); // settled, 6 MiB above idle: once
    expect(decide(g, 6 * MiB, 300, opts)).toBeUndefined(); // and no more until it grows again
  });

  it('asks for a full collection each step of growth at most once in majorMinIntervalMs', () => {
    const opts: MemoryGovernorOptions = { ...BASE, stepBytes: 4 * MiB, majorMinIntervalMs: 1000, settleMs: 100_000, quietBytes: 0, trimBytes: 0 };
    const g: GovernorState = { ...zeroState(), settledDone: false };
    expect(decide(g, 3 * MiB, 10, opts)).toBeUndefined();
    expect(decide(g, 4 * MiB, 20, opts)).toBe('major');
    Object.assign(g, { majorFloor: MiB, last: MiB }); // what it left
    expect(decide(g, 9 * MiB, 500, opts)).toBeUndefined(); // a step again, within the interval: waits
    expect(decide(g, 9 * MiB, 1019, opts)).toBeUndefined();
    expect(decide(g, 9 * MiB, 1020, opts)).toBe('major');
  });

  it('trims once a load has settled, after the settling collection has been swept; small rises are not growth', () => {
    const opts = BASE;
    const g = zeroState();
    for (let t = 1; t <= 10; t++) expect(decide(g, t * 3 * MiB, t, opts)).toBeUndefined(); // a load: 30 MiB moved
    expect(decide(g, 30 * MiB, 50, opts)).toBeUndefined(); // not settled yet
    expect(decide(g, 30 * MiB, 111, opts)).toBe('major'); // settled: the collection first
    Object.assign(g, { majorFloor: 30 * MiB, minorFloor: 30 * MiB, last: 30 * MiB }); // what the shell sets when it ends
    expect(decide(g, 10 * MiB, 120, opts)).toBeUndefined(); // its sweep is still freeing
    expect(decide(g, 1 * MiB, 130, opts)).toBeUndefined();
    expect(decide(g, 1 * MiB, 140, opts)).toBe('trim'); // swept: now the allocator's free pages go
    expect(decide(g, 1 * MiB, 150, opts)).toBeUndefined(); // once
    // An idle ring's few KiB are not growth: nothing is due, however long it goes on.
    for (let t = 0; t < 100; t++) expect(decide(g, 1 * MiB + (t % 10) * 16 * 1024, 200 + t * 50, opts)).toBeUndefined();
    // Less than trimBytes moved since the trim: the next settling does not trim.
    for (let t = 1; t <= 4; t++) expect(decide(g, MiB + t * 2 * MiB, 6000 + t, opts)).toBeUndefined();
    expect(decide(g, 9 * MiB, 6200, opts)).toBe('major');
    Object.assign(g, { majorFloor: 9 * MiB, minorFloor: 9 * MiB, last: 9 * MiB });
    expect(decide(g, 1 * MiB, 6210, opts)).toBeUndefined();
    expect(decide(g, 1 * MiB, 6220, opts)).toBeUndefined();
    // Churn that reaches trimBytes only after the settling, in rises too small to be growth: one
    // trim when it gets there (at a sample that is not falling), then nothing again.
    const decisions: (string | undefined)[] = [];
    for (let t = 0; t < 200; t++) decisions.push(decide(g, 1 * MiB + (t % 2) * 128 * 1024, 7000 + t * 50, opts));
    expect(decisions.filter((d) => d !== undefined)).toEqual(['trim']);
    const at = decisions.indexOf('trim');
    expect(at).toBeGreaterThan(0);
    expect(at % 2, 'not at a falling sample').toBe(1);
  });

  it('trims once after the start has settled, with nothing moved; not when trims are off', () => {
    const opts = BASE;
    const g = initialState(MiB, 1000, opts);
    expect(decide(g, MiB, 1050, opts)).toBeUndefined(); // not settled yet
    expect(decide(g, MiB, 1100, opts)).toBe('trim');
    for (let t = 1; t <= 50; t++) expect(decide(g, MiB, 1100 + t * 100, opts)).toBeUndefined(); // once
    const off = { ...opts, trimBytes: 0, trimFollowUpMs: 0 };
    const h = initialState(MiB, 1000, off);
    for (let t = 1; t <= 50; t++) expect(decide(h, MiB, 1000 + t * 100, off)).toBeUndefined();
  });

  it('follows a load\'s trim with one more, trimFollowUpMs later once quiet; not after the follow-up itself', () => {
    const opts: MemoryGovernorOptions = { ...BASE, settleBytes: 64 * MiB, trimFollowUpMs: 1000 };
    const g = initialState(MiB, 0, { ...opts, trimBytes: 0 }); // no start trim: only the load's
    for (let t = 1; t <= 10; t++) expect(decide(g, MiB + t * 3 * MiB, t, opts)).toBeUndefined(); // a load
    const decisions: [number, string][] = [];
    // It settles and is trimmed; the sweeper frees most of its buffers only after that.
    for (let t = 100; t <= 5000; t += 10) {
      const d = decide(g, t < 300 ? 31 * MiB : 2 * MiB, t, opts);
      if (d) decisions.push([t, d]);
    }
    expect(decisions.map(([, d]) => d)).toEqual(['trim', 'trim']);
    const [[first], [second]] = decisions;
    expect(first).toBeGreaterThanOrEqual(110); // settled
    expect(second).toBeGreaterThanOrEqual(first + 1000); // a second later, once the count stopped falling
    expect(second).toBeLessThan(first + 1100);
    // A follow-up is not followed: nothing more, however long it stays quiet.
    for (let t = 5010; t < 20_000; t += 100) expect(decide(g, 2 * MiB, t, opts)).toBeUndefined();
  });

  it('is quiet once a load has settled, its collection run and no trim waiting; not while it grows or a trim is due', () => {
    const opts = BASE;
    const g = initialState(MiB, 0, opts);
    expect(quiet(g, 50, opts)).toBe(false); // the start: its trim is due once settled
    expect(decide(g, MiB, 100, opts)).toBe('trim');
    expect(quiet(g, 100, opts)).toBe(true);
    for (let t = 1; t <= 10; t++) { // a load
      decide(g, MiB + t * 3 * MiB, 100 + t, opts);
      expect(quiet(g, 100 + t, opts)).toBe(false);
    }
    expect(decide(g, 31 * MiB, 150, opts)).toBeUndefined();
    expect(quiet(g, 150, opts)).toBe(false); // not settled yet
    expect(decide(g, 31 * MiB, 211, opts)).toBe('major'); // settled: the collection
    Object.assign(g, { majorFloor: MiB, minorFloor: MiB, last: MiB });
    expect(quiet(g, 211, opts)).toBe(false); // 30 MiB moved: a trim is due
    expect(decide(g, MiB, 220, opts)).toBe('trim');
    expect(quiet(g, 220, opts)).toBe(true);
    expect(decide(g, MiB + MiB / 8, 230, opts)).toBeUndefined(); // an idle ring's small rise
    expect(quiet(g, 230, opts)).toBe(true);
  });

  it('samples at idleCheckMs while quiet, at checkMs again from the next activity or growth', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const gov = startMemoryGovernor({ ...BASE, idleCheckMs: 1000, settleBytes: 64 * MiB, quietBytes: 8 * MiB, trimBytes: 0 });
    try {
      const samples = () => Number(gov.stats()['process.memorySamples']);
      vi.advanceTimersByTime(200); // settled: quiet from here
      const quietFrom = samples();
      expect(quietFrom).toBeGreaterThanOrEqual(10);
      vi.advanceTimersByTime(10_000);
      expect(samples() - quietFrom).toBe(10); // one a second, not a hundred
      gov.activity();
      const active = samples();
      vi.advanceTimersByTime(10);
      expect(samples()).toBe(active + 1); // at checkMs, at once
      vi.advanceTimersByTime(10 * 1000);
      expect(samples() - active).toBeLessThanOrEqual(12); // nothing grew: quiet again after one
      // Growth with no activity told: seen at the next slow sample, then sampled fast until settled.
      const kept = Array.from({ length: 16 }, (_, i) => new Uint8Array(MiB).fill(i));
      const before = samples();
      vi.advanceTimersByTime(1000);
      expect(samples() - before).toBe(1);
      vi.advanceTimersByTime(100);
      expect(samples() - before).toBeGreaterThanOrEqual(10);
      expect(kept).toHaveLength(16);
    } finally {
      gov.stop();
      vi.useRealTimers();
    }
  });

  it('the native helper sets glibc\'s thresholds for a process that trims itself, and refuses bad values', (ctx) => {
    skipWithoutNativeGlibc(ctx);
    // In a fresh process: the options are the whole process's allocator's.
    const script = `
      const n = require(process.argv[1]);
      console.log(JSON.stringify([n.mallocTune(64 << 20, 16 << 20, 4 << 20), n.mallocTune(-1, 0, 0), n.mallocTune(1), n.mallocTune('a', 1, 1)]));`;
    const r = spawnSync(process.execPath, ['-e', script, NATIVE_FILE], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([true, false, false, false]);
  });

  it('the native helper gives the allocator\'s free pages back to the kernel', (ctx) => {
    skipWithoutNativeGlibc(ctx);
    // In a fresh process: 200 MB of 96 KiB blocks (below glibc's mmap threshold, so from its heap)
    // with a small block kept after each (so freeing cannot shrink the heap from the top).
    const script = `
      const n = require(process.argv[1]);
      const rss = () => Number(require('fs').readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
      let big = [], keep = [];
      for (let i = 0; i < 2000; i++) { big.push(Buffer.alloc(96 * 1024, 1)); keep.push(Buffer.alloc(200, 2)); }
      big = null; gc(); gc();
      setTimeout(() => { const a = rss(); const released = n.trim(); const b = rss(); console.log(JSON.stringify({ a, b, released, kept: keep.length })); }, 500);`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script, NATIVE_FILE], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const { a, b, released, kept } = JSON.parse(r.stdout) as { a: number; b: number; released: boolean; kept: number };
    expect(kept).toBe(2000);
    expect(released).toBe(true);
    expect(a - b, `RSS ${(a / MiB).toFixed(0)} -> ${(b / MiB).toFixed(0)} MB`).toBeGreaterThan(100 * MiB);
  });
});
