// Proves the daemon's memory governor: young collections each minor step of ArrayBuffer growth, a full one past its step and once when growth stops (the pure decision), and that on V8 a full collection frees dead buffers, then the governor stays quiet.
import { describe, expect, it } from 'vitest';
import { decide, startMemoryGovernor, type GovernorState, type MemoryGovernorOptions } from './memory.ts';

const MiB = 1024 * 1024;

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('memory governor', () => {
  it('collects dead buffers past its step, once more when growth stops, then nothing', async () => {
    const gov = startMemoryGovernor({ checkMs: 10, stepBytes: 8 * MiB, minorStepBytes: 0, settleMs: 100, settleBytes: 1 * MiB });
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
    const opts: MemoryGovernorOptions = { checkMs: 10, stepBytes: 64 * MiB, minorStepBytes: 8 * MiB, settleMs: 100, settleBytes: 2 * MiB };
    const g: GovernorState = { majorFloor: 0, minorFloor: 0, idleFloor: 0, last: 0, grewAt: 0, settledDone: true };
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
});
