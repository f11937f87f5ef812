// Who is at the other end of a client's socket, by the kernel's word, not the client's (the
// bridge shell's side of BridgeHost.identify; docs/PROTOCOL.md, HELLO). unix-dgram cannot
// receive SCM_CREDENTIALS, so this reads what Linux publishes about the socket instead:
//
//  1. the file at the client's path (lstat, so a symbolic link is refused): a socket, whose
//     owner and group are the user that bound it (only root can give a file away);
//  2. /proc/PID/net/unix and /proc/net/unix (the claimed process's network namespace and the
//     daemon's, which differ when the client runs in another one): the socket bound at that
//     path, by its inode; exactly one (two sockets bound at one path, one of them unlinked,
//     cannot be told apart by their address: refused);
//  3. /proc/PID/fd of the pid the client claims: one of its descriptors is that socket
//     ("socket:[INODE]"), and that socket was created by the file's owner (stat through the
//     descriptor gives the socket inode's owner), so a file swapped in by a hard link is refused;
//  4. /proc/PID/status: the process's supplementary groups (for access rules).
//
// When the daemon may not read the process's descriptors (it is not root, and the process is
// another user's), step 3 cannot be done: the claim is then accepted only when the process runs
// as the file's owner (its real or effective uid, from /proc/PID/status, readable by all), and
// marked unverified: a user can then name another process of its own, never one of another user.
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync, type Stats } from 'node:fs';

/** Who a client is (the same shape as server.ts's ClientIdentity, which the shell returns). */
export interface PeerIdentity {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
  readonly verified: boolean;
  readonly file: string;
}

export type PeerRefusal = 'ESRCH' | 'EACCES' | 'ENOENT';

/** Descriptors of one process looked at, at most: a process with more is refused (EACCES). */
export const FD_SCAN_MAX = 65_536;

/** Does this process exist? (kill(pid, 0): EPERM means it does, and is another user's.) */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** "dev:ino" of the file at `path` (not following a link), or undefined when there is none. */
export function fileToken(path: string): string | undefined {
  try {
    const st = lstatSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * The identity of the client whose socket is bound at `path` and which claims to be process
 * `claimedPid`, or why it is refused: ENOENT (no file at the path), ESRCH (no such process),
 * EACCES (the kernel's records contradict the claim, or cannot support it). `proc` is where
 * procfs is mounted (tests).
 */
export function identifyPeer(path: string, claimedPid: number, proc = '/proc'): PeerIdentity | PeerRefusal {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'ENOENT' : 'EACCES';
  }
  if (!st.isSocket()) return 'EACCES';
  if (!pidExists(claimedPid)) return 'ESRCH';
  const status = readStatus(claimedPid, proc);
  const fds = listFds(claimedPid, proc);
  if (fds === 'gone') return 'ESRCH';
  let verified: boolean;
  if (fds === 'unreadable') {
    // Another user's process and a daemon that is not root: the process must run as the file's owner.
    if (!status || !status.uids.includes(st.uid)) return 'EACCES';
    verified = false;
  } else {
    const inode = boundInode(path, [`${proc}/${claimedPid}/net/unix`, `${proc}/net/unix`]);
    if (inode === undefined) return 'EACCES';
    const held = holds(claimedPid, fds, inode, proc);
    if (held === undefined || held.uid !== st.uid) return 'EACCES';
    verified = true;
  }
  const groups = [...new Set([st.gid, ...(status?.groups ?? [])])].sort((a, b) => a - b);
  return { pid: claimedPid, uid: st.uid, gid: st.gid, groups, verified, file: `${st.dev}:${st.ino}` };
}

/** The inode of the one socket bound at `path` in the listings `files` (/proc/.../net/unix, each
 *  a network namespace's), or undefined (none, or several). */
export function boundInode(path: string, files: readonly string[] = ['/proc/net/unix']): number | undefined {
  // The path is bytes; /proc prints them raw. Compare bytes as latin1 characters.
  const want = Buffer.from(path, 'utf8').toString('latin1');
  const found = new Set<number>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line.endsWith(want)) continue;
      // Num: RefCount Protocol Flags Type St Inode Path (the inode is padded to 5 characters).
      const m = /^[0-9a-fA-F]+: [0-9A-Fa-f]{8} [0-9A-Fa-f]{8} [0-9A-Fa-f]{8} [0-9A-Fa-f]{4} [0-9A-Fa-f]{2} +(\d+) (.*)$/.exec(line);
      if (m && m[2] === want) found.add(Number(m[1]));
    }
  }
  return found.size === 1 ? [...found][0] : undefined;
}

/** The descriptors of process `pid`; 'unreadable' when the daemon may not look, 'gone' when the process is gone. */
function listFds(pid: number, proc: string): string[] | 'unreadable' | 'gone' {
  try {
    return readdirSync(`${proc}/${pid}/fd`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM' ? 'unreadable' : 'gone';
  }
}

/** Does process `pid` hold socket `inode` among `fds`? Its owner (who created it) when it does. */
function holds(pid: number, fds: readonly string[], inode: number, proc: string): { uid: number } | undefined {
  const dir = `${proc}/${pid}/fd`;
  if (fds.length > FD_SCAN_MAX) return undefined;
  const want = `socket:[${inode}]`;
  for (const fd of fds) {
    let link: string;
    try { link = readlinkSync(`${dir}/${fd}`); } catch { continue; }
    if (link !== want) continue;
    try {
      return { uid: statSync(`${dir}/${fd}`).uid };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Uids (real, effective) and supplementary groups of a process, from /proc/PID/status. */
function readStatus(pid: number, proc: string): { uids: number[]; groups: number[] } | undefined {
  let text: string;
  try {
    text = readFileSync(`${proc}/${pid}/status`, 'latin1');
  } catch {
    return undefined;
  }
  const field = (name: string): number[] | undefined => {
    const m = new RegExp(`^${name}:[ \\t]*([0-9 \\t]*)$`, 'm').exec(text);
    return m ? m[1].trim().split(/\s+/).filter((s) => s !== '').map(Number) : undefined;
  };
  const uids = field('Uid');
  if (!uids || uids.length < 2) return undefined;
  return { uids: uids.slice(0, 2), groups: field('Groups') ?? [] };
}
