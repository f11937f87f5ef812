// Child processes for the bench: TypeScript workers with an IPC channel, peak RSS from /proc,
// and cleanup that never leaves a process behind (only the ones this bench started).
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { killAllNow, track } from '../local-cluster.ts';

export { atExit, track } from '../local-cluster.ts';

let hooked = false;

/** Makes SIGINT or SIGTERM end this process at once (exit 130) so that the exit hook of local-cluster.ts kills its children. */
export function exitOnSignals(): void {
  if (hooked) return;
  hooked = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAllNow();
      process.exit(130);
    });
  }
}

export interface WorkerOptions {
  readonly args?: readonly string[];
  /** Extra node flags (e.g. --cpu-prof). */
  readonly nodeFlags?: readonly string[];
  /** Where the child's stdout/stderr go: 'inherit' or 'ignore' (default 'inherit' for stderr). */
  readonly stdout?: 'inherit' | 'ignore' | 'pipe';
  readonly stderr?: 'inherit' | 'ignore' | 'pipe';
  /** The child's environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
}

/** Starts a TypeScript module as a node process with an IPC channel (tsx loads it). */
export function spawnWorker(modulePath: string, opts: WorkerOptions = {}): ChildProcess {
  exitOnSignals();
  const child = fork(modulePath, [...(opts.args ?? [])], {
    execArgv: ['--import', 'tsx', ...(opts.nodeFlags ?? [])],
    stdio: ['ignore', opts.stdout ?? 'ignore', opts.stderr ?? 'inherit', 'ipc'],
    env: opts.env, // undefined: this process's
  });
  return track(child);
}

export interface WorkerReply {
  readonly type: string;
  readonly message?: string;
}

/**
 * Sends one request and resolves with the worker's next reply. A reply of type 'error', an exit
 * or the timeout rejects.
 */
export function request<R extends WorkerReply>(child: ChildProcess, msg: object, timeoutMs: number): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (m: unknown) => {
      cleanup();
      const reply = m as R;
      if (reply.type === 'error') reject(new Error(`worker ${child.pid}: ${reply.message ?? 'failed'}`));
      else resolve(reply);
    };
    const onExit = (code: number | null, sig: string | null) => {
      cleanup();
      reject(new Error(`worker ${child.pid} exited (${sig ?? code}) before answering ${JSON.stringify(msg).slice(0, 80)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`worker ${child.pid} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send(msg);
  });
}

/** Resolves once the child has exited, or after ms (false then). */
export function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Stops a child: SIGTERM, then SIGKILL after graceMs. Resolves once it has exited. */
export function stop(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Peak resident set size (VmHWM) of a live process, in bytes; undefined if unreadable. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    return parseVmHwm(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

export function parseVmHwm(status: string): number | undefined {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** CPU seconds (user + system) a live process has used so far; undefined if unreadable. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    return parseCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** utime + stime from a /proc/PID/stat line, at the usual 100 ticks per second. */
export function parseCpuSeconds(stat: string): number | undefined {
  // The command name (field 2) may hold spaces; fields resume after its closing parenthesis.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / 100 : undefined;
}
