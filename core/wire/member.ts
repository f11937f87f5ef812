// A member's identity as a map key: `node/pid/port`, the same text everywhere a member is
// looked up (group tables, the lock service, the drills' checkers).

type MemberLike = { readonly nodeId: number; readonly pid: number; readonly port: number };

export function memberKey(m: MemberLike): string {
  return `${m.nodeId}/${m.pid}/${m.port}`;
}

/** Ascending by node, then pid, then port: the order member lists travel and print in. */
export function compareMembers(a: MemberLike, b: MemberLike): number {
  return a.nodeId - b.nodeId || a.pid - b.pid || a.port - b.port;
}
