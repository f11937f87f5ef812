// The integration tests' cluster: real daemons (one process per node, on 127.0.0.1..N over
// loopback UDP) from tools/local-cluster.ts, plus client processes (client-proc.ts); every
// child is killed when the test process exits, however it exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { LocalCluster, track, type ClusterOptions, type LocalNode } from '../../tools/local-cluster.ts';
import { until } from './bridge-helpers.ts';

export { track, type ClusterOptions };
export type TestNode = LocalNode;

const ROOT = resolve(import.meta.dirname, '../..');

/** A LocalCluster whose temp dir says it belongs to an integration test. */
export class TestCluster extends LocalCluster {
  constructor(opts: ClusterOptions) {
    super({ prefix: 'afc-it-', ...opts });
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
