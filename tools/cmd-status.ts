// `afcluster status`: one node's driver, ring, members and counters, from the STATS request.
import { ClusterSocket } from '../sockapi/client.ts';
import { parseFlags, type Command } from './command.ts';
import { headline, hasRotationCounter, TABLE_HEADER, tableRow } from './stats-view.ts';
import { resolveSocket, TARGET_FLAGS, TARGET_HELP } from './target.ts';

const SAMPLE_MS = 1000;

export const command: Command = {
  name: 'status',
  summary: "show a node's driver, ring id, members, message counters and queue depths",
  help: `usage: afcluster status [--socket PATH | --node N] [--json] [--all]

Asks the node's daemon for its counters and prints: driver, ring id, members, messages sent,
delivered and retransmitted, token rotations per second (when the driver counts them: then two
samples ${SAMPLE_MS} ms apart), and queue depths (driver send queue, bridge receive queues).

options:
${TARGET_HELP}
  --json                every counter as one JSON object (node.*, bridge.*, groups.*, driver.*, process.*)
  --all                 also list every counter after the summary`,
  async run(argv) {
    const { values } = parseFlags(argv, { ...TARGET_FLAGS, json: { type: 'boolean' }, all: { type: 'boolean' } });
    const sock = await ClusterSocket.open({ path: resolveSocket(values), timeoutMs: 5000 });
    try {
      let prev = await sock.stats();
      let stats = prev;
      const t0 = Date.now();
      if (hasRotationCounter(prev)) {
        await new Promise((r) => setTimeout(r, SAMPLE_MS));
        stats = await sock.stats();
      } else {
        prev = {};
      }
      const h = headline(stats, prev, Date.now() - t0);
      if (values.json) {
        console.log(JSON.stringify({ summary: h, stats }, null, 2));
        return 0;
      }
      console.log(TABLE_HEADER);
      console.log(tableRow(h));
      if (values.all) for (const [k, v] of Object.entries(stats).sort()) console.log(`  ${k} = ${v}`);
      return 0;
    } finally {
      await sock.close();
    }
  },
};
