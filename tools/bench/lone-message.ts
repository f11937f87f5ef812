// Lone messages on an idle ring: one message at a time from one node, with a pause before each
// (so the representative holds the token, as on a quiet cluster: a lock request, a config change),
// timed until it is delivered back to the sender. What a back-to-back latency loop never sees:
// there the ring is never idle for long. Node 1 is the representative (the lowest id). First,
// for scale, a request that stays on the node (LOCAL_NODE, client to daemon and back) after the
// same pause and back to back: what waking idle processes costs this machine.
// Run: npx tsx tools/bench/lone-message.ts [--gap-ms 20] [--count 250] [--nodes 1,2] [--crypto on]
import { BenchCluster } from './cluster.ts';
import { percentile } from './stats.ts';
import { ClusterSocket } from '../../sockapi/client.ts';

function parse(argv: string[]): { gapMs: number; count: number; nodes: number[]; crypto: boolean } {
  const a = { gapMs: 20, count: 250, nodes: [1, 2], crypto: false };
  for (let i = 0; i < argv.length; i += 2) {
    const v = argv[i + 1] ?? '';
    switch (argv[i]) {
      case '--gap-ms': a.gapMs = Number(v); break;
      case '--count': a.count = Number(v); break;
      case '--nodes': a.nodes = v.split(',').map(Number); break;
      case '--crypto': a.crypto = v === 'on'; break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  if (!(a.gapMs >= 0) || !(a.count >= 1) || a.nodes.some((n) => !(n >= 1 && n <= 3))) throw new Error('--gap-ms >= 0, --count >= 1, --nodes among 1,2,3');
  return a;
}

const a = parse(process.argv.slice(2));
const c = await BenchCluster.start({ driver: 'totem', nodes: 3, crypto: a.crypto, driverSections: {}, keep: false, daemonFlags: [] });
try {
  const pct = (us: number[], p: number) => percentile(us, p).toFixed(0);
  const probe = await ClusterSocket.open({ path: `${c.dir}/node1.sock` });
  for (const gap of [a.gapMs, 0]) {
    const us: number[] = [];
    for (let i = 0; i < a.count; i++) {
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      const t0 = process.hrtime.bigint();
      await probe.localNode();
      us.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    console.log(`a request to node 1's daemon and back, ${gap > 0 ? `every ${gap} ms` : 'back to back'}: p50 ${pct(us, 50)} p90 ${pct(us, 90)} us`);
  }
  await probe.close();
  for (const node of a.nodes) {
    const s = await ClusterSocket.open({ path: `${c.dir}/node${node}.sock` });
    await s.bind('lone-message');
    const events = s[Symbol.asyncIterator]();
    const holds = Number((await c.stats())[0]['driver.holds']);
    const us: number[] = [];
    for (let i = 0; i < a.count; i++) {
      await new Promise((r) => setTimeout(r, a.gapMs));
      const t0 = process.hrtime.bigint();
      await s.send(`lone ${i}`);
      for (;;) {
        const ev = await events.next();
        if (ev.done) throw new Error(`node ${node}'s socket ended`);
        if (ev.value.type === 'message') break;
      }
      us.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    const held = Number((await c.stats())[0]['driver.holds']) - holds;
    console.log(`node ${node}, one message every ${a.gapMs} ms: p10 ${pct(us, 10)} p50 ${pct(us, 50)} p90 ${pct(us, 90)} p99 ${pct(us, 99)} us (${us.length} messages; the representative held the token ${held} times meanwhile)`);
    await s.close();
  }
} finally {
  await c.close();
}
