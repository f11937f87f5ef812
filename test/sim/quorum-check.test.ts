// Proves the checker's quorum property: nodes whose configurations overlap may both be quorate,
// an even split is decided by auto_tie_breaker for one half only, and two disjoint quorate
// components are reported (two_node, which allows exactly that, makes the check fail); crashed
// nodes count as not quorate.
import { describe, expect, it } from 'vitest';
import { checkQuorum } from '../../sim/quorum-check.ts';
import type { LogEvent, NodeLog } from '../../sim/log.ts';

const ring = { rep: 1, seq: 1 };
function conf(node: number, t: number, members: number[]): LogEvent {
  return { type: 'conf', t, node, kind: 'regular', ringId: ring, members, left: [], joined: [] };
}
const logs = (...events: LogEvent[][]): NodeLog[] => events.map((ev) => ({ node: ev[0].node, events: ev }));

describe('checker: quorum', () => {
  it('accepts a stale node that still believes in the whole ring while the majority moved on', () => {
    const l = logs([conf(1, 0, [1, 2, 3])], [conf(2, 0, [1, 2, 3]), conf(2, 5, [2, 3])], [conf(3, 0, [1, 2, 3]), conf(3, 5, [2, 3])]);
    expect(checkQuorum(l, [1, 2, 3], {})).toEqual([]);
  });

  it('an even split with auto_tie_breaker: one half only', () => {
    const l = logs([conf(1, 0, [1, 2])], [conf(2, 0, [1, 2])], [conf(3, 0, [3, 4])], [conf(4, 0, [3, 4])]);
    expect(checkQuorum(l, [1, 2, 3, 4], { autoTieBreaker: true })).toEqual([]);
  });

  it('reports two disjoint quorate components (two_node allows them: the check must fail)', () => {
    const l = logs([conf(1, 0, [1, 2]), conf(1, 10, [1])], [conf(2, 0, [1, 2]), conf(2, 10, [2])]);
    const v = checkQuorum(l, [1, 2], { twoNode: true });
    expect(v).toHaveLength(1);
    expect(v[0]).toMatchObject({ t: 10, nodes: [1, 2] });
    expect(v[0].message).toMatch(/both quorate with disjoint memberships/);
  });

  it('a crashed node is not quorate', () => {
    const l = logs([conf(1, 0, [1, 2]), { type: 'crash', t: 5, node: 1 }], [conf(2, 0, [1, 2]), conf(2, 10, [2])]);
    expect(checkQuorum(l, [1, 2], { twoNode: true })).toEqual([]);
  });
});
