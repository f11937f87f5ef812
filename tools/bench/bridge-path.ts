// The daemon's per-message work between its driver and its clients, in one process with no
// sockets: what the CPU of a message costs the bridge and the group layer, without the noise of
// six processes on two cores. Two paths:
// - deliver: a DATA message delivered by the driver (GroupService.deliverAt, where it lies in a
//   frame) on its way to a bound client's receive queue and out in BATCH containers (every node,
//   every message);
// - send: a BATCH container of 32 SENDs from a client (BridgeCore.datagram) through the group
//   layer to the driver, with a status reply to each (the sending node, every message).
// The clients speak protocol version 5 (containers); there is one client, whose socket takes
// everything (the path of a client that keeps up: nothing is encoded for a full socket, and what
// it is sent is not read). Each path runs a warm-up, then 15 windows; the figure is nanoseconds
// per message (min, 25th percentile, median of the windows). One process's JIT can move the
// figure by more than a small change does: compare several processes in turns.
// `--root DIR` loads the code from another checkout (a worktree of an older commit), so that two
// versions can be timed in turns on the same machine.
// Run: npx tsx tools/bench/bridge-path.ts [--paths deliver,send] [--sizes 100,1300] [--root DIR]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BridgeHost } from '../../core/af/server.ts';
import type { NodeConfig } from '../../core/config/types.ts';
import type { Order } from '../../core/driver/types.ts';

interface Args { paths: string[]; sizes: number[]; root: string }

function parse(argv: string[]): Args {
  const a: Args = { paths: ['deliver', 'send'], sizes: [100, 1300], root: resolve(import.meta.dirname, '../..') };
  for (let i = 0; i < argv.length; i += 2) {
    const v = argv[i + 1] ?? '';
    switch (argv[i]) {
      case '--paths': a.paths = v.split(','); break;
      case '--sizes': a.sizes = v.split(',').map(Number); break;
      case '--root': a.root = resolve(v); break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  if (a.paths.some((p) => p !== 'deliver' && p !== 'send')) throw new Error('--paths: deliver, send or both');
  if (a.sizes.some((s) => !Number.isInteger(s) || s < 1 || s > 16_000)) throw new Error('--sizes: 1 to 16000 bytes (one MESSAGE datagram)');
  return a;
}

const limits: NodeConfig['limits'] = {
  messageSizeMax: 1 << 20, socketsMax: 64, groupsMax: 8, groupNameMax: 32, recvQueueMax: 4096,
  recvQueueBytesMax: 8 << 20, recvStallMs: 2000, membersMax: 64,
};

const WINDOWS = 15;
const CONTAINER = 32;

/** One node in memory (a GroupService over a driver that hands each message back, the bridge
 *  over a host whose client socket takes everything), with one client bound to a group. */
async function node(root: string, selfDelivery: boolean) {
  const load = (p: string) => import(pathToFileURL(`${root}/${p}`).href);
  const { GroupService } = await load('core/groups/service.ts');
  const { BridgeCore } = await load('core/af/server.ts');
  const codec = await load('core/af/codec.ts');
  const deferred: (() => void)[] = [];
  const looped: [Uint8Array, Order][] = [];
  let loop = true;
  let lastMulticast: Uint8Array | undefined;
  const host: BridgeHost = {
    now: () => 0, defer: (fn) => { deferred.push(fn); },
    connect: () => ({ send: () => 'sent', close: () => undefined }),
    sendTo: () => undefined, processAlive: () => true, largeDatagrams: true, clientExists: () => true,
    identify: (_path, pid) => ({ uid: 0, gid: 0, groups: [0], verified: true, pid }),
  };
  const svc = new GroupService({
    nodeId: 1, limits, guarantees: { fifo: true, agreed: true, safe: true, virtualSynchrony: true }, driverName: 'loopback',
    log: () => undefined, onWritable: () => bridge.writable(),
    multicast: (p: Uint8Array | readonly Uint8Array[], order: Order) => {
      if (!loop) return; // timing: the driver takes the parts as they are
      const bytes = p instanceof Uint8Array ? p : Buffer.concat(p);
      lastMulticast = bytes;
      looped.push([bytes, order]);
    },
  });
  svc.configuration({ kind: 'regular', ringId: { rep: 1, seq: 4 }, members: [1], left: [], joined: [1] });
  const bridge = new BridgeCore({ nodeId: 1, driver: 'loopback', groups: svc, runtimeStats: () => ({}), limits, messageSizeMax: limits.messageSizeMax, log: () => undefined }, host);
  const runDeferred = (): void => { for (const fn of deferred.splice(0)) fn(); };
  const pump = (): void => {
    for (;;) {
      const d = looped.shift();
      if (d) { svc.deliver(1, d[0], d[1]); continue; }
      if (deferred.length === 0) return;
      runDeferred();
    }
  };
  let id = 1;
  const request = (r: object): void => { bridge.datagram(codec.encodeRequest({ ...r, id: id++ }), '/bench.sock'); pump(); };
  request({ type: 'hello', id: 0, pid: 4242, version: 5 });
  request({ type: 'bind', id: 0, group: 'bench-group', selfDelivery });
  return { svc, bridge, codec, runDeferred, request, stopLoop: () => { loop = false; }, lastMulticast: () => lastMulticast };
}

/** ns per message over WINDOWS windows of `perWindow` calls of `step` (each `msgs` messages). */
function time(step: () => void, perWindow: number, msgs: number): { min: number; p25: number; median: number } {
  for (let i = 0; i < perWindow * 5; i++) step();
  const w: number[] = [];
  for (let k = 0; k < WINDOWS; k++) {
    const t0 = performance.now();
    for (let i = 0; i < perWindow; i++) step();
    w.push(((performance.now() - t0) * 1e6) / (perWindow * msgs));
  }
  w.sort((x, y) => x - y);
  return { min: w[0], p25: w[Math.floor(WINDOWS / 4)], median: w[Math.floor(WINDOWS / 2)] };
}

async function deliverPath(root: string, size: number) {
  const n = await node(root, true);
  n.request({ type: 'send', id: 0, order: 'agreed', data: new Uint8Array(size).fill(0x61) });
  n.stopLoop();
  const payload = n.lastMulticast();
  if (!payload) throw new Error('the group layer multicast nothing');
  // As a driver delivers it from a larger frame: where it lies (deliverAt), or, in a checkout
  // from before deliverAt, a view made for each message (as the reassembler made them then).
  const frame = new Uint8Array(65_536);
  frame.set(payload, 100);
  const end = 100 + payload.length;
  const svc = n.svc;
  const step = svc.deliverAt
    ? () => { for (let i = 0; i < CONTAINER; i++) svc.deliverAt(1, frame, 100, end, 'agreed'); }
    : () => { for (let i = 0; i < CONTAINER; i++) svc.deliver(1, frame.subarray(100, end), 'agreed'); };
  return time(() => {
    step();
    n.runDeferred();
  }, 600, CONTAINER);
}

async function sendPath(root: string, size: number) {
  const n = await node(root, false);
  n.stopLoop();
  const data = new Uint8Array(size).fill(0x61);
  let id = 10;
  // Each its own buffer, as the daemon's socket reads them (and hands them on as plain arrays).
  const containers = Array.from({ length: 64 }, () => new Uint8Array(n.codec.encodeBatch(Array.from({ length: CONTAINER }, () => n.codec.encodeRequest({ type: 'send', id: id++, order: 'agreed', data })))));
  let k = 0;
  return time(() => {
    n.bridge.datagram(containers[k++ & 63], '/bench.sock');
    n.runDeferred();
  }, 600, CONTAINER);
}

const a = parse(process.argv.slice(2));
console.log(`bridge path, code at ${a.root}: ns per message (min / p25 / median of ${WINDOWS} windows)`);
for (const path of a.paths) {
  for (const size of a.sizes) {
    const r = path === 'deliver' ? await deliverPath(a.root, size) : await sendPath(a.root, size);
    console.log(`${path.padEnd(8)} ${String(size).padStart(6)} B  ${r.min.toFixed(0).padStart(5)} / ${r.p25.toFixed(0).padStart(5)} / ${r.median.toFixed(0).padStart(5)}`);
  }
}
