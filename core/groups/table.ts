// The group table: every known group's members as this node's ordered view has them. Pure data;
// GroupService decides when it changes.
import type { Member, MemberChange } from '../../sockapi/types.ts';

export function memberKey(m: { nodeId: number; pid: number; port: number }): string {
  return `${m.nodeId}:${m.pid}:${m.port}`;
}

export function compareMembers(a: Member, b: Member): number {
  return a.nodeId - b.nodeId || a.pid - b.pid || a.port - b.port;
}

export function compareChanges(a: MemberChange, b: MemberChange): number {
  return compareMembers(a.member, b.member);
}

export class GroupState {
  private readonly byKey = new Map<string, Member>();
  private sorted: Member[] | undefined;
  constructor(readonly name: string) {}

  get size(): number { return this.byKey.size; }
  has(m: Member): boolean { return this.byKey.has(memberKey(m)); }
  add(m: Member): boolean {
    const k = memberKey(m);
    if (this.byKey.has(k)) return false;
    this.byKey.set(k, m); this.sorted = undefined;
    return true;
  }
  remove(m: Member): boolean {
    const gone = this.byKey.delete(memberKey(m));
    if (gone) this.sorted = undefined;
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
  get(name: string): GroupState | undefined { return this.groups.get(name); }
  ensure(name: string): GroupState {
    let g = this.groups.get(name);
    if (!g) { g = new GroupState(name); this.groups.set(name, g); }
    return g;
  }
  /** Forget a group once it has no members (keeps memory bounded by the live groups). */
  prune(name: string): void {
    if (this.groups.get(name)?.size === 0) this.groups.delete(name);
  }
  all(): GroupState[] { return [...this.groups.values()]; }
  get count(): number { return this.groups.size; }
}
