// Spawns real daemons (one process per node, on 127.0.0.1..N over loopback UDP) and client
// processes for integration tests, and always cleans them up: every child is killed when the
// test process exits, however it exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { writeLocalCluster } from '../../core/config/index.ts';
import { ClusterSocket } from '../../sockapi/client.ts';
import { tempDir, until } from './bridge-helpers.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const ENTRY = join(ROOT, 'tools/afcluster.mjs');
const children = new Set<ChildProcess>();
process.once('exit', () => { for (const c of children) c.kill('SIGKILL'); });

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export interface TestNode {
  readonly id: number;
  readonly config: string;
  readonly socket: string;
  readonly log: string;
  proc?: ChildProcess;
}

export interface ClusterOptions {
  readonly nodes: number;
  readonly driver: string;
  readonly basePort: number;
  readonly limits?: Record<string, number>;
  readonly driverSections?: Record<string, Record<string, unknown>>;
}

export class TestCluster {
  readonly nodes: TestNode[];
  private readonly tmp = tempDir('afc-it-');

  constructor(readonly opts: ClusterOptions) {
    const { configs } = writeLocalCluster({
      dir: this.tmp.dir, nodes: opts.nodes, driver: opts.driver, crypto: true, basePort: opts.basePort,
      limits: opts.limits, driverSections: opts.driverSections,
    });
    this.nodes = configs.map((config, i) => ({
      id: i + 1, config, socket: join(this.tmp.dir, `node${i + 1}.sock`), log: join(this.tmp.dir, `node${i + 1}.log`),
    }));
  }

  get dir(): string { return this.tmp.dir; }

  /** Start every node and wait until each sees all of `expectMembers` in its configuration. */
  async start(): Promise<void> {
    for (const n of this.nodes) this.startNode(n.id);
    await this.waitRing(this.nodes.map((n) => n.id));
  }

  startNode(id: number): void {
    const n = this.node(id);
    const fd = openSync(n.log, 'a');
    n.proc = track(spawn(process.execPath, [ENTRY, 'daemon', '--config', n.config, '--log-level', 'info'], { stdio: ['ignore', fd, fd] }));
  }

  node(id: number): TestNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Wait until every node in `ids` answers and its configuration is exactly `ids`. */
  async waitRing(ids: number[], ms = 60_000): Promise<void> {
    const want = [...ids].sort((a, b) => a - b).join(',');
    await until(`ring ${want}`, async () => {
      for (const id of ids) {
        const stats = await this.stats(id).catch(() => undefined);
        if (!stats || stats['node.members'] !== want || stats['groups.exchanging'] !== 0) return false;
      }
      return true;
    }, ms);
  }

  async stats(id: number): Promise<Record<string, number | string>> {
    const s = await ClusterSocket.open({ path: this.node(id).socket, timeoutMs: 2000 });
    try { return await s.stats(); } finally { await s.close(); }
  }

  kill(id: number, signal: NodeJS.Signals): Promise<void> {
    const p = this.node(id).proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    return new Promise((res) => { p.once('exit', () => res()); p.kill(signal); });
  }

  logTail(id: number): string {
    try { return readFileSync(this.node(id).log, 'utf8').split('\n').slice(-20).join('\n'); } catch { return ''; }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map(async (n) => {
      const t = setTimeout(() => n.proc?.kill('SIGKILL'), 10_000);
      await this.kill(n.id, 'SIGTERM');
      clearTimeout(t);
    }));
    this.tmp.cleanup();
  }
}

/** A client process (test/integration/client-proc.ts): its JSON lines, and a way to command it. */
export class ClientProc {
  readonly lines: Record<string, unknown>[] = [];
  readonly proc: ChildProcess;
  /** `socketDir`: where the client binds its socket (a test's temp dir, so a killed client leaves nothing behind). */
  constructor(readonly name: string, args: string[], socketDir?: string) {
    const env = socketDir ? { ...process.env, XDG_RUNTIME_DIR: socketDir } : process.env;
    this.proc = track(spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'client-proc.ts'), ...args], {
      cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'], env,
    }));
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      try { this.lines.push(JSON.parse(l) as Record<string, unknown>); } catch { /* not ours */ }
    });
  }
  command(line: string): void { this.proc.stdin!.write(`${line}\n`); }
  events(): Record<string, unknown>[] { return this.lines.filter((l) => l.type === 'message' || l.type === 'membership'); }
  wait(what: string, check: (lines: Record<string, unknown>[]) => boolean, ms = 30_000): Promise<void> {
    return until(`${this.name}: ${what}`, () => check(this.lines), ms).then(() => undefined);
  }
  exited(): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.resolve(this.proc.exitCode);
    return new Promise((res) => this.proc.once('exit', (code) => res(code)));
  }
}
