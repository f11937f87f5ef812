// Proves the daemon's memory governor asks V8 for a collection once dead ArrayBuffers have grown by its step, that the collection frees them, and that it runs once more when growth stops, then stays quiet.
import { describe, expect, it } from 'vitest';
import { startMemoryGovernor } from './memory.ts';

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
});
