// A local cluster for the drill: N real daemons (`afcluster daemon`, one process per node on
// 127.0.0.1..N over loopback UDP) from writeLocalCluster, ready once every node sees all N
// members; always stopped by the caller (and killed at exit if the caller dies).
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeLocalCluster } from '../../core/config/index.ts';
import { ClusterError } from '../../core/errors.ts';
import { ClusterSocket } from '../../sockapi/client.ts';
import { stop, track } from '../bench/proc.ts';

const ENTRY = fileURLToPath(new URL('../afcluster.mjs', import.meta.url));
const READY_TIMEOUT_MS = 60_000;

export interface DrillClusterOptions {
  readonly driver: string;
  readonly nodes: number;
  /** UDP port of every node; default: a free one. */
  readonly port?: number;
  /** Keep the directory (configs, logs) afterwards. */
  readonly keep?: boolean;
}

export interface DrillNode {
  readonly id: number;
  readonly socket: string;
  readonly log: string;
  readonly child: ChildProcess;
  exited?: string;
}

/** A UDP port free on 127.0.0.1..N right now. */
export async function freePort(nodes: number): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    const socks = Array.from({ length: nodes }, () => createSocket('udp4'));
    const ok = await Promise.all(socks.map((s, i) => new Promise<boolean>((res) => {
      s.once('error', () => res(false));
      s.bind(port, `127.0.0.${i + 1}`, () => res(true));
    })));
    await Promise.all(socks.map((s) => new Promise<void>((res) => { try { s.close(() => res()); } catch { res(); } })));
    if (ok.every(Boolean)) return port;
  }
  throw new ClusterError('EADDRINUSE', 'no free UDP port on the loopback addresses after 20 tries; give --port');
}

export function logTail(path: string, lines = 15): string {
  try { return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return '(no log)'; }
}

export class DrillCluster {
  private constructor(readonly dir: string, readonly nodes: DrillNode[], private readonly keep: boolean) {}

  static async start(o: DrillClusterOptions): Promise<DrillCluster> {
    const dir = mkdtempSync(join(tmpdir(), `afc-drill-${o.driver}-`));
    const port = o.port ?? await freePort(o.nodes);
    const { configs } = writeLocalCluster({ dir, nodes: o.nodes, driver: o.driver, crypto: true, basePort: port, clusterName: 'drill' });
    const nodes = configs.map((config, i) => spawnDaemon(i + 1, config, dir));
    const c = new DrillCluster(dir, nodes, o.keep ?? false);
    try {
      await c.waitReady();
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  /** Every node answers and sees all nodes as members, with no group state exchange under way. */
  private async waitReady(): Promise<void> {
    const want = this.nodes.map((n) => n.id).join(',');
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const down = this.nodes.find((n) => n.exited);
      if (down) throw new ClusterError('ECONNREFUSED', `node ${down.id}'s daemon exited (${down.exited}); ${down.log}:\n${logTail(down.log)}`);
      const ready = await Promise.all(this.nodes.map((n) => nodeReady(n, want)));
      if (ready.every(Boolean)) return;
      if (Date.now() > deadline) throw new ClusterError('ETIMEDOUT', `the ${this.nodes.length} nodes did not all see members ${want} within ${READY_TIMEOUT_MS} ms; logs in ${this.dir}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  failures(): string[] {
    return this.nodes.filter((n) => n.exited).map((n) => `node ${n.id}'s daemon exited (${n.exited}); ${n.log}:\n${logTail(n.log)}`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => stop(n.child, 10_000)));
    if (!this.keep) rmSync(this.dir, { recursive: true, force: true });
  }
}

function spawnDaemon(id: number, config: string, dir: string): DrillNode {
  const log = join(dir, `node${id}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, [ENTRY, 'daemon', '--config', config, '--log-level', 'warn'], { stdio: ['ignore', fd, fd] });
  track(child);
  const node: DrillNode = { id, socket: join(dir, `node${id}.sock`), log, child };
  child.once('exit', (code, sig) => { node.exited = sig ?? `status ${code}`; });
  return node;
}

async function nodeReady(n: DrillNode, want: string): Promise<boolean> {
  if (!existsSync(n.socket)) return false;
  try {
    const s = await ClusterSocket.open({ path: n.socket, timeoutMs: 2000 });
    try {
      const st = await s.stats();
      return st['node.members'] === want && (st['groups.exchanging'] ?? 0) === 0;
    } finally {
      await s.close();
    }
  } catch {
    return false;
  }
}
