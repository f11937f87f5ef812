// Proves the quorum rules (votequorum's, core/quorum/quorum.ts): majority of expected votes,
// expected votes that only rise by themselves, wait_for_all, two_node, last_man_standing and
// auto_tie_breaker; and, over random splits of random clusters, that two disjoint components
// are never both quorate without two_node or last_man_standing (the options that bend it).
import { describe, expect, it } from 'vitest';
import { Quorum, quorumOff, type QuorumOptions } from './quorum.ts';
import { Rng } from '../../sim/rng.ts';

function opts(nodes: number[] | Map<number, number>, more: Partial<QuorumOptions> = {}): QuorumOptions {
  const votes = nodes instanceof Map ? nodes : new Map(nodes.map((id) => [id, 1]));
  return {
    enabled: true, votes, expectedVotes: 0, twoNode: false, waitForAll: false, lastManStanding: false,
    lastManStandingWindowMs: 10_000, autoTieBreaker: false, autoTieBreakerNode: 'lowest', ...more,
  };
}

describe('Quorum', () => {
  it('is quorate with more than half of the expected votes', () => {
    const q = new Quorum(opts([1, 2, 3, 4, 5]));
    expect(q.configuration([1, 2], 0)).toMatchObject({ quorate: false, votes: 2, expected: 5, quorum: 3 });
    expect(q.configuration([1, 2, 3], 0)).toMatchObject({ quorate: true, votes: 3 });
    expect(new Quorum(opts(new Map([[1, 3], [2, 1], [3, 1]]))).configuration([1], 0)).toMatchObject({ quorate: true, votes: 3, expected: 5 });
  });

  it('raises expected votes when more are seen, never lowers them by itself', () => {
    const q = new Quorum(opts([1, 2, 3], { expectedVotes: 3 }));
    q.configuration([1, 2, 3], 0);
    expect(q.configuration([1], 0)).toMatchObject({ quorate: false, expected: 3 });
    expect(q.merge([{ allSeen: false, expected: 7 }])).toMatchObject({ expected: 7, quorum: 4 });
  });

  it('wait_for_all: not quorate after a cold start until every node was seen together, then remembered', () => {
    const q = new Quorum(opts([1, 2, 3], { waitForAll: true }));
    expect(q.configuration([1, 2], 0)).toMatchObject({ quorate: false, flags: ['wait_for_all_pending'] });
    expect(q.configuration([1, 2, 3], 0)).toMatchObject({ quorate: true, flags: ['wait_for_all'] });
    expect(q.configuration([1, 2], 0)).toMatchObject({ quorate: true });
    const late = new Quorum(opts([1, 2, 3], { waitForAll: true }));
    late.configuration([2, 3], 0);
    expect(late.merge([{ allSeen: true, expected: 3 }])).toMatchObject({ quorate: true }); // joined a part that saw everyone
  });

  it('two_node: one vote is enough, after both were seen once', () => {
    const q = new Quorum(opts([1, 2], { twoNode: true, waitForAll: true }));
    expect(q.configuration([1], 0)).toMatchObject({ quorate: false, quorum: 1 });
    q.configuration([1, 2], 0);
    expect(q.configuration([2], 0)).toMatchObject({ quorate: true, quorum: 1, flags: ['two_node', 'wait_for_all'] });
  });

  it('auto_tie_breaker: in an exact half split only the half with the tie-breaker node stays quorate', () => {
    for (const [node, winner] of [['lowest', [1, 2]], ['highest', [3, 4]], [3, [3, 4]]] as const) {
      const a = new Quorum(opts([1, 2, 3, 4], { autoTieBreaker: true, autoTieBreakerNode: node }));
      const b = new Quorum(opts([1, 2, 3, 4], { autoTieBreaker: true, autoTieBreakerNode: node }));
      const qa = a.configuration([1, 2], 0).quorate, qb = b.configuration([3, 4], 0).quorate;
      expect([qa, qb]).toEqual(winner[0] === 1 ? [true, false] : [false, true]);
    }
    expect(new Quorum(opts([1, 2, 3, 4], { autoTieBreaker: true })).configuration([1], 0).quorate).toBe(false); // a quarter is no tie
  });

  it('last_man_standing: after a stable window expected votes drop to the votes present, step by step', () => {
    const q = new Quorum(opts([1, 2, 3, 4, 5], { lastManStanding: true, lastManStandingWindowMs: 1000 }));
    q.configuration([1, 2, 3, 4, 5], 0);
    q.configuration([1, 2, 3], 100);
    expect(q.lowerDue(900)).toBeUndefined(); // the window has not passed
    expect(q.lowerDue(1100)).toBe(3);
    expect(q.lower(3)).toMatchObject({ quorate: true, expected: 3, quorum: 2 });
    q.configuration([1, 2], 2000);
    expect(q.lowerDue(3000)).toBe(2);
    expect(q.lower(2)).toMatchObject({ quorate: true, expected: 2, quorum: 2 });
    expect(q.configuration([1], 4000)).toMatchObject({ quorate: false }); // not below 2 without auto_tie_breaker
    expect(q.lowerDue(99_000)).toBeUndefined();
    expect(q.configuration([1, 2, 3, 4], 5000)).toMatchObject({ expected: 4 }); // rises by itself
  });

  it('a reloaded node list: more votes apply at the next configuration, fewer through an agreed lowering', () => {
    let votes = new Map([[1, 1], [2, 1], [3, 1]]);
    const live: QuorumOptions = { ...opts([]), get votes() { return votes; } };
    const q = new Quorum(live);
    q.configuration([1, 2, 3], 0);
    votes = new Map([...votes, [4, 1]]); // node 4 added to the list (SIGHUP)
    expect(q.nodes().map((n) => n.nodeId)).toEqual([1, 2, 3, 4]);
    expect(q.lowerDue(1)).toBeUndefined();
    expect(q.configuration([1, 2, 3], 2)).toMatchObject({ quorate: true, votes: 3, expected: 4, quorum: 3 });
    expect(q.configuration([1, 2, 3, 4], 3)).toMatchObject({ votes: 4, expected: 4 });
    votes = new Map([[1, 1], [2, 1], [3, 1]]); // node 4 removed again
    expect(q.configuration([1, 2, 3], 4)).toMatchObject({ votes: 3, expected: 4 }); // never by itself
    expect(q.lowerDue(5)).toBe(3);
    expect(q.lower(3)).toMatchObject({ quorate: true, expected: 3, quorum: 2 });
    expect(q.lowerDue(6)).toBeUndefined();
    expect(q.configuration([1, 2], 7)).toMatchObject({ quorate: true, votes: 2, expected: 3 });
  });

  it('quorum off: every component is quorate', () => {
    expect(new Quorum(quorumOff([1, 2, 3])).configuration([3], 0)).toMatchObject({ quorate: true, flags: ['disabled'] });
  });

  it('never makes two disjoint components quorate (random clusters, votes and splits)', () => {
    const seed = Number(process.env.QUORUM_SEED ?? 20261204);
    console.log(`quorum split seed ${seed} (QUORUM_SEED=${seed} to replay)`);
    const rng = new Rng(seed);
    for (let round = 0; round < 2000; round++) {
      const ids = Array.from({ length: rng.int(1, 9) }, (_, i) => i + 1 + rng.int(0, 3) * 10);
      const unique = [...new Set(ids)];
      const votes = new Map(unique.map((id) => [id, rng.int(0, 3)]));
      if ([...votes.values()].every((v) => v === 0)) votes.set(unique[0], 1);
      const o = opts(votes, { waitForAll: rng.chance(0.3), autoTieBreaker: rng.chance(0.5), autoTieBreakerNode: rng.pick(['lowest', 'highest'] as const) });
      const shuffled = rng.shuffle(unique);
      const cut = rng.int(0, shuffled.length);
      const parts = [shuffled.slice(0, cut), shuffled.slice(cut)];
      const quorate = parts.map((p) => {
        const q = new Quorum(o);
        q.configuration(unique, 0); // everyone was together once
        return q.configuration(p, 1).quorate;
      });
      expect(quorate, `round ${round}: ${JSON.stringify({ votes: [...votes], parts, o: { ...o, votes: undefined } })}`).not.toEqual([true, true]);
    }
  });
});
