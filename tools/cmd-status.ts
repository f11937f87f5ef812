// `afcluster status`: one node's driver, ring, members and counters, from the STATS request.
import { ClusterSocket } from '../sockapi/client.ts';
import { parseFlags, type Command } from './command.ts';
import { headline, hasRotationCounter, TABLE_HEADER, tableRow } from './stats-view.ts';
import { resolveSocket, TARGET_FLAGS, TARGET_HELP } from './target.ts';
import type { QuorumInfo } from '../core/api/types.ts';
import { quorumFlags } from './cmd-quorum.ts';

/** Quorum in one line, with the configured nodes that are absent. */
export function quorumLine(info: QuorumInfo): string {
  const q = info.state;
  const absent = info.nodes.filter((n) => !n.present).map((n) => n.nodeId);
  return `quorum: ${q.quorate ? 'quorate' : 'NOT QUORATE'}, ${q.votes} of ${q.expected} expected votes (quorum ${q.quorum}); `
    + `flags ${quorumFlags(q)}; absent: ${absent.length ? absent.join(', ') : 'none'}`;
}

const SAMPLE_MS = 1000;

export const command: Command = {
  name: 'status',
  summary: "show a node's driver, ring id, members, message counters and queue depths",
  help: `usage: afcluster status [--socket PATH | --node N] [--json] [--all]

Asks the node's daemon for its counters and prints: driver, ring id, members, messages sent,
delivered and retransmitted, token rotations per second (when the driver counts them: then two
samples ${SAMPLE_MS} ms apart), and queue depths (driver send queue, bridge receive queues); then
the quorum state and the configured nodes that are absent ("afcluster quorum" has the detail).

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
      const quorum = await sock.quorum().catch(() => undefined); // a daemon older than version 3 has none
      if (values.json) {
        console.log(JSON.stringify({ summary: h, ...(quorum ? { quorum } : {}), stats }, null, 2));
        return 0;
      }
      console.log(TABLE_HEADER);
      console.log(tableRow(h));
      if (quorum) console.log(quorumLine(quorum));
      if (values.all) for (const [k, v] of Object.entries(stats).sort()) console.log(`  ${k} = ${v}`);
      return 0;
    } finally {
      await sock.close();
    }
  },
};
