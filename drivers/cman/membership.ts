// Who this node believes is up, decided alone from what it hears (no agreement protocol: that
// is the baseline's nature, and two nodes may disagree for a while). Any valid datagram from a
// node is a sign of life; silence for the dead time, a resend limit or a leave takes it out.
// Each node also tells, in its heartbeats, whom it counts (a digest, see codec.ts), so a node
// that a peer dropped and re-added while it kept counting that peer finds out.
import { assert } from '../../core/api/errors.ts';
import { DIGEST_TOKEN_MAX } from './codec.ts';

export interface Member {
  readonly incarnation: number;
  lastHeardAt: number;
  /** What the member's last digest said about this node: 0 = not its member; -1 = none seen. */
  peerToken: number;
  /** Epoch of that digest: an older one (reordered) is ignored. */
  digestEpoch: number;
}

/** Why a node left this node's membership ('peer': its digest says it dropped this node). */
export type GoneReason = 'silent' | 'leave' | 'unacked' | 'restarted' | 'peer';

interface Gone {
  readonly incarnation: number;
  readonly at: number;
  readonly reason: GoneReason;
  /** Datagrams from it are ignored until then (damps flapping after 'unacked'). */
  readonly holdUntil: number;
}

/** How a datagram's (node, incarnation) relates to the membership. */
export type Admission = 'member' | 'new' | 'restarted' | 'stale';

export class Membership {
  private readonly live = new Map<number, Member>();
  private readonly gone = new Map<number, Gone>();
  /** Times each node was added: its digest token, so peers see every drop and re-add. */
  private readonly adds = new Map<number, number>();

  /** `staleAfterMs`: no datagram of an older incarnation outlives this in the network. */
  constructor(private readonly staleAfterMs: number) {}

  get ids(): number[] {
    return [...this.live.keys()].sort((a, b) => a - b);
  }

  get size(): number {
    return this.live.size;
  }

  has(node: number): boolean {
    return this.live.has(node);
  }

  get(node: number): Member | undefined {
    return this.live.get(node);
  }

  entries(): IterableIterator<[number, Member]> {
    return this.live.entries();
  }

  classify(node: number, incarnation: number, now: number): Admission {
    const m = this.live.get(node);
    if (m) {
      if (incarnation === m.incarnation) return 'member';
      return incarnation > m.incarnation ? 'restarted' : 'stale';
    }
    const g = this.gone.get(node);
    if (!g) return 'new';
    if (now < g.holdUntil) return 'stale';
    if (incarnation > g.incarnation) return 'new';
    // The same incarnation back after silence (a partition, a pause) rejoins; after a clean
    // leave its late datagrams are stale. A lower incarnation is stale unless the node has been
    // gone long enough that it must be a restart that lost its state file.
    if (incarnation === g.incarnation) return g.reason === 'leave' ? 'stale' : 'new';
    return now - g.at >= this.staleAfterMs ? 'new' : 'stale';
  }

  add(node: number, incarnation: number, now: number): void {
    assert(!this.live.has(node), `node ${node} is already a member`);
    this.live.set(node, { incarnation, lastHeardAt: now, peerToken: -1, digestEpoch: -1 });
    this.gone.delete(node);
    this.adds.set(node, (this.adds.get(node) ?? 0) + 1);
  }

  /** This node's digest token for `node`: 0 when not a member, else 1..DIGEST_TOKEN_MAX. */
  token(node: number): number {
    if (!this.live.has(node)) return 0;
    return ((this.adds.get(node)! - 1) % DIGEST_TOKEN_MAX) + 1;
  }

  remove(node: number, reason: GoneReason, now: number, holdMs = 0): Member {
    const m = this.live.get(node);
    assert(m, `node ${node} is not a member`);
    this.live.delete(node);
    this.gone.set(node, { incarnation: m.incarnation, at: now, reason, holdUntil: now + holdMs });
    return m;
  }

  /** A leave heard from a node that is not a member: its late datagrams are stale too. */
  noteLeft(node: number, incarnation: number, now: number): void {
    const g = this.gone.get(node);
    if (!g || incarnation > g.incarnation || (incarnation === g.incarnation && g.reason !== 'leave')) {
      this.gone.set(node, { incarnation, at: now, reason: 'leave', holdUntil: now });
    }
  }
}
