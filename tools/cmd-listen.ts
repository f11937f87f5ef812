// `afcluster listen GROUP`: join the group and print its messages and membership events as they come.
import { ClusterSocket } from '../sockapi/client.ts';
import type { Member, QuorumState, SocketEvent, ViewId } from '../core/api/types.ts';
import { formatRingId } from '../core/driver/types.ts';
import { parseFlags, UsageError, type Command } from './command.ts';
import { resolveSocket, TARGET_FLAGS, TARGET_HELP } from './target.ts';

const fatal = new TextDecoder('utf-8', { fatal: true });

function asText(data: Uint8Array): string | undefined {
  try {
    const s = fatal.decode(data);
    return /^[\P{Cc}\n\t]*$/u.test(s) ? s : undefined;
  } catch {
    return undefined;
  }
}

const who = (m: Member): string => `${m.nodeId}/${m.pid}/${m.port}`;

/** A view id as ring/seq: `1.8/3` is the third view of ring 1.8. */
export const formatViewId = (v: ViewId): string => `${formatRingId(v.ringId)}/${v.seq}`;

export function quorumText(q: QuorumState): string {
  return `${q.quorate ? 'quorate' : 'NOT quorate'}, ${q.votes} of ${q.expected} votes, quorum ${q.quorum}${q.flags.length ? `, ${q.flags.join(' ')}` : ''}`;
}

/** One event as a JSON-friendly object (data as base64, and as text when it is printable UTF-8). */
export function eventToJson(ev: SocketEvent): Record<string, unknown> {
  switch (ev.type) {
    case 'message': {
      const text = asText(ev.data);
      return { type: 'message', group: ev.group, sender: ev.sender, order: ev.order, bytes: ev.data.length,
        ...(text === undefined ? {} : { text }), base64: Buffer.from(ev.data).toString('base64') };
    }
    case 'membership':
      return {
        type: 'membership', group: ev.group, kind: ev.kind, ringId: formatRingId(ev.ringId), members: ev.members, joined: ev.joined, left: ev.left,
        ...(ev.viewId ? { viewId: formatViewId(ev.viewId) } : {}), ...(ev.quorum ? { quorum: ev.quorum } : {}),
      };
    case 'quorum': return { type: 'quorum', group: ev.group, ringId: formatRingId(ev.ringId), quorum: ev.quorum };
    case 'error': return { type: 'error', code: ev.code, message: ev.message };
  }
}

export function eventToLine(ev: SocketEvent): string {
  switch (ev.type) {
    case 'message': {
      const text = asText(ev.data);
      return `message    ${ev.group} from ${who(ev.sender)} (${ev.order}, ${ev.data.length} bytes): ${text ?? Buffer.from(ev.data).toString('hex')}`;
    }
    case 'membership': {
      const changes = [...ev.joined.map((c) => `+${who(c.member)} ${c.reason}`), ...ev.left.map((c) => `-${who(c.member)} ${c.reason}`)];
      const view = ev.viewId ? ` view ${formatViewId(ev.viewId)}${ev.kind === 'transitional' ? `>${formatRingId(ev.ringId)}` : ''}` : '';
      return `membership ${ev.group} ${ev.kind} ring ${formatRingId(ev.ringId)}${view}: [${ev.members.map(who).join(' ')}]`
        + `${changes.length ? ` ${changes.join(', ')}` : ''}${ev.quorum ? ` (${quorumText(ev.quorum)})` : ''}`;
    }
    case 'quorum': return `quorum     ${ev.group} ring ${formatRingId(ev.ringId)}: ${quorumText(ev.quorum)}`;
    case 'error': return `error      ${ev.code}: ${ev.message}`;
  }
}

export const command: Command = {
  name: 'listen',
  summary: "join a group and print its messages and membership events",
  help: `usage: afcluster listen GROUP [--json] [--count N] [--socket PATH | --node N]

Binds a cluster socket to GROUP and prints each message and membership event as it comes, one
per line, until Ctrl-C (then it leaves the group). Members print as node/pid/port; a membership
event shows its view id (ring/seq, the same at every member) and the node's quorum state, and a
quorum line appears when quorum changes without a membership change.
Exits 1 when the daemon goes away (the last line is then an ECONNREFUSED error event).

options:
  --json                one JSON object per line (message data in base64, and as text when printable)
  --count N             exit after N messages
${TARGET_HELP}`,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { ...TARGET_FLAGS, json: { type: 'boolean' }, count: { type: 'string' } }, true);
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'expected GROUP' : `expected one GROUP, got ${positionals.length} arguments`);
    if (positionals[0] === '') throw new UsageError('GROUP is empty; give a group name');
    const limit = values.count === undefined ? Infinity : Number(values.count);
    if (!(Number.isInteger(limit) && limit > 0) && limit !== Infinity) throw new UsageError(`--count ${values.count}: expected a positive integer`);
    const sock = await ClusterSocket.open({ path: resolveSocket(values) });
    const stop = (): void => { void sock.close(); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await sock.bind(positionals[0]);
      if (!values.json) console.error(`listening on ${positionals[0]} as ${who(sock.self)} (driver ${sock.daemon.driver}); Ctrl-C to stop`);
      let messages = 0;
      let lost = false;
      for await (const ev of sock) {
        console.log(values.json ? JSON.stringify(eventToJson(ev)) : eventToLine(ev));
        if (ev.type === 'message' && ++messages >= limit) break;
        lost = ev.type === 'error' && ev.code === 'ECONNREFUSED';
      }
      return lost ? 1 : 0;
    } finally {
      await sock.close();
    }
  },
};
