// One node of the raw UDP ceiling: a process that fan-out sends the same bytes the drivers
// would (messages packed into datagrams of the drivers' size) to every other node over
// loopback UDP, with no protocol at all, and counts what arrives. Driven over IPC by ceiling.ts.
import { createSocket, type Socket } from 'node:dgram';
import type { CeilingRequest, CeilingResult } from './ceiling.ts';
import { unitDatagrams } from './ceiling.ts';

let sock: Socket | undefined;
let counting = false;
let bytesIn = 0;
let datagramsIn = 0;

function reply(msg: object): void {
  process.send?.(msg);
}

async function init(host: string): Promise<void> {
  const s = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, host, () => {
      s.off('error', reject);
      resolve();
    });
  });
  s.on('message', (msg) => {
    if (!counting) return;
    bytesIn += msg.length;
    datagramsIn += 1;
  });
  s.on('error', () => { /* a send error (ENOBUFS) is the ceiling's loss, counted as not arriving */ });
  sock = s;
  reply({ type: 'ready', port: s.address().port });
}

/** Sends units (one packed datagram, or a large message's fragments) round robin to all peers,
 *  keeping at most `inflightMax` sends queued in libuv so memory stays bounded. */
async function run(req: Extract<CeilingRequest, { type: 'run' }>): Promise<void> {
  const s = sock;
  if (!s) throw new Error('run before init');
  const unit = unitDatagrams(req.size, req.datagramBytes).map((n) => Buffer.alloc(n, 0x5a));
  const inflightMax = 64;
  let inflight = 0;
  let sending = true;
  let datagramsOut = 0;
  let k = 0;
  let peer = 0;
  const pump = () => {
    while (sending && inflight < inflightMax) {
      const buf = unit[k];
      const p = req.peers[peer];
      inflight += 1;
      datagramsOut += 1;
      s.send(buf, p.port, p.host, onSent);
      if (++peer === req.peers.length) {
        peer = 0;
        k = (k + 1) % unit.length;
      }
    }
  };
  // Sends that complete at once call back on nextTick: pumping from there would starve the
  // event loop (no receives, no timers), so refill once per loop turn instead.
  let scheduled = false;
  const refill = () => {
    scheduled = false;
    pump();
  };
  const onSent = () => {
    inflight -= 1;
    if (!scheduled) {
      scheduled = true;
      setImmediate(refill);
    }
  };
  pump();
  await sleep(req.warmupMs);
  bytesIn = 0;
  datagramsIn = 0;
  const outAtStart = datagramsOut;
  counting = true;
  const t0 = process.hrtime.bigint();
  await sleep(req.seconds * 1000);
  counting = false;
  const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9;
  sending = false;
  const result: CeilingResult = { type: 'result', bytesIn, datagramsIn, datagramsOut: datagramsOut - outAtStart, elapsedS };
  reply(result);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

process.on('message', (m: CeilingRequest) => {
  const done = m.type === 'init' ? init(m.host) : m.type === 'run' ? run(m) : Promise.resolve(process.exit(0));
  done.catch((e: Error) => reply({ type: 'error', message: e.message }));
});
process.on('disconnect', () => process.exit(0));
