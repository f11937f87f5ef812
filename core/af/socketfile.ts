// The bridge socket's place in the file system: its directory (created with mode 0750 by
// default), the stale file a crashed daemon left behind, mode and ownership. Permissions on the
// directory and the socket decide who may use the cluster (docs/ARCHITECTURE.md, "The bridge").
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { ClusterError } from '../api/errors.ts';
import { connectUnix, createUnixSocket } from './unix.ts';
import { lookupId } from '../config/accounts.ts';

/** sun_path holds 108 bytes with the terminating NUL; unix-dgram would silently truncate. */
export const UNIX_PATH_MAX = 107;

export interface SocketFileOptions {
  readonly path: string;
  readonly dirMode: number;
  readonly mode: number;
  readonly owner?: string;
  readonly group?: string;
}

export function checkUnixPath(path: string, what: string): void {
  if (Buffer.byteLength(path) > UNIX_PATH_MAX) {
    throw new ClusterError('ENAMETOOLONG', `${what} ${path} is longer than ${UNIX_PATH_MAX} bytes (the unix socket limit); choose a shorter path`);
  }
}

/** Before bind: the directory exists, and no live daemon holds the path (a stale file is removed). */
export function prepareSocketPath(opts: SocketFileOptions, warn: (msg: string) => void): void {
  checkUnixPath(opts.path, 'socket path');
  const dir = dirname(opts.path);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: opts.dirMode });
    chmodSync(dir, opts.dirMode); // mkdir's mode is filtered by the umask
    chownPath(dir, opts);
  } else if ((lstatSync(dir).mode & 0o777) !== opts.dirMode) {
    warn(`socket directory ${dir} exists with mode 0${(lstatSync(dir).mode & 0o777).toString(8)}, not 0${opts.dirMode.toString(8)}; left as it is`);
  }
  removeStale(opts.path, warn);
}

function removeStale(path: string, warn: (msg: string) => void): void {
  let st;
  try { st = lstatSync(path); } catch { return; }
  if (!st.isSocket()) {
    throw new ClusterError('EADDRINUSE', `${path} exists and is not a socket; remove it or choose another node.socket`);
  }
  const probe = createUnixSocket();
  const err = connectUnix(probe, path);
  probe.close();
  if (err === undefined) {
    throw new ClusterError('EADDRINUSE', `a daemon is already listening on ${path}; stop it or choose another node.socket`);
  }
  warn(`removing stale socket ${path} (${err})`);
  unlinkSync(path);
}

/** After bind: the socket's mode and owner. */
export function secureSocket(opts: SocketFileOptions): void {
  chmodSync(opts.path, opts.mode);
  chownPath(opts.path, opts);
}

function chownPath(path: string, opts: SocketFileOptions): void {
  if (opts.owner === undefined && opts.group === undefined) return;
  const uid = opts.owner === undefined ? -1 : resolveId(opts.owner, '/etc/passwd', 'node.socket_owner');
  const gid = opts.group === undefined ? -1 : resolveId(opts.group, '/etc/group', 'node.socket_group');
  try {
    chownSync(path, uid, gid);
  } catch (e) {
    throw new ClusterError('EACCES', `cannot chown ${path} to ${opts.owner ?? ''}:${opts.group ?? ''} (${(e as Error).message}); run the daemon as root or drop socket_owner/socket_group`);
  }
}

/** A user or group name (or number) to its id, from the passwd/group file. */
function resolveId(name: string, file: '/etc/passwd' | '/etc/group', key: string): number {
  const id = lookupId(name, file === '/etc/passwd' ? 'user' : 'group');
  if (id === undefined) throw new ClusterError('ENOENT', `${key} = "${name}": no such entry in ${file}; use an existing name or a number`);
  return id;
}
