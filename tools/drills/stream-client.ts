// A fault-drill client process: opens a cluster socket on SOCKET, binds GROUP, sends a steady
// stream "NAME:0", "NAME:1", ... (one every INTERVAL ms, each after the previous was accepted)
// and logs every event it receives as a JSON line on stdout. Commands on stdin:
//   "stop"  stop sending, then send "NAME:end" (a fence: once every survivor has it, every
//           earlier message of this sender has been delivered wherever it will be) and log
//           {type:'stopped', sent};
//   "close" close the socket and exit.
// When the daemon goes away the stream ends: it logs {type:'end'} and exits 0.
// usage: stream-client.ts SOCKET GROUP NAME ORDER INTERVAL_MS
import { createInterface } from 'node:readline';
import { ClusterSocket } from '../../sockapi/client.ts';
import type { Order } from '../../sockapi/types.ts';
import { eventToJson } from '../cmd-listen.ts';

const [socket, group, name, order, interval] = process.argv.slice(2);
const intervalMs = Number(interval ?? 10);
const out = (o: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };

const sock = await ClusterSocket.open({ path: socket, keepaliveMs: 1000 });
out({ type: 'open', self: sock.self });
await sock.bind(group);
out({ type: 'bound' });

let sending = true;
let sent = 0;
let failed = false;

async function stream(): Promise<void> {
  while (sending && !failed) {
    try {
      await sock.send(`${name}:${sent}`, { order: order as Order });
      sent++;
      if (sent % 50 === 0) out({ type: 'sent', count: sent });
    } catch (e) {
      const err = e as { code?: string; message?: string };
      out({ type: 'fail', code: err.code, message: err.message });
      failed = true;
      return;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const streaming = stream();

async function command(line: string): Promise<void> {
  const cmd = line.trim();
  if (cmd === 'stop') {
    sending = false;
    await streaming;
    if (!failed) await sock.send(`${name}:end`, { order: order as Order });
    out({ type: 'stopped', sent });
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
  out(ev.type === 'message' ? { type: 'message', sender: ev.sender, text: j.text } : j);
}
out({ type: 'end' });
process.exit(0);
