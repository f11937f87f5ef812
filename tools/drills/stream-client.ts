// A fault-drill client process: for each NAME, opens a cluster socket on SOCKET, binds GROUP,
// sends a steady stream "NAME:0", "NAME:1", ... (one every INTERVAL ms, each after the previous
// was accepted) and logs every event that socket receives as a JSON line on stdout, tagged
// {client: NAME}. Several sockets per process keep the drills light: one process per node.
// Commands on stdin, for every socket of the process:
//   "stop"  stop sending, then send "NAME:end" (a fence: once every survivor has it, every
//           earlier message of this sender has been delivered wherever it will be) and log
//           {type:'stopped', sent};
//   "close" close the sockets and exit.
// When the daemon goes away a socket's stream ends ({type:'end'}); when all have, it exits 0.
// usage: stream-client.ts SOCKET GROUP ORDER INTERVAL_MS NAME...
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { formatRingId } from '../../core/driver/types.ts';
import { viewName } from '../../sim/group-checker.ts';
import { ClusterSocket } from '../../sockapi/client.ts';
import type { Order } from '../../core/api/types.ts';

const [socket, group, orderArg, interval, ...names] = process.argv.slice(2);
const order = orderArg as Order;
const intervalMs = Number(interval);
const out = (o: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };
const text = new TextDecoder();

class Streamer {
  private sending = true;
  private sent = 0;
  private failed = false;
  private streaming: Promise<void> = Promise.resolve();

  constructor(readonly name: string, readonly sock: ClusterSocket) {}

  start(): void { this.streaming = this.stream(); }

  private log(o: Record<string, unknown>): void { out({ client: this.name, ...o }); }

  private async stream(): Promise<void> {
    while (this.sending) {
      try {
        await this.sock.send(`${this.name}:${this.sent}`, { order });
        this.sent++;
      } catch (e) {
        const err = e as { code?: string; message?: string };
        this.log({ type: 'fail', code: err.code, message: err.message });
        this.failed = true;
        return;
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  async stop(): Promise<void> {
    this.sending = false;
    await this.streaming;
    if (!this.failed) await this.sock.send(`${this.name}:end`, { order });
    this.log({ type: 'stopped', sent: this.sent });
  }

  async receive(): Promise<void> {
    for await (const ev of this.sock) {
      switch (ev.type) {
        case 'message': this.log({ type: 'message', sender: ev.sender, text: text.decode(ev.data) }); break;
        case 'membership': this.log({
          type: 'membership', kind: ev.kind, ringId: formatRingId(ev.ringId), members: ev.members, joined: ev.joined, left: ev.left,
          ...(ev.viewId ? { viewId: viewName(ev.kind, ev.ringId, ev.viewId) } : {}),
        }); break;
        case 'error': this.log({ type: 'error', code: ev.code, message: ev.message }); break;
      }
    }
    this.log({ type: 'end' });
  }
}

const streamers = await Promise.all(names.map(async (name) => {
  // Next to the daemon's socket, in the drill cluster's directory: a killed client leaves nothing behind.
  const sock = await ClusterSocket.open({ path: socket, keepaliveMs: 1000, clientPath: join(dirname(socket), `${name}.sock`) });
  out({ client: name, type: 'open', self: sock.self });
  await sock.bind(group);
  out({ client: name, type: 'bound' });
  return new Streamer(name, sock);
}));
for (const s of streamers) s.start();

async function command(line: string): Promise<void> {
  const cmd = line.trim();
  if (cmd === 'stop') await Promise.all(streamers.map((s) => s.stop()));
  if (cmd === 'close') {
    await Promise.all(streamers.map((s) => s.sock.close()));
    process.exit(0);
  }
}

let chain = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  chain = chain.then(() => command(line)).catch((e: { code?: string; message?: string }) => out({ type: 'fail', code: e.code, message: e.message }));
});

await Promise.all(streamers.map((s) => s.receive()));
process.exit(0);
