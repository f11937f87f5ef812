// Quorum: which component of a partitioned cluster may act. Extended virtual synchrony delivers
// in every component; quorum names the one primary component, by votes, as corosync's
// votequorum does (the options keep votequorum(5)'s names and meanings). Pure: the group layer
// feeds it the configurations the driver delivers and what the other nodes reported in the
// state exchange, at the same point of the message order on every node, so every member of a
// configuration computes the same state.
//
// quorum = floor(expected / 2) + 1 votes; a component is quorate when its nodes' votes reach it
// (and, under wait_for_all, once every configured node has been seen together). Two disjoint
// components can never both hold more than half of the same expected votes, so at most one is
// quorate: the options below bend that rule, each in a documented way.
// - two_node: a 2-node cluster is quorate with 1 vote (both halves of a split think they are:
//   only fencing makes that safe); it implies wait_for_all unless that is set false.
// - wait_for_all: after a cold start, not quorate until all configured nodes have been in one
//   configuration (then remembered; a node joining a component that has seen them all inherits it).
// - last_man_standing: once a quorate membership has been stable for the window, expected votes
//   drop to the votes present, so quorum degrades step by step (to 2 nodes, or 1 with
//   auto_tie_breaker). Expected votes rise again by themselves when more votes are seen.
// - auto_tie_breaker: in an exact half split, the half with the tie-breaker node (the lowest
//   configured id, the highest, or one named node) stays quorate.
import type { QuorumFlag, QuorumState } from '../api/types.ts';
import type { NodeConfig } from '../config/types.ts';

/** The [quorum] section as parsed (core/config/types.ts), with the votes of every configured node. */
export type QuorumOptions = Omit<NodeConfig['quorum'], 'fenceCommand'> & {
  /** Votes per configured node id. The owner may replace the map (a reloaded node list: a getter
   *  returning a new map); Quorum notices the new map and applies it as listChanged() says. */
  readonly votes: ReadonlyMap<number, number>;
};

/** What one node contributes to the state exchange after a regular configuration. */
export interface QuorumReport {
  /** This node has seen every configured node in one configuration (wait_for_all). */
  readonly allSeen: boolean;
  /** Its expected votes. */
  readonly expected: number;
}

export class Quorum {
  /** The votes map the state was last computed from (see listChanged). */
  private votesSeen: ReadonlyMap<number, number>;
  /** After the node list changed: the expected votes the new list asks for. */
  private listExpected: number | undefined;
  private expected: number;
  private allSeen = false;
  private members: readonly number[] = [];
  /** When the current membership began (for last_man_standing's window). */
  private stableSince = 0;
  private current: QuorumState;

  constructor(private readonly opts: QuorumOptions) {
    this.votesSeen = opts.votes;
    this.expected = this.configuredExpected();
    this.current = this.compute();
  }

  private total(): number {
    let sum = 0;
    for (const v of this.opts.votes.values()) sum += v;
    return sum;
  }

  private configuredExpected(): number {
    return this.opts.expectedVotes > 0 ? this.opts.expectedVotes : this.total();
  }

  private tieBreaker(): number {
    const n = this.opts.autoTieBreakerNode;
    if (typeof n === 'number') return n;
    const ids = [...this.opts.votes.keys()];
    return n === 'lowest' ? Math.min(...ids) : Math.max(...ids);
  }

  /**
   * The node list changed under us (a reload): its expected votes apply at points every node
   * sees in the same place of the message order. More: at the next configuration (raised like
   * any rise in votes, and spread by the state exchange). Fewer: proposed by lowerDue() like
   * last_man_standing's lowering, in an agreed message, never below the votes present.
   */
  private listChanged(): void {
    if (this.opts.votes === this.votesSeen) return;
    this.votesSeen = this.opts.votes;
    this.listExpected = this.configuredExpected();
  }

  get state(): QuorumState { return this.current; }

  /** A configuration was delivered (transitional or regular): recompute for its members. */
  configuration(members: readonly number[], now: number): QuorumState {
    this.listChanged();
    this.members = [...members];
    this.stableSince = now;
    if (this.votesOf(members) === this.total()) this.allSeen = true;
    if (this.listExpected !== undefined && this.listExpected >= this.expected) {
      this.expected = this.listExpected;
      this.listExpected = undefined;
    }
    this.expected = Math.max(this.expected, this.votesOf(members));
    return this.update();
  }

  /** Every configured node with its votes, and whether it is in the current configuration. */
  nodes(): { nodeId: number; votes: number; present: boolean }[] {
    return [...this.opts.votes].sort((a, b) => a[0] - b[0])
      .map(([nodeId, votes]) => ({ nodeId, votes, present: this.members.includes(nodeId) }));
  }

  report(): QuorumReport {
    return { allSeen: this.allSeen, expected: this.expected };
  }

  /** The state exchange completed: adopt what the configuration's nodes reported. */
  merge(reports: readonly QuorumReport[]): QuorumState {
    for (const r of reports) {
      if (r.allSeen) this.allSeen = true;
      this.expected = Math.max(this.expected, r.expected);
    }
    return this.update();
  }

  /** The expected votes to propose now (a shorter node list, or last_man_standing), or undefined
   *  when nothing is due. */
  lowerDue(now: number): number | undefined {
    this.listChanged();
    if (this.opts.enabled && this.listExpected !== undefined && this.listExpected < this.expected) {
      const target = Math.max(this.listExpected, this.votesOf(this.members));
      if (target < this.expected) return target;
    }
    if (!this.opts.enabled || !this.opts.lastManStanding || !this.current.quorate) return undefined;
    if (now - this.stableSince < this.opts.lastManStandingWindowMs) return undefined;
    const votes = this.votesOf(this.members);
    const floor = this.opts.autoTieBreaker ? 1 : 2;
    const target = Math.max(votes, Math.min(floor, this.expected));
    return target < this.expected ? target : undefined;
  }

  /** An agreed "lower expected votes" message was delivered (last_man_standing). */
  lower(expected: number): QuorumState {
    if (expected >= this.votesOf(this.members) && expected < this.expected) this.expected = expected;
    if (this.listExpected !== undefined && this.expected <= this.listExpected) this.listExpected = undefined;
    return this.update();
  }

  private update(): QuorumState {
    this.current = this.compute();
    return this.current;
  }

  private compute(): QuorumState {
    const votes = this.votesOf(this.members);
    const expected = this.expected;
    const two = this.opts.twoNode && expected === 2;
    const quorum = two ? 1 : Math.floor(expected / 2) + 1;
    const flags: QuorumFlag[] = [];
    if (!this.opts.enabled) flags.push('disabled');
    if (two) flags.push('two_node');
    if (this.opts.waitForAll) flags.push(this.allSeen ? 'wait_for_all' : 'wait_for_all_pending');
    if (this.opts.lastManStanding) flags.push('last_man_standing');
    if (this.opts.autoTieBreaker) flags.push('auto_tie_breaker');
    const tie = this.opts.autoTieBreaker && votes * 2 === expected && this.members.includes(this.tieBreaker());
    const enough = votes >= quorum || tie;
    const quorate = !this.opts.enabled || (enough && (!this.opts.waitForAll || this.allSeen));
    return { quorate, votes, expected, quorum, flags };
  }

  private votesOf(members: readonly number[]): number {
    let v = 0;
    for (const id of members) v += this.opts.votes.get(id) ?? 0;
    return v;
  }
}

/** The quorum options of a node's config: votes per node from cluster.nodes, the rest from [quorum]. */
export function quorumOptions(config: Pick<NodeConfig, 'cluster' | 'quorum'>): QuorumOptions {
  const { fenceCommand: _fence, ...q } = config.quorum;
  return { ...q, votes: new Map(config.cluster.nodes.map((n) => [n.id, n.votes])) };
}

/** Quorum switched off for `nodes` (one vote each): every component is quorate. */
export function quorumOff(nodes: readonly number[]): QuorumOptions {
  return {
    enabled: false, votes: new Map(nodes.map((id) => [id, 1])), expectedVotes: 0, twoNode: false, waitForAll: false,
    lastManStanding: false, lastManStandingWindowMs: 10_000, autoTieBreaker: false, autoTieBreakerNode: 'lowest',
  };
}
