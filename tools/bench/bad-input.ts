// A burst of bad input against one daemon, and its memory afterwards: random datagrams (1 B to
// 64 KiB) at node 1's UDP port and at its unix socket, as fast as they go, for --seconds; then
// node 1's RSS at its peak and --after-s later, what it counted, and whether the ring is whole.
// The outsiders' run that filed this saw 68 -> 342 MB, and 342 MB stayed.
// Run: npx tsx tools/bench/bad-input.ts [--seconds 10] [--after-s 30] [--crypto on|off]
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { LocalCluster } from '../local-cluster.ts';
import { createUnixSocket, sendUnix } from '../../core/af/unix.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

function rssMb(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN) / 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

const seconds = Number(flag('--seconds', '10'));
const afterS = Number(flag('--after-s', '30'));
const crypto = flag('--crypto', 'on') === 'on';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const c = await LocalCluster.create({ nodes: 3, driver: 'totem', crypto, logLevel: 'error', prefix: 'afc-badinput-' });
try {
  await c.start();
  const pid = c.node(1).proc?.pid ?? 0;
  await sleep(2000);
  const idle = rssMb(pid).rss;
  console.log(`3 nodes, totem, crypto ${crypto ? 'on' : 'off'}; node 1 idle RSS ${idle.toFixed(1)} MB; ${seconds} s of random datagrams at its UDP port and unix socket`);
  const udp = createSocket('udp4');
  const unix = createUnixSocket();
  const pool = randomBytes(1 << 20);
  let udpSent = 0, unixSent = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 64; i++) {
      const size = 1 + Math.floor(Math.random() * 65_000);
      const at = Math.floor(Math.random() * (pool.length - size));
      udp.send(pool.subarray(at, at + size), c.opts.basePort, '127.0.0.1');
      udpSent++;
      if (sendUnix(unix, pool.subarray(at, at + Math.min(size, 60_000)), c.node(1).socket) === undefined) unixSent++;
    }
    await new Promise((r) => setImmediate(r));
  }
  udp.close();
  unix.close();
  const peak = rssMb(pid);
  console.log(`sent ${udpSent} UDP and ${unixSent} unix datagrams; node 1 RSS now ${peak.rss.toFixed(1)} MB, peak ${peak.hwm.toFixed(1)} MB`);
  await sleep(afterS * 1000);
  const st = await c.stats(1);
  const pick = (re: RegExp) => Object.entries(st).filter(([k]) => re.test(k)).map(([k, v]) => `${k}=${String(v)}`).join(' ');
  console.log(`${afterS} s later: node 1 RSS ${rssMb(pid).rss.toFixed(1)} MB (idle ${idle.toFixed(1)}); ${pick(/mallocTrims|gcRuns$|badRequests|datagramsIn|dropped/)}`);
  await c.waitRing([1, 2, 3], 10_000);
  console.log('the ring has all three nodes');
} finally {
  await c.stop();
}
