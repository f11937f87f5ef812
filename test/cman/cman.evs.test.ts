// Proves the EVS checker catches what cman does not claim: concurrent senders break agreed order, a crash breaks failure atomicity; one sender breaks neither.
import { describe, expect, it } from 'vitest';
import { check } from '../../sim/checker.ts';
import { asViews, cmanSim, untilMembers, untilQuiet } from './helpers.ts';

describe('cman against the EVS checker', () => {
  it('concurrent senders: nodes deliver in different orders and the checker reports agreed order', () => {
    const sim = cmanSim({ seed: 31, nodes: 3 });
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    // Same instant: each sender delivers its own message first, the other's a latency later.
    expect(sim.send(1, 'agreed', 100)).toBe('ok');
    expect(sim.send(2, 'agreed', 100)).toBe('ok');
    expect(untilQuiet(sim, [1, 2, 3])).toBe(true);
    const order = (node: number) => sim.logs()[node - 1].events.filter((e) => e.type === 'deliver').map((e) => e.type === 'deliver' && e.sender);
    expect(order(1)).toEqual([1, 2]);
    expect(order(2)).toEqual([2, 1]);
    const views = asViews(sim.logs());
    const v = check(views, { properties: ['agreed'] });
    expect(v.map((x) => x.property)).toContain('agreed');
    expect(v[0].message).toMatch(/cycle/);
    // What cman does claim still holds on the same run.
    expect(check(sim.logs(), { properties: ['basic', 'fifo', 'stable-no-loss'] })).toEqual([]);
  });

  it('a crash leaves survivors with different message sets and the checker reports failure atomicity', () => {
    const sim = cmanSim({ seed: 32, nodes: 3 });
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    sim.cutLink(1, 3); // node 3 misses node 1's multicast...
    expect(sim.send(1, 'fifo', 100)).toBe('ok');
    sim.runFor(50);
    sim.crash(1); // ...and node 1 dies before its ack timer resends it to node 3.
    expect(untilMembers(sim, [2, 3], 2)).toBe(true);
    const got = (node: number) => sim.logs()[node - 1].events.filter((e) => e.type === 'deliver').length;
    expect([got(2), got(3)]).toEqual([1, 0]);
    const v = check(asViews(sim.logs()), { properties: ['failure-atomicity'] });
    expect(v).toHaveLength(1);
    expect(v[0]).toMatchObject({ property: 'failure-atomicity', nodes: [2, 3] });
    expect(check(sim.logs(), { properties: ['basic', 'fifo', 'stable-no-loss'] })).toEqual([]);
  });

  it('control: one sender, stable membership, no faults: neither property is broken', () => {
    const sim = cmanSim({ seed: 33, nodes: 3, network: { jitterMs: 1 } });
    expect(untilMembers(sim, [1, 2, 3], 3)).toBe(true);
    for (let i = 0; i < 50; i++) expect(sim.send(1, 'agreed', 100 + i)).toBe('ok');
    expect(untilQuiet(sim, [1, 2, 3])).toBe(true);
    expect(check(asViews(sim.logs()), { properties: ['agreed', 'failure-atomicity', 'fifo', 'basic'] })).toEqual([]);
  });
});
