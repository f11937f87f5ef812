// One node of the raw UDP ceiling: a process that fan-out sends the same bytes the drivers
// would (messages packed into datagrams of the drivers' size) to every other node over
// loopback UDP, with no protocol at all, and counts what arrives. Driven over IPC by ceiling.ts.
// It uses the sockets the daemons use (core/transport/udp.ts): the native helper's where it was
// built, Node's dgram otherwise or with AFCLUSTER_UDP=dgram.
import { createSocket } from 'node:dgram';
import { constants } from 'node:os';
import { errnoName, loadNative, type NativeHandle, type NativeUdpSockets } from '../../core/native/index.ts';
import { defaultUdpSockets } from '../../core/transport/udp.ts';
import type { CeilingRequest, CeilingResult } from './ceiling.ts';
import { unitDatagrams } from './ceiling.ts';

const BUFFER_BYTES = 4 << 20;
const EAGAIN = constants.errno.EAGAIN;

/** What run() needs of a socket: a send that says whether the datagram was taken now (true),
 *  will be (a callback follows: dgram), or met a full buffer (false: `room` then calls back). */
interface CeilingSocket {
  /** Sends complete before send() returns (no callback), else each calls `done`. */
  readonly synchronous: boolean;
  send(buf: Buffer, port: number, host: string, done: () => void): boolean;
  room(fn: () => void): void;
}

let sock: CeilingSocket | undefined;
let counting = false;
let bytesIn = 0;
let datagramsIn = 0;

function reply(msg: object): void {
  process.send?.(msg);
}

function onMessage(msg: Buffer): void {
  if (!counting) return;
  bytesIn += msg.length;
  datagramsIn += 1;
}

async function init(host: string): Promise<void> {
  const n = defaultUdpSockets() === 'native' ? loadNative()?.udpSocket : undefined;
  if (n) {
    const { socket, port } = nativeSocket(n, host);
    sock = socket;
    reply({ type: 'ready', port });
    return;
  }
  const s = createSocket({ type: 'udp4', recvBufferSize: BUFFER_BYTES, sendBufferSize: BUFFER_BYTES });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, host, () => {
      s.off('error', reject);
      resolve();
    });
  });
  s.on('message', onMessage);
  s.on('error', () => { /* a send error (ENOBUFS) is the ceiling's loss, counted as not arriving */ });
  sock = {
    synchronous: false,
    send: (buf, port, h, done) => { s.send(buf, port, h, done); return true; },
    room: () => undefined, // dgram queues in libuv: every send calls back
  };
  reply({ type: 'ready', port: s.address().port });
}

/** The native helper's socket: sends are synchronous (done() is not called: the datagram left or
 *  failed, a failure being the ceiling's loss), a full buffer is waited out. */
function nativeSocket(n: NativeUdpSockets, host: string): { socket: CeilingSocket; port: number } {
  let waiting: (() => void) | undefined;
  const h: NativeHandle | number = n.open(4, onMessage, () => { const w = waiting; waiting = undefined; w?.(); }, BUFFER_BYTES);
  if (typeof h === 'number') throw new Error(`socket: ${errnoName(-h)}`);
  const r = n.bind(h, host, 0, false);
  if (r < 0) throw new Error(`bind ${host}: ${errnoName(-r)}`);
  const addresses = new Map<string, Buffer>();
  return {
    port: n.port(h),
    socket: {
      synchronous: true,
      send: (buf, port, to) => {
        const key = `${to}:${port}`;
        let a = addresses.get(key);
        if (!a) addresses.set(key, (a = n.sockaddr(to, port) as Buffer));
        return n.send(h, buf, a) !== -EAGAIN;
      },
      room: (fn) => { waiting = fn; },
    },
  };
}

/** Sends units (one packed datagram, or a large message's fragments) round robin to all peers,
 *  keeping at most `inflightMax` sends queued in libuv so memory stays bounded (the native
 *  socket's sends are synchronous: `inflightMax` a loop turn). */
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
  const advance = (): void => {
    if (++peer === req.peers.length) {
      peer = 0;
      k = (k + 1) % unit.length;
    }
  };
  const pump = () => {
    if (s.synchronous) {
      // inflightMax sends a turn, then the loop turns (receives, timers) before the next ones.
      for (let i = 0; sending && i < inflightMax; i++) {
        const p = req.peers[peer];
        if (!s.send(unit[k], p.port, p.host, onSent)) { // a full send buffer: the same one again when there is room
          s.room(refill);
          return;
        }
        datagramsOut += 1;
        advance();
      }
      if (sending && !scheduled) {
        scheduled = true;
        setImmediate(refill);
      }
      return;
    }
    while (sending && inflight < inflightMax) {
      const p = req.peers[peer];
      inflight += 1;
      datagramsOut += 1;
      s.send(unit[k], p.port, p.host, onSent);
      advance();
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
