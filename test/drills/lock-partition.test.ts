// Proves the lock service is partition-safe on real daemons in network namespaces: over split
// episodes of several shapes (the holder's node cut off alone or with another, node 1 among them
// or not) the majority's command never starts before the minority's holder stopped, and it gets
// the lock (how soon is printed against the stated bound); with quorum switched off the same drill finds the two
// holders (the check can fail). Skipped, saying why, where namespaces cannot be made.
import { describe, expect, it } from 'vitest';
import { runPartitionDrill } from '../../tools/drill/partition.ts';
import { namespaceSupport } from '../../tools/drills/netns.ts';

const ns = namespaceSupport();
const tag = `p${process.pid % 100_000}`;

describe('lock partition drill (totem, quorum)', () => {
  it('quorum on: 0 moments with two holders, and the majority gets the lock', async (ctx) => {
    if (!ns.ok) {
      console.log(`SKIPPED partition drill: ${ns.reason}`);
      ctx.skip(ns.reason);
    }
    const seed = Number(process.env.PARTITION_SEED ?? 20261204);
    console.log(`partition drill seed ${seed} (PARTITION_SEED=${seed} to replay)`);
    const r = await runPartitionDrill({ nodes: 5, episodes: 3, quorum: true, seed, port: 5405, tag, log: (l) => console.log(l) });
    for (const e of r.episodes) {
      expect(e.overlapMs, `episode ${e.index}`).toBe(0);
      expect(e.holderExit, `episode ${e.index}: the cut-off holder says it lost the lock`).toBe(75);
      expect(e.askerExit, `episode ${e.index}`).toBe(0);
      expect(e.grantedAfterMs, `episode ${e.index}: the majority got the lock`).not.toBeNull();
    }
    // How fast is measured, not judged here (timing never decides a test): the drill prints it.
    console.log(`slowest grant ${r.slowestGrantMs.toFixed(0)} ms after the split (stated bound ${r.grantBoundMs} ms)`);
    expect(r.doubleHolders).toBe(0);
  }, 300_000);

  it('quorum off: the same drill sees the cut-off holder and the majority\'s command run at once', async (ctx) => {
    if (!ns.ok) ctx.skip(ns.reason);
    const r = await runPartitionDrill({ nodes: 3, episodes: 1, quorum: false, seed: 1, port: 5405, tag, log: (l) => console.log(l) });
    expect(r.doubleHolders).toBe(1);
    expect(r.episodes[0].overlapMs).toBeGreaterThan(0);
  }, 180_000);
});
