// The quorum property of the checker: at no virtual time are two components with disjoint
// memberships both quorate. Each node's quorum state is replayed from its own log with the
// project's Quorum rules (core/quorum), as a node would compute it from the configurations its
// driver delivered (one vote per node, expected votes the cluster's size, and the options the
// run chose); a crash ends a node's state and a restart begins a fresh one, as a daemon's would.
// Then every moment at which some node's state changed is examined: the quorate nodes'
// current member sets must pairwise intersect. Pure: logs in, violations out.
import { Quorum, type QuorumOptions } from '../core/quorum/quorum.ts';
import type { NodeLog } from './log.ts';

/** One node's belief from time t: quorate or not, with which members. */
interface Belief { readonly t: number; readonly node: number; readonly quorate: boolean; readonly members: readonly number[] }

export interface QuorumViolation { readonly t: number; readonly nodes: [number, number]; readonly message: string }

/** Options a seed may draw: the ones that keep "at most one quorate part" (not two_node, not
 *  last_man_standing, which trade it away by design: docs/LOCKS.md). */
export type SafeQuorumOptions = Pick<QuorumOptions, 'waitForAll' | 'autoTieBreaker' | 'autoTieBreakerNode'>;

function beliefs(log: NodeLog, opts: QuorumOptions): Belief[] {
  const out: Belief[] = [];
  let q: Quorum | undefined = new Quorum(opts);
  for (const ev of log.events) {
    if (ev.type === 'crash' || ev.type === 'leave') {
      q = undefined;
      out.push({ t: ev.t, node: log.node, quorate: false, members: [] });
    } else if (ev.type === 'restart') {
      q = new Quorum(opts);
    } else if (ev.type === 'conf' && q) {
      out.push({ t: ev.t, node: log.node, quorate: q.configuration(ev.members, ev.t).quorate, members: ev.members });
    }
  }
  return out;
}

/** `options`: what the run chose (the swarm draws only SafeQuorumOptions; a test may pass
 *  two_node to see the check fail, as it must). */
export function checkQuorum(logs: readonly NodeLog[], nodes: readonly number[], options: Partial<QuorumOptions>, max = 5): QuorumViolation[] {
  const opts: QuorumOptions = {
    enabled: true, votes: new Map(nodes.map((id) => [id, 1])), expectedVotes: 0, twoNode: false, waitForAll: false,
    lastManStanding: false, lastManStandingWindowMs: 10_000, autoTieBreaker: false, autoTieBreakerNode: 'lowest', ...options,
  };
  const all = logs.flatMap((l) => beliefs(l, opts)).sort((a, b) => a.t - b.t);
  const current = new Map<number, Belief>();
  const out: QuorumViolation[] = [];
  for (let i = 0; i < all.length && out.length < max; i++) {
    current.set(all[i].node, all[i]);
    // Check once per instant, after every change made at that instant.
    if (i + 1 < all.length && all[i + 1].t === all[i].t) continue;
    const quorate = [...current.values()].filter((b) => b.quorate);
    for (let x = 0; x < quorate.length; x++) {
      for (let y = x + 1; y < quorate.length; y++) {
        const a = quorate[x], b = quorate[y];
        if (a.members.some((m) => b.members.includes(m))) continue;
        out.push({
          t: all[i].t, nodes: [a.node, b.node],
          message: `at ${all[i].t.toFixed(3)} ms node ${a.node} (members ${a.members.join(',')}) and node ${b.node} (members ${b.members.join(',')}) are both quorate with disjoint memberships`,
        });
      }
    }
  }
  return out;
}
