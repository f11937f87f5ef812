// `afcluster lock NAME -- COMMAND [ARGS...]`: runs a command under a cluster-wide lock (like
// flock(1) for a cluster). The lock is granted in delivery order by every member's lock table
// (services/lock/lock.ts); it is released when the command exits, or by the cluster if this process
// or its node dies. The command's exit status is passed on.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Order } from '../core/driver/types.ts';
import { ClusterError } from '../core/api/errors.ts';
import { ClusterSocket } from '../sockapi/client.ts';
import { DEFAULT_LOCK_GROUP, LockClient, type LockGrant } from '../services/lock/lock.ts';
import type { GroupSocket } from '../core/api/types.ts';
import { intFlag, parseFlags, UsageError, type Command } from './command.ts';
import { resolveSocket, TARGET_FLAGS, TARGET_HELP } from './target.ts';

const ORDERS: readonly Order[] = ['fifo', 'agreed', 'safe'];
/** Exit status when --try finds the lock taken, or --timeout expires (as flock(1) and timeout(1) do). */
const EXIT_BUSY = 1;
const EXIT_TIMEOUT = 124;
const EXIT_NOT_FOUND = 127;

/** Opens the cluster socket a client command talks to. */
export async function openSocket(values: { socket?: string; node?: string }): Promise<GroupSocket> {
  return ClusterSocket.open({ path: resolveSocket(values) });
}

/** Splits `[flags] NAME -- COMMAND ARGS` at the first `--`. */
function splitArgv(argv: string[]): { flags: string[]; command: string[] } {
  const at = argv.indexOf('--');
  if (at < 0) throw new UsageError('expected NAME -- COMMAND [ARGS...]');
  const command = argv.slice(at + 1);
  if (command.length === 0) throw new UsageError('expected a COMMAND after --');
  return { flags: argv.slice(0, at), command };
}

/** Runs the command with inherited stdio; resolves with its exit status (128+signal if killed). */
function runChild(command: string[], onLost: (stop: () => void) => void): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { stdio: 'inherit' });
    const forward = (sig: NodeJS.Signals) => (): void => { child.kill(sig); };
    const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, forward(sig)] as const);
    for (const [sig, h] of handlers) process.on(sig, h);
    const done = (status: number): void => {
      for (const [sig, h] of handlers) process.off(sig, h);
      resolve(status);
    };
    onLost(() => child.kill('SIGTERM'));
    child.once('error', (e) => {
      console.error(`afcluster lock: cannot run ${command[0]}: ${e.message}`);
      done(EXIT_NOT_FOUND);
    });
    child.once('exit', (code, signal) => done(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}

async function acquire(client: LockClient, name: string, o: { shared: boolean; tryOnly: boolean; timeoutMs: number }): Promise<LockGrant | number> {
  const mode = o.shared ? 'shared' : 'exclusive';
  if (o.tryOnly) {
    const g = await client.trylock(name, mode);
    if (g) return g;
    console.error(`afcluster lock: "${name}" is held by another member; not running the command (--try)`);
    return EXIT_BUSY;
  }
  try {
    return await client.lock(name, mode, o.timeoutMs > 0 ? { signal: AbortSignal.timeout(o.timeoutMs) } : {});
  } catch (e) {
    if (!(e instanceof ClusterError) || e.code !== 'ECANCELED') throw e;
    console.error(`afcluster lock: "${name}" not granted within ${o.timeoutMs} ms; not running the command`);
    return EXIT_TIMEOUT;
  }
}

/** The library's hint names the option; on the command line it is a flag. */
function explain(e: unknown): unknown {
  if (e instanceof ClusterError && e.code === 'EOPNOTSUPP') {
    return new ClusterError('EOPNOTSUPP', "this cluster's driver gives no agreed order, which a lock needs for every node to agree; add --order fifo to run anyway (nodes may then disagree about the holder)");
  }
  return e;
}

export const command: Command = {
  name: 'lock',
  summary: 'run a command under a cluster-wide lock',
  help: `usage: afcluster lock NAME [--shared] [--try] [--timeout MS] [--group G] [--order ORDER]
                      [--socket PATH | --node N] -- COMMAND [ARGS...]

Joins the lock service's group, waits until NAME is granted to this process in delivery order
(every member's table grants the same holder, with no lock server), runs COMMAND, then
releases NAME and exits with COMMAND's status. If this process, its daemon or its node dies,
the others release NAME at the membership event. If the lock is lost while COMMAND runs (this
socket was removed from the group), COMMAND gets SIGTERM.

options:
  --shared              a shared lock (default exclusive): shared holders run together
  --try                 do not wait: if NAME is taken, exit ${EXIT_BUSY} without running COMMAND
  --timeout MS          give up waiting after MS ms: exit ${EXIT_TIMEOUT} without running COMMAND
  --group G             the lock service's group (default ${DEFAULT_LOCK_GROUP})
  -o, --order ORDER     agreed (default) or safe; fifo runs without agreed order (cman): the
                        nodes may then disagree about who holds NAME
${TARGET_HELP}

example:
  afcluster lock backup --node 2 -- rsync -a /data/ backup:/data/`,
  async run(argv) {
    const { flags, command: cmd } = splitArgv(argv);
    const { values, positionals } = parseFlags(flags, {
      ...TARGET_FLAGS, shared: { type: 'boolean' }, try: { type: 'boolean' }, timeout: { type: 'string' },
      group: { type: 'string' }, order: { type: 'string', short: 'o' },
    }, true);
    if (positionals.length !== 1) throw new UsageError('expected one lock NAME before --');
    const order = (values.order ?? 'agreed') as Order;
    if (!ORDERS.includes(order)) throw new UsageError(`--order ${order}: expected agreed, safe or fifo`);
    const timeoutMs = intFlag(values.timeout, 'timeout', 0, 0);
    const name = positionals[0];
    const sock = await openSocket(values).catch((e: unknown) => { throw explain(e); });
    let lost: ((e: ClusterError) => void) | undefined;
    try {
      const client = await LockClient.open(sock, { group: values.group, order, onFailure: (e) => lost?.(e) });
      const got = await acquire(client, name, { shared: values.shared === true, tryOnly: values.try === true, timeoutMs }).catch((e: unknown) => { throw explain(e); });
      if (typeof got === 'number') return got;
      const status = await runChild(cmd, (stop) => {
        lost = (e) => {
          console.error(`afcluster lock: lost "${name}" (${e.message}); stopping the command`);
          stop();
        };
      });
      lost = undefined;
      await client.unlock(got).catch(() => undefined);
      return status;
    } finally {
      await sock.close();
    }
  },
};
