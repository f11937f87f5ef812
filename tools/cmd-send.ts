// `afcluster send GROUP MESSAGE | --file F | -`: join the group, send one message, leave.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { Order } from '../core/driver/types.ts';
import { ClusterError } from '../core/api/errors.ts';
import { ClusterSocket } from '../sockapi/client.ts';
import { parseFlags, UsageError, type Command } from './command.ts';
import { resolveSocket, TARGET_FLAGS, TARGET_HELP } from './target.ts';

const ORDERS: readonly Order[] = ['fifo', 'agreed', 'safe'];

/** Reads all of `fd` (a file or standard input), refusing more than `max` bytes. */
function readAll(fd: number, max: number, what: string): Uint8Array {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') { // a non-blocking pipe with nothing in it yet
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        continue;
      }
      throw new ClusterError('EINVAL', `cannot read ${what}: ${(e as Error).message}`);
    }
    if (n === 0) break;
    total += n;
    if (total > max) throw tooBig(what, `more than ${max}`, max);
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks, total);
}

function tooBig(what: string, size: string, max: number): ClusterError {
  return new ClusterError('EMSGSIZE', `${what} holds ${size} bytes; this node's limits.message_size_max is ${max}: send a smaller message, or raise limits.message_size_max on every node`);
}

function readFile(path: string, max: number): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ClusterError(code === 'ENOENT' ? 'ENOENT' : 'EINVAL', `--file ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new ClusterError('EINVAL', `--file ${path}: a directory, not a file`);
    if (st.isFile() && st.size > max) throw tooBig(`--file ${path}`, String(st.size), max);
    return readAll(fd, max, `--file ${path}`);
  } finally {
    closeSync(fd);
  }
}

export const command: Command = {
  name: 'send',
  summary: 'send one message to a group (text, a file, or standard input)',
  help: `usage: afcluster send GROUP MESSAGE [--order fifo|agreed|safe] [--socket PATH | --node N]
       afcluster send GROUP --file FILE [...]
       afcluster send GROUP - [...]          (the message is standard input)

Opens a cluster socket, binds it to GROUP (without self-delivery), sends one message and closes.
The message is MESSAGE (UTF-8), the bytes of FILE, or all of standard input; at most the node's
limits.message_size_max bytes (1 MiB by default). Listeners see the sender join, the message,
and the sender leave.

options:
  -f, --file FILE       send the contents of FILE
  -o, --order ORDER     fifo, agreed or safe (default: agreed, or fifo where the driver has
                        no total order); a driver that cannot give it: EOPNOTSUPP
${TARGET_HELP}`,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { ...TARGET_FLAGS, order: { type: 'string', short: 'o' }, file: { type: 'string', short: 'f' } }, true);
    const source = values.file !== undefined ? 'file' : positionals[1] === '-' ? 'stdin' : 'text';
    if (values.file !== undefined && positionals.length !== 1) {
      throw new UsageError(positionals.length === 0 ? 'expected GROUP before --file FILE' : 'give the message as --file FILE or as MESSAGE, not both');
    }
    if (values.file === undefined && positionals.length !== 2) {
      throw new UsageError(positionals.length < 2 ? 'expected GROUP and MESSAGE (or --file FILE, or - for standard input)' : `expected GROUP and one MESSAGE; quote a message with spaces: afcluster send ${positionals[0]} "${positionals.slice(1).join(' ')}"`);
    }
    if (positionals[0] === '') throw new UsageError('GROUP is empty; give a group name');
    // Default: agreed, or fifo on a driver that has no total order (cman).
    const order = (values.order ?? 'agreed') as Order;
    if (!ORDERS.includes(order)) throw new UsageError(`--order ${order}: expected fifo, agreed or safe`);
    const group = positionals[0];
    const sock = await ClusterSocket.open({ path: resolveSocket(values) });
    try {
      const max = sock.daemon.messageSizeMax;
      const message = source === 'file' ? readFile(values.file!, max)
        : source === 'stdin' ? readAll(0, max, 'standard input')
          : new TextEncoder().encode(positionals[1]);
      if (message.length > max) throw tooBig('MESSAGE', String(message.length), max);
      await sock.bind(group, { selfDelivery: false });
      let used = order;
      try {
        await sock.send(message, { order });
      } catch (e) {
        if (values.order !== undefined || (e as { code?: string }).code !== 'EOPNOTSUPP') throw e;
        used = 'fifo';
        await sock.send(message, { order: used });
      }
      console.log(`sent ${message.length} bytes to ${group} (${used}) as ${sock.self.nodeId}/${sock.self.pid}/${sock.self.port}`);
      return 0;
    } finally {
      await sock.close();
    }
  },
};
