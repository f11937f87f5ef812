// `afcluster send GROUP MESSAGE`: join the group, send one message, leave.
import type { Order } from '../core/driver/types.ts';
import { ClusterSocket } from '../sockapi/client.ts';
import { parseFlags, UsageError, type Command } from './command.ts';
import { resolveSocket, TARGET_FLAGS, TARGET_HELP } from './target.ts';

const ORDERS: readonly Order[] = ['fifo', 'agreed', 'safe'];

export const command: Command = {
  name: 'send',
  summary: 'send one message to a group',
  help: `usage: afcluster send GROUP MESSAGE [--order fifo|agreed|safe] [--socket PATH | --node N]

Opens a cluster socket, binds it to GROUP (without self-delivery), sends MESSAGE (UTF-8) and
closes. Listeners see the sender join, the message, and the sender leave.

options:
  -o, --order ORDER     fifo, agreed or safe (default: agreed, or fifo where the driver has
                        no total order); a driver that cannot give it: EOPNOTSUPP
${TARGET_HELP}`,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { ...TARGET_FLAGS, order: { type: 'string', short: 'o' } }, true);
    if (positionals.length !== 2) throw new UsageError('expected GROUP and MESSAGE');
    // Default: agreed, or fifo on a driver that has no total order (cman).
    const order = (values.order ?? 'agreed') as Order;
    if (!ORDERS.includes(order)) throw new UsageError(`--order ${order}: expected fifo, agreed or safe`);
    const [group, message] = positionals;
    const sock = await ClusterSocket.open({ path: resolveSocket(values) });
    try {
      await sock.bind(group, { selfDelivery: false });
      let used = order;
      try {
        await sock.send(message, { order });
      } catch (e) {
        if (values.order !== undefined || (e as { code?: string }).code !== 'EOPNOTSUPP') throw e;
        used = 'fifo';
        await sock.send(message, { order: used });
      }
      console.log(`sent ${Buffer.byteLength(message)} bytes to ${group} (${used}) as ${sock.self.nodeId}/${sock.self.pid}/${sock.self.port}`);
      return 0;
    } finally {
      await sock.close();
    }
  },
};
