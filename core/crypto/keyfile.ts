// Cluster key files: exactly 32 random bytes (raw, no encoding), mode 0600. The same file is
// copied to every node. A key that group or others can read is refused: it would let any local
// user forge cluster traffic.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readSync, unlinkSync, writeSync, constants, fchmodSync } from 'node:fs';
import { ClusterError } from '../api/errors.ts';
import { KEY_BYTES } from './sealer.ts';
import { dirname } from 'node:path';

export interface WriteKeyFileOptions {
  /** Replace an existing file (default: refuse, so a working key is never lost by accident). */
  readonly force?: boolean;
}

/** Writes a fresh random key to `path` with mode 0600 and fsyncs it. */
export function writeKeyFile(path: string, opts: WriteKeyFileOptions = {}): void {
  if (opts.force) {
    try {
      unlinkSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, path, 'replace');
    }
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new ClusterError('EINVAL', `${path}: a key file already exists; keep it, or pass --force to replace it (every node then needs the new key)`);
    }
    throw fsError(e, path, 'create');
  }
  try {
    fchmodSync(fd, 0o600); // the umask cannot widen it, but be explicit
    writeSync(fd, randomBytes(KEY_BYTES));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads and checks a key file: owner-only permissions, exactly 32 bytes. */
export function readKeyFile(path: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (e) {
    throw fsError(e, path, 'read');
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ClusterError('EINVAL', `${path}: key file is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new ClusterError('EACCES', `${path}: key file has mode ${mode}, so group or others can read or change it; fix it with: chmod 600 ${path}`);
    }
    if (st.size !== KEY_BYTES) throw wrongLength(path, st.size);
    const key = Buffer.alloc(KEY_BYTES);
    const n = readSync(fd, key, 0, KEY_BYTES, 0);
    if (n !== KEY_BYTES) throw wrongLength(path, n);
    return key;
  } finally {
    closeSync(fd);
  }
}

function wrongLength(path: string, n: number): ClusterError {
  return new ClusterError('EINVAL', `${path}: a key file holds exactly ${KEY_BYTES} bytes, this one has ${n}; make one with: afcluster keygen --out ${path} --force`);
}

function fsError(e: unknown, path: string, what: string): ClusterError {
  const code = (e as NodeJS.ErrnoException).code;
  if (what !== 'read') {
    const dir = dirname(path);
    if (code === 'ENOENT' || code === 'ENOTDIR') return new ClusterError('ENOENT', `${path}: cannot ${what} the key file: the directory ${dir} does not exist; create it first (mkdir -p ${dir}) or choose another path`);
    if (code === 'EACCES' || code === 'EPERM') return new ClusterError('EACCES', `${path}: permission denied to ${what} the key file in ${dir}; run as a user who may write there (root for /etc), or choose another path`);
  }
  if (code === 'ENOENT') return new ClusterError('ENOENT', `${path}: no such key file; make one with: afcluster keygen --out ${path}`);
  if (code === 'EACCES' || code === 'EPERM') return new ClusterError('EACCES', `${path}: permission denied to ${what} the key file`);
  return new ClusterError('EINVAL', `${path}: cannot ${what} the key file: ${(e as Error).message}`);
}
