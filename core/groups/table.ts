// The group table: every known group's members as this node's ordered view has them. Pure data;
// GroupService decides when it changes.
import type { Member, MemberChange, MemberIdentity } from '../api/types.ts';

import { compareMembers, memberKey } from '../wire/member.ts';

export { compareMembers, memberKey };

export function compareChanges(a: MemberChange, b: MemberChange): number {
  return compareMembers(a.member, b.member);
}

export class GroupState {
  private readonly byKey = new Map<string, Member>();
  /** Who each member is, when its node said (absent: unknown). */
  private readonly identities = new Map<string, MemberIdentity>();
  private sorted: Member[] | undefined;
  constructor(readonly name: string) {}

  /** The member each node last sent data as (find's fast path: no key string per message). */
  private readonly lastSender = new Map<number, Member>();
  /** The last member find() found (its first path: not even a lookup by node per message). */
  private found: Member | undefined;

  get size(): number { return this.byKey.size; }
  has(m: Member): boolean { return this.byKey.has(memberKey(m)); }
  /** The member with this address, as stored (shared, never mutated), or undefined. */
  find(nodeId: number, pid: number, port: number): Member | undefined {
    const f = this.found;
    if (f !== undefined && f.nodeId === nodeId && f.pid === pid && f.port === port) return f;
    const last = this.lastSender.get(nodeId);
    if (last !== undefined && last.pid === pid && last.port === port) return (this.found = last);
    const m = this.byKey.get(memberKey({ nodeId, pid, port }));
    if (m !== undefined) this.lastSender.set(nodeId, (this.found = m));
    return m;
  }
  /** Adds a member (false when it is one already); `identity`, when given, is who it is (also for a member already in). */
  add(m: Member, identity?: MemberIdentity): boolean {
    const k = memberKey(m);
    if (identity) this.identities.set(k, identity);
    if (this.byKey.has(k)) return false;
    this.byKey.set(k, m); this.sorted = undefined;
    return true;
  }
  identity(m: Member): MemberIdentity | undefined { return this.identities.get(memberKey(m)); }
  remove(m: Member): boolean {
    const k = memberKey(m);
    this.identities.delete(k);
    const gone = this.byKey.delete(k);
    if (gone) {
      this.sorted = undefined;
      const last = this.lastSender.get(m.nodeId);
      if (last !== undefined && last.pid === m.pid && last.port === m.port) this.lastSender.delete(m.nodeId);
      const f = this.found;
      if (f !== undefined && f.nodeId === m.nodeId && f.pid === m.pid && f.port === m.port) this.found = undefined;
    }
    return gone;
  }
  /** Members sorted by (nodeId, pid, port); the array is shared until the next change. */
  list(): readonly Member[] {
    this.sorted ??= [...this.byKey.values()].sort(compareMembers);
    return this.sorted;
  }
  ofNode(nodeId: number): Member[] {
    return this.list().filter((m) => m.nodeId === nodeId);
  }
}

export class GroupTable {
  private readonly groups = new Map<string, GroupState>();
  private changes = 0;
  /** Changes each time a group is added or forgotten: a GroupState looked up under an earlier
   *  generation may no longer be the one of its name. */
  get generation(): number { return this.changes; }
  get(name: string): GroupState | undefined { return this.groups.get(name); }
  ensure(name: string): GroupState {
    let g = this.groups.get(name);
    if (!g) { g = new GroupState(name); this.groups.set(name, g); this.changes++; }
    return g;
  }
  /** Forget a group once it has no members (keeps memory bounded by the live groups). */
  prune(name: string): void {
    if (this.groups.get(name)?.size === 0) { this.groups.delete(name); this.changes++; }
  }
  all(): GroupState[] { return [...this.groups.values()]; }
  get count(): number { return this.groups.size; }
}
