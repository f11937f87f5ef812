// Proves the UDP transport's multicast on real links, IPv4 and IPv6, on the native helper's sockets
// and on Node's dgram (AFCLUSTER_UDP=dgram): three totem daemons, each in a network namespace of
// its own on one bridge (tools/drills/netns.ts; the IPv6 addresses fd7a:213:7::K exist only
// there), configured with transport = "multicast", form one ring, and a message from each node
// reaches every node in one order. That the group address carried them shows in each daemon's
// counters: its own multicast comes back to it (droppedSelf) and is dropped. Namespaces are
// removed whatever happens; without them the test is skipped, saying why.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterSocket } from '../../sockapi/client.ts';
import type { SocketEvent } from '../../core/api/types.ts';
import { loadNative } from '../../core/native/index.ts';
import { NetnsCluster } from '../../tools/drills/netns-cluster.ts';
import { createTopology, destroyTopology, IFACE, namespaceSupport, type Topology } from '../../tools/drills/netns.ts';

const support = namespaceSupport();
const NODES = 3;
const PORT = 5471;
const v6 = (k: number): string => `fd7a:213:7::${k}`;

let topology: Topology | undefined;
let cluster: NetnsCluster | undefined;
const sockets: ClusterSocket[] = [];
afterEach(async () => {
  await Promise.all(sockets.splice(0).map((s) => s.close().catch(() => undefined)));
  await cluster?.stop();
  cluster = undefined;
  if (topology) destroyTopology(topology);
  topology = undefined;
});

/** The next event of a socket's stream that `want` takes; the limit only stops a hung test. */
async function next<T extends SocketEvent>(events: AsyncIterator<SocketEvent>, want: (ev: SocketEvent) => ev is T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error('no such event within 20 s')), 20_000); });
  try {
    for (;;) {
      const r = await Promise.race([events.next(), limit]);
      if (r.done) throw new Error('the event stream ended');
      if (want(r.value)) return r.value;
    }
  } finally {
    clearTimeout(timer);
  }
}
const isMessage = (ev: SocketEvent): ev is Extract<SocketEvent, { type: 'message' }> => ev.type === 'message';
const isFullView = (ev: SocketEvent): ev is Extract<SocketEvent, { type: 'membership' }> => ev.type === 'membership' && ev.members.length === NODES;

describe.each([['IPv4', 4], ['IPv6', 6]] as const)('multicast over %s in network namespaces', (_name, family) => {
  for (const sockets_ of ['native', 'dgram'] as const) it(`${sockets_} sockets: one ring, every message at every node in one order`, async (ctx) => {
    if (!support.ok) {
      console.log(`SKIPPED multicast in namespaces: ${support.reason}`);
      return ctx.skip(support.reason);
    }
    if (sockets_ === 'native' && !loadNative()) return ctx.skip('the native helper is not built');
    topology = createTopology(NODES, `m${family}${sockets_[0]}${process.pid % 10_000}`);
    if (family === 6) {
      topology.names.forEach((ns, i) => {
        execFileSync('ip', ['-n', ns, '-6', 'addr', 'add', `${v6(i + 1)}/64`, 'dev', IFACE, 'nodad'], { stdio: 'pipe' });
      });
    }
    cluster = new NetnsCluster({ nodes: NODES, driver: 'totem', basePort: PORT }, topology);
    const group = family === 4 ? `239.192.213.7:${PORT}` : `[ff12::213:7]:${PORT}`;
    for (const n of cluster.nodes) {
      let text = readFileSync(n.config, 'utf8').replace('transport = "udpu"', `transport = "multicast"\nmulticast_addr = "${group}"`);
      if (family === 6) text = text.replace(/"10\.213\.7\.(\d+):/g, (_m, k: string) => `"[${v6(Number(k))}]:`);
      writeFileSync(n.config, text);
    }
    const before = process.env.AFCLUSTER_UDP;
    process.env.AFCLUSTER_UDP = sockets_;
    try {
      cluster.startAll();
    } finally {
      if (before === undefined) delete process.env.AFCLUSTER_UDP; else process.env.AFCLUSTER_UDP = before;
    }
    await cluster.waitRing([1, 2, 3]);

    for (const n of cluster.nodes) {
      const s = await ClusterSocket.open({ path: n.socket });
      sockets.push(s);
      await s.bind('mcast');
    }
    const streams = sockets.map((s) => s[Symbol.asyncIterator]());
    for (const e of streams) await next(e, isFullView); // every member in every view before anyone sends
    for (const [i, s] of sockets.entries()) await s.send(Buffer.from(`from node ${i + 1}`));
    const seen: string[][] = [];
    for (const e of streams) {
      const got: string[] = [];
      for (let k = 0; k < NODES; k++) got.push(Buffer.from((await next(e, isMessage)).data).toString());
      seen.push(got);
    }
    expect([...seen[0]].sort()).toEqual(['from node 1', 'from node 2', 'from node 3']);
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[2]).toEqual(seen[0]);

    for (const n of cluster.nodes) {
      const st = await cluster.stats(n.id);
      expect(st['transport.nativeSockets'], `node ${n.id}`).toBe(sockets_ === 'native' ? 1 : 0);
      expect(st['transport.droppedSelf'], `node ${n.id}: its own multicast came back`).toBeGreaterThan(0);
      expect(st['transport.sendErrors'], `node ${n.id}`).toBe(0);
    }
  }, 120_000);
});
