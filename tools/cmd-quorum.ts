// `afcluster quorum`: the node's quorum state and the configured nodes (like corosync-quorumtool -s).
import { ClusterSocket } from '../sockapi/client.ts';
import type { QuorumInfo, QuorumState } from '../core/api/types.ts';
import { parseFlags, type Command } from './command.ts';
import { resolveSocket, TARGET_FLAGS, TARGET_HELP } from './target.ts';

/** Exit statuses: scripts and health checks read them. */
export const EXIT_QUORATE = 0;
export const EXIT_NOT_QUORATE = 1;
export const EXIT_UNREACHABLE = 3;

export function quorumFlags(q: QuorumState): string {
  return [q.quorate ? 'quorate' : 'not-quorate', ...q.flags].join(' ');
}

/** The human report: state, votes, and each configured node present or absent. */
export function quorumReport(info: QuorumInfo, self: { nodeId: number; ringId: string; driver: string }): string {
  const q = info.state;
  const rows = info.nodes.map((n) => `  ${String(n.nodeId).padStart(10)} ${String(n.votes).padStart(6)}  ${n.present ? 'yes' : 'NO'}${n.nodeId === self.nodeId ? ' (this node)' : ''}`);
  return [
    `node ${self.nodeId}, ring ${self.ringId}, driver ${self.driver}`,
    `quorate:         ${q.quorate ? 'yes' : 'NO'}${q.flags.includes('disabled') ? ' (quorum is switched off: every part of a split counts as quorate)' : ''}`,
    `votes present:   ${q.votes}`,
    `expected votes:  ${q.expected}`,
    `quorum:          ${q.quorum}`,
    `flags:           ${quorumFlags(q)}`,
    '',
    '      node  votes  present',
    ...rows,
  ].join('\n');
}

export const command: Command = {
  name: 'quorum',
  summary: "is this node's part of the cluster quorate? votes, expected votes, nodes present (exit 0 when quorate)",
  help: `usage: afcluster quorum [--socket PATH | --node N] [--json]

Asks the node's daemon for its quorum state: whether its part of the cluster is the primary
component (quorate), the votes present and expected, the votes needed, the options in force
([quorum] in the config: two_node, wait_for_all, last_man_standing, auto_tie_breaker), and
every configured node with its votes, present or absent.

exit status: ${EXIT_QUORATE} quorate, ${EXIT_NOT_QUORATE} not quorate, 2 usage error, ${EXIT_UNREACHABLE} the daemon could not be asked
(not running, or older than protocol version 3).

options:
${TARGET_HELP}
  --json                one JSON object: { quorate, votes, expected, quorum, flags, nodes: [{ nodeId, votes, present }], node, ringId }`,
  async run(argv) {
    const { values } = parseFlags(argv, { ...TARGET_FLAGS, json: { type: 'boolean' } });
    let sock: ClusterSocket;
    try {
      sock = await ClusterSocket.open({ path: resolveSocket(values), timeoutMs: 5000 });
    } catch (e) {
      console.error(`afcluster quorum: ${(e as Error).message}`);
      return EXIT_UNREACHABLE;
    }
    try {
      const [info, node] = await Promise.all([sock.quorum(), sock.localNode()]);
      const ringId = `${node.ringId.rep}.${node.ringId.seq}`;
      if (values.json) {
        console.log(JSON.stringify({ ...info.state, nodes: info.nodes, node: node.nodeId, ringId, driver: node.driver }, null, 2));
      } else {
        console.log(quorumReport(info, { nodeId: node.nodeId, ringId, driver: node.driver }));
      }
      return info.state.quorate ? EXIT_QUORATE : EXIT_NOT_QUORATE;
    } catch (e) {
      console.error(`afcluster quorum: ${(e as Error).message}`);
      return EXIT_UNREACHABLE;
    } finally {
      await sock.close();
    }
  },
};
