// Proves the configuration events of a 3-node ring through formation, a clean leave and a return, as every node sees them.
import { describe, expect, test } from 'vitest';
import { makeSim, formed, expectClean, confs } from './harness.ts';
import type { ConfEvent } from '../../sim/log.ts';

const show = (c: ConfEvent): string =>
  `${c.kind} ${c.ringId.rep}.${c.ringId.seq} [${c.members.join(',')}] left [${c.left.join(',')}] joined [${c.joined.join(',')}]`;

describe('totem transcript: formation, clean leave, return', () => {
  test('every node sees exactly these configurations', () => {
    const sim = makeSim({ seed: 7, nodes: 3 });
    sim.start();
    expect(sim.runUntil(() => formed(sim, [1, 2, 3]), 5000)).toBe(true);
    const first = confs(sim, 1)[0];
    for (const n of [1, 2, 3]) {
      // Formation: one regular configuration of all three, everyone new to it.
      expect(confs(sim, n).map(show)).toEqual([`regular ${first.ringId.rep}.${first.ringId.seq} [1,2,3] left [] joined [1,2,3]`]);
    }
    for (let i = 0; i < 6; i++) sim.send(1 + (i % 3));
    sim.runFor(200);

    sim.leave(3);
    expect(sim.runUntil(() => formed(sim, [1, 2]), 5000)).toBe(true);
    const afterLeave = confs(sim, 1).slice(1);
    expect(afterLeave.map(show)).toEqual([
      `transitional ${afterLeave[0].ringId.rep}.${afterLeave[0].ringId.seq} [1,2] left [3] joined []`,
      `regular ${afterLeave[0].ringId.rep}.${afterLeave[0].ringId.seq} [1,2] left [] joined []`,
    ]);
    expect(confs(sim, 2).slice(1).map(show)).toEqual(afterLeave.map(show));
    expect(confs(sim, 3)).toHaveLength(1);
    expect(afterLeave[0].ringId.seq).toBeGreaterThan(first.ringId.seq);
    for (let i = 0; i < 4; i++) sim.send(1 + (i % 2));
    sim.runFor(200);

    sim.crash(3);
    sim.restart(3);
    expect(sim.runUntil(() => formed(sim, [1, 2, 3]), 5000)).toBe(true);
    const back = confs(sim, 1).slice(3);
    const r = `${back[0].ringId.rep}.${back[0].ringId.seq}`;
    expect(back.map(show)).toEqual([
      `transitional ${r} [1,2] left [] joined []`,
      `regular ${r} [1,2,3] left [] joined [3]`,
    ]);
    expect(confs(sim, 2).slice(3).map(show)).toEqual(back.map(show));
    // The restarted node is a new process: its first configuration is the regular one.
    const n3 = confs(sim, 3).slice(1);
    expect(n3.map(show)).toEqual([`regular ${r} [1,2,3] left [] joined [1,2,3]`]);
    expect(back[0].ringId.seq).toBeGreaterThan(afterLeave[0].ringId.seq);
    for (let i = 0; i < 6; i++) sim.send(1 + (i % 3));
    sim.runFor(300);
    expectClean(sim);
  });
});
