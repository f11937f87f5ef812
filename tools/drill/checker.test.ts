// Proves the drill checker catches what it counts: double grants fed by hand (in one view and
// in time), disagreements (order, a decision only one side saw), and accepts differing spans.
import { describe, expect, it } from 'vitest';
import { checkDrill, type DecisionRecord, type HoldRecord, type ObserverRecord } from './checker.ts';

const d = (type: DecisionRecord['type'], owner: string, requestId: number, mode: DecisionRecord['mode'] = 'exclusive', name = 'x'): DecisionRecord => ({ type, name, owner, requestId, mode });
const obs = (observer: string, nodeId: number, decisions: DecisionRecord[], holds: HoldRecord[] = []): ObserverRecord => ({ observer, nodeId, self: `${nodeId}/1/1`, decisions, holds });

const seq = [d('grant', '1/1/1', 1), d('release', '1/1/1', 1), d('grant', '2/1/1', 1), d('tryfail', '3/1/1', 4), d('release', '2/1/1', 1), d('grant', '3/1/1', 2)];

describe('checkDrill', () => {
  it('finds nothing wrong when every observer saw the same sequence, over different spans', () => {
    const r = checkDrill([obs('a', 1, seq), obs('b', 2, seq.slice(2)), obs('c', 3, seq.slice(0, 4))]);
    expect(r).toMatchObject({ doubleGrants: 0, disagreements: 0, pairsCompared: 3, grants: 7 });
  });

  it('counts a double grant in one view: an exclusive grant while another holds', () => {
    const bad = [d('grant', '1/1/1', 1), d('grant', '2/1/1', 1), d('release', '1/1/1', 1), d('grant', '3/1/1', 1, 'shared')];
    const r = checkDrill([obs('a', 1, bad)]);
    expect(r.doubleGrantsInView).toBe(2);
    expect(r.examples[0]).toMatch(/double grant in the view of a/);
  });

  it('shared holders together are not a double grant', () => {
    const ok = [d('grant', '1/1/1', 1, 'shared'), d('grant', '2/1/1', 1, 'shared'), d('release', '1/1/1', 1, 'shared'), d('release', '2/1/1', 1, 'shared'), d('grant', '3/1/1', 1)];
    expect(checkDrill([obs('a', 1, ok)]).doubleGrants).toBe(0);
  });

  it('counts a double grant in time: two workers holding one exclusive lock over overlapping intervals', () => {
    const h = (fromUs: number, toUs: number, mode: HoldRecord['mode'] = 'exclusive'): HoldRecord => ({ name: 'x', mode, requestId: 1, fromUs, toUs });
    const r = checkDrill([obs('a', 1, [], [h(10, 20), h(40, 50, 'shared')]), obs('b', 2, [], [h(20, 30), h(45, 60, 'shared')]), obs('c', 3, [], [h(25, 26)])]);
    expect(r.doubleGrantsInTime).toBe(1);
    expect(r.examples[0]).toMatch(/"x" held by b .* and c/);
  });

  it('counts a disagreement when two nodes saw the grants in a different order', () => {
    const swapped = [seq[0], seq[1], seq[5], seq[3], seq[4], seq[2]];
    const r = checkDrill([obs('a', 1, seq), obs('b', 2, swapped)]);
    expect(r.disagreements).toBe(1);
    expect(r.examples.join('\n')).toMatch(/disagreement: a \(node 1\) vs b \(node 2\)/);
  });

  it('counts a disagreement when one node saw a grant inside the common span that the other never saw', () => {
    const extra = [...seq.slice(0, 3), d('grant', '4/1/1', 9), ...seq.slice(3)];
    const r = checkDrill([obs('a', 1, seq), obs('b', 2, extra)]);
    expect(r.disagreements).toBe(1);
    expect(r.examples.join('\n')).toMatch(/b saw grant\|x\|4\/1\/1\|9 inside the span/);
  });
});
