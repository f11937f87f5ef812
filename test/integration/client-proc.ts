// A client process for integration tests: opens a ClusterSocket on SOCKET, binds GROUP, logs every
// event as a JSON line on stdout, and obeys commands on stdin: "send N ORDER", "members", "close".
import { createInterface } from 'node:readline';
import { ClusterSocket } from '../../sockapi/client.ts';
import type { Order } from '../../core/api/types.ts';
import { eventToJson } from '../../tools/cmd-listen.ts';

const [socket, group, name] = process.argv.slice(2);
const out = (o: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };

const sock = await ClusterSocket.open({ path: socket });
out({ type: 'open', self: sock.self });
await sock.bind(group);
out({ type: 'bound' });

let sent = 0;
async function command(line: string): Promise<void> {
  const [cmd, a, b] = line.trim().split(/\s+/);
  if (cmd === 'send') {
    for (let i = 0; i < Number(a); i++) await sock.send(`${name}:${sent++}`, { order: (b ?? 'agreed') as Order });
    out({ type: 'sent', count: sent });
  } else if (cmd === 'members') {
    out({ type: 'members', members: await sock.members() });
  } else if (cmd === 'close') {
    await sock.close();
    process.exit(0);
  }
}

let chain = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  chain = chain.then(() => command(line)).catch((e: { code?: string; message?: string }) => out({ type: 'fail', code: e.code, message: e.message }));
});

for await (const ev of sock) {
  const j = eventToJson(ev);
  out(ev.type === 'message' ? { type: 'message', group: ev.group, sender: ev.sender, order: ev.order, text: j.text } : j);
}
