// Which daemon a client command talks to: --socket PATH, or --node N of the running
// `afcluster up` (which records its nodes in a well-known file), or this machine's daemon (the
// socket its config names), or the default socket.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_ENV, DEFAULT_CONFIG, DEFAULT_SOCKET, loadConfig } from '../core/config/index.ts';
import { builtinRegistry } from '../drivers/builtin.ts';
import { ClusterError } from '../core/api/errors.ts';
import { intFlag, UsageError } from './command.ts';

export interface UpRecord {
  readonly pid: number;
  readonly dir: string;
  readonly driver: string;
  readonly nodes: readonly { readonly id: number; readonly socket: string; readonly config: string; readonly pid: number }[];
}

/** Flags every client command takes. */
export const TARGET_FLAGS = {
  socket: { type: 'string', short: 's' },
  node: { type: 'string', short: 'n' },
} as const;

export const TARGET_HELP = `  -s, --socket PATH     the daemon's socket (node.socket in its config)
  -n, --node N          node N of the running "afcluster up"
  (neither: node 1 of a running "afcluster up", else node.socket of this machine's config,
  $${CONFIG_ENV} or ${DEFAULT_CONFIG}, else ${DEFAULT_SOCKET})`;

/** node.socket of this machine's config when it can be read, else the default socket. */
export function configuredSocket(env: NodeJS.ProcessEnv = process.env): string {
  const path = env[CONFIG_ENV] || DEFAULT_CONFIG;
  if (!existsSync(path)) return DEFAULT_SOCKET;
  try {
    return loadConfig(path, builtinRegistry()).node.socket;
  } catch {
    return DEFAULT_SOCKET; // an unreadable or invalid file: the daemon says why when it starts
  }
}

/** Directory of the running `up`'s record: per user, so two users do not collide. */
export function upRecordDir(): string {
  const base = process.env.XDG_RUNTIME_DIR || tmpdir();
  return join(base, `afcluster-up-${process.getuid?.() ?? 0}`);
}

export function upRecordPath(): string {
  return join(upRecordDir(), 'current');
}

export function writeUpRecord(rec: UpRecord): void {
  mkdirSync(upRecordDir(), { recursive: true, mode: 0o700 });
  const tmp = `${upRecordPath()}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(rec, null, 2));
  renameSync(tmp, upRecordPath());
}

/** Remove the record if it is ours. */
export function clearUpRecord(pid: number): void {
  const rec = readUpRecord();
  if (rec && rec.pid === pid) rmSync(upRecordPath(), { force: true });
}

export function readUpRecord(): UpRecord | undefined {
  const path = upRecordPath();
  if (!existsSync(path)) return undefined;
  try {
    const rec = JSON.parse(readFileSync(path, 'utf8')) as UpRecord;
    process.kill(rec.pid, 0); // still running?
    return rec;
  } catch {
    return undefined;
  }
}

export function resolveSocket(values: { socket?: string; node?: string }): string {
  if (values.socket !== undefined && values.node !== undefined) throw new UsageError('give --socket or --node, not both');
  if (values.socket !== undefined) return values.socket;
  const rec = readUpRecord();
  if (values.node === undefined) return rec?.nodes[0]?.socket ?? configuredSocket();
  const n = intFlag(values.node, 'node', 1, 1, 254);
  if (!rec) throw new ClusterError('ENOENT', `--node ${n}: no "afcluster up" is running (no ${upRecordPath()}); start one or give --socket PATH`);
  const node = rec.nodes.find((x) => x.id === n);
  if (!node) throw new ClusterError('ENOENT', `--node ${n}: the running "afcluster up" has nodes 1..${rec.nodes.length}`);
  return node.socket;
}
