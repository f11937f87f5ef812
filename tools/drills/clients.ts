// The fault drills' client processes (tools/drills/stream-client.ts) seen from the drill: spawn,
// read their JSON lines, command them, and wait on what they have logged.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { track } from '../../test/integration/cluster.ts';
import { until } from '../../test/integration/bridge-helpers.ts';
import { parseRecord, type ClientLog, type DrillMember } from './fault-checker.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = join(import.meta.dirname, 'stream-client.ts');

type Line = Record<string, unknown>;
export const memberKey = (m: DrillMember): string => `${m.nodeId}/${m.pid}/${m.port}`;

export class StreamClient {
  readonly lines: Line[] = [];
  readonly proc: ChildProcess;
  /** False once its daemon was killed (it is then no survivor). */
  survivor = true;

  constructor(readonly name: string, readonly nodeId: number, opts: { socket: string; group: string; order: string; intervalMs: number }) {
    this.proc = track(spawn(process.execPath, ['--import', 'tsx', SCRIPT, opts.socket, opts.group, name, opts.order, String(opts.intervalMs)], {
      cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'],
    }));
    this.proc.stdin!.on('error', () => { /* the client exited: nothing more to tell it */ });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      try { this.lines.push(JSON.parse(l) as Line); } catch { /* not a log line */ }
    });
  }

  get self(): DrillMember | undefined {
    return this.lines.find((l) => l.type === 'open')?.self as DrillMember | undefined;
  }

  command(line: string): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.stdin!.write(`${line}\n`);
  }

  /** How many of its own messages it has delivered (self-delivery: the ring carries it). */
  ownDelivered(): number {
    const prefix = `${this.name}:`;
    return this.lines.filter((l) => l.type === 'message' && String(l.text).startsWith(prefix)).length;
  }

  lastMembers(): string[] | undefined {
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const l = this.lines[i];
      if (l.type === 'membership') return l.kind === 'regular' ? (l.members as DrillMember[]).map(memberKey).sort() : undefined;
    }
    return undefined;
  }

  hasText(text: string): boolean {
    return this.lines.some((l) => l.type === 'message' && l.text === text);
  }

  failures(): Line[] {
    return this.lines.filter((l) => l.type === 'fail');
  }

  wait(what: string, check: (c: StreamClient) => boolean, ms: number): Promise<void> {
    return until(`${this.name}: ${what}`, () => check(this), ms).then(() => undefined);
  }

  log(): ClientLog {
    const self = this.self ?? { nodeId: this.nodeId, pid: 0, port: 0 };
    return { name: this.name, self, survivor: this.survivor, records: this.lines.map(parseRecord) };
  }

  kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.resolve();
    return new Promise((res) => { this.proc.once('exit', () => res()); this.proc.kill('SIGKILL'); });
  }

  /** Ask it to close; kill it if it has not exited within `ms`. */
  async close(ms = 5000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((res) => this.proc.once('exit', () => res()));
    this.command('close');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    await exited;
    clearTimeout(t);
  }
}
