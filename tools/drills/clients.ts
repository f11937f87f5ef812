// The fault drills' clients seen from the drill: one process per node (tools/drills/stream-client.ts)
// holding one or more sockets; each socket is a StreamClient with its own log. Spawn, read their
// JSON lines, command them, and wait on what they have logged.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { track } from '../local-cluster.ts';
import { parseRecord, type ClientLog, type DrillMember } from '../../sim/group-checker.ts';
import { memberKey } from '../../core/wire/member.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = join(import.meta.dirname, 'stream-client.ts');

type Line = Record<string, unknown>;
export { memberKey };

export interface ClientSpec {
  readonly socket: string;
  readonly group: string;
  readonly order: string;
  readonly intervalMs: number;
}

/** One client process on one node, and its sockets. */
export class ClientProcess {
  readonly proc: ChildProcess;
  readonly clients: StreamClient[];

  constructor(readonly nodeId: number, names: string[], spec: ClientSpec) {
    this.clients = names.map((n) => new StreamClient(n, nodeId, this));
    const byName = new Map(this.clients.map((c) => [c.name, c]));
    // Client sockets bind beside the daemon's, in the cluster's dir: a process killed with -9
    // cannot remove its own, and the dir goes when the cluster stops.
    this.proc = track(spawn(process.execPath, ['--import', 'tsx', SCRIPT, spec.socket, spec.group, spec.order, String(spec.intervalMs), ...names], {
      cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, XDG_RUNTIME_DIR: dirname(spec.socket) },
    }));
    this.proc.stdin!.on('error', () => { /* the process exited: nothing more to tell it */ });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      let line: Line;
      try { line = JSON.parse(l) as Line; } catch { return; }
      const target = byName.get(String(line.client));
      if (target) target.lines.push(line);
      else for (const c of this.clients) c.lines.push(line);
    });
  }

  get running(): boolean { return this.proc.exitCode === null && this.proc.signalCode === null; }

  command(line: string): void {
    if (this.running) this.proc.stdin!.write(`${line}\n`);
  }

  kill(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((res) => { this.proc.once('exit', () => res()); this.proc.kill('SIGKILL'); });
  }

  /** Ask it to close; kill it if it has not exited within `ms`. */
  async close(ms = 5000): Promise<void> {
    if (!this.running) return;
    const exited = new Promise<void>((res) => this.proc.once('exit', () => res()));
    this.command('close');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    await exited;
    clearTimeout(t);
  }
}

export class StreamClient {
  readonly lines: Line[] = [];
  /** False once its daemon was killed (it is then no survivor). */
  survivor = true;

  constructor(readonly name: string, readonly nodeId: number, readonly owner: ClientProcess) {}

  get self(): DrillMember | undefined {
    return this.lines.find((l) => l.type === 'open')?.self as DrillMember | undefined;
  }

  /** How many of its own messages it has delivered (self-delivery: the ring carries it). */
  ownDelivered(): number {
    const prefix = `${this.name}:`;
    return this.lines.filter((l) => l.type === 'message' && String(l.text).startsWith(prefix)).length;
  }

  /** Its last configuration's member keys, sorted; undefined while that is transitional. */
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

  log(): ClientLog {
    const self = this.self ?? { nodeId: this.nodeId, pid: 0, port: 0 };
    return { name: this.name, self, survivor: this.survivor, records: this.lines.map(parseRecord) };
  }
}
