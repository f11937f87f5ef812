// Writes the configs of a local test cluster: N nodes on 127.0.0.1..127.0.0.N, one shared
// port, each node's socket and state dir under one directory. Used by `afcluster up`, tests
// and the bench.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'smol-toml';
import { ClusterError } from '../api/errors.ts';
import { writeKeyFile } from '../crypto/keyfile.ts';
import { DEFAULT_PORT } from './schema.ts';

export interface LocalClusterOptions {
  readonly dir: string;
  /** 1 to 254 nodes (127.0.0.1 .. 127.0.0.254). */
  readonly nodes: number;
  readonly driver: string;
  /** UDP port every node listens on (each on its own 127.0.0.N). Default 5405. */
  readonly basePort?: number;
  /** Write a fresh key to DIR/authkey and name it in every config. */
  readonly crypto: boolean;
  /** Extra driver sections, e.g. { totem: { token_ms: 200 } }. */
  readonly driverSections?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Default "local". */
  readonly clusterName?: string;
  readonly transport?: 'udpu' | 'multicast';
  /** cluster.mtu (default: the schema's, "auto": the interface's, 65535 on loopback). */
  readonly mtu?: number;
  /** Extra [limits] keys. */
  readonly limits?: Readonly<Record<string, number>>;
  /** [quorum] keys (default: none, so quorum is on with one vote per node). */
  readonly quorum?: Readonly<Record<string, unknown>>;
}

export interface LocalCluster {
  /** Config paths, node 1 first. */
  readonly configs: string[];
  readonly keyFile?: string;
}

/** Node i's loopback address. */
export function localAddress(i: number): string {
  return `127.0.0.${i}`;
}

export function writeLocalCluster(opts: LocalClusterOptions): LocalCluster {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 254) {
    throw new ClusterError('EINVAL', `a local cluster has 1 to 254 nodes (127.0.0.1 .. 127.0.0.254), not ${opts.nodes}`);
  }
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyFile = opts.crypto ? join(dir, 'authkey') : undefined;
  if (keyFile) writeKeyFile(keyFile, { force: true });
  const port = opts.basePort ?? DEFAULT_PORT;
  const nodeList = Array.from({ length: opts.nodes }, (_, k) => `  { id = ${k + 1}, addr = "${localAddress(k + 1)}:${port}", name = "node${k + 1}" },`);
  const configs: string[] = [];
  for (let i = 1; i <= opts.nodes; i++) {
    const path = join(dir, `node${i}.toml`);
    writeFileSync(path, nodeToml(opts, dir, i, nodeList, keyFile));
    configs.push(path);
  }
  return keyFile ? { configs, keyFile } : { configs };
}

function nodeToml(opts: LocalClusterOptions, dir: string, i: number, nodeList: string[], keyFile: string | undefined): string {
  const lines = [
    `# node ${i} of a local test cluster (written by writeLocalCluster)`,
    '[node]', `id = ${i}`, `socket = ${JSON.stringify(join(dir, `node${i}.sock`))}`,
    `state_dir = ${JSON.stringify(join(dir, `node${i}-state`))}`, '',
    '[cluster]', `name = ${JSON.stringify(opts.clusterName ?? 'local')}`, `driver = ${JSON.stringify(opts.driver)}`,
    `transport = "${opts.transport ?? 'udpu'}"`, ...(opts.mtu === undefined ? [] : [`mtu = ${opts.mtu}`]), 'nodes = [', ...nodeList, ']', '',
  ];
  if (keyFile) lines.push('[crypto]', `key_file = ${JSON.stringify(keyFile)}`, '');
  if (opts.limits && Object.keys(opts.limits).length > 0) lines.push(stringify({ limits: opts.limits }), '');
  if (opts.quorum && Object.keys(opts.quorum).length > 0) lines.push(stringify({ quorum: opts.quorum }), '');
  if (opts.driverSections && Object.keys(opts.driverSections).length > 0) lines.push(stringify(opts.driverSections), '');
  return lines.join('\n');
}
