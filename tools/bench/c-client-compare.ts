// The C client's afc-bench against the TypeScript client on the same work, interleaved in one
// run: one sender alone on node 1 of a 3-node totem cluster, agreed order, as fast as its daemon
// accepts, per size. Both count what node 1 delivers back to them (TP/s); MB/s = TP/s x size.
// The TypeScript row is the bench's own client (client-worker.ts, ClusterSocket); the C row is
// clients/c/build/afc-bench (built by npm install) in the same group, so node 1 then has the idle
// TypeScript member too (one more local delivery per message: the C row pays for it).
// With --latency: idle round trips instead (one message at a time from node 1, back to its
// sender), the median and 99th percentile of each client in turn, as `afcluster bench` measures.
// Run: npx tsx tools/bench/c-client-compare.ts [--sizes 100,1300,65536] [--seconds 3] [--rounds 2] [--latency]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BENCH_GROUP, BenchCluster } from './cluster.ts';
import type { ClientRequest, LatencyResult, ThroughputResult } from './client-protocol.ts';
import { WARMUP_MS } from './driver-bench.ts';
import { summarizeLatency } from './stats.ts';

const AFC_BENCH = fileURLToPath(new URL('../../clients/c/build/afc-bench', import.meta.url));

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

async function main(): Promise<number> {
  const sizes = flag('--sizes', '100,1300,65536').split(',').map(Number);
  const seconds = Number(flag('--seconds', '3'));
  const rounds = Number(flag('--rounds', '2'));
  if (!existsSync(AFC_BENCH)) {
    console.error(`c-client-compare: ${AFC_BENCH} is missing: build it with npm run build:c`);
    return 1;
  }
  const cluster = await BenchCluster.start({ nodes: 3, driver: 'totem', crypto: false });
  try {
    if (process.argv.includes('--latency')) return await latency(cluster, sizes, seconds, rounds);
    console.log(`one sender on node 1 of 3 (totem, crypto off, agreed), ${seconds} s per size after a ${WARMUP_MS} ms warm-up`);
    console.log(['round', 'client', 'size', 'writes', 'TP/s', 'MB/s'].map((h) => h.padStart(8)).join(''));
    const row = (round: number, who: string, size: number, writes: number, tps: number) =>
      console.log([String(round), who, String(size), String(writes), tps.toFixed(0), (tps * size / 1e6).toFixed(2)].map((c) => c.padStart(8)).join(''));
    let phase = 1_000_000;
    for (let round = 1; round <= rounds; round++) {
      for (const size of sizes) {
        phase++;
        const req = (send: boolean): ClientRequest => ({ type: 'throughput', phase, size, order: 'agreed', warmupMs: WARMUP_MS, seconds, send });
        const results = await Promise.all([1, 2, 3].map((n) => cluster.ask<ThroughputResult>(n, req(n === 1), (seconds + 30) * 1000)));
        const ts = results[0];
        if (ts.errors.length) console.error(`TypeScript client: ${ts.errors.join('; ')}`);
        row(round, 'ts', size, ts.written, ts.delivered / ts.elapsedS);
        await cluster.ask(1, { type: 'drain', quietMs: 150, maxMs: 5000 }, 10_000);
        const c = spawnSync(AFC_BENCH, ['--socket', cluster.socket(1), '--group', BENCH_GROUP, '--sizes', String(size), '--seconds', String(seconds), '--members', '4'],
          { encoding: 'utf8', timeout: (seconds + 60) * 1000 });
        const line = c.stdout.split('\n').find((l) => l.trim().startsWith(`${size} `));
        const f = line?.trim().split(/\s+/);
        if (c.status !== 0 || !f) {
          console.error(`afc-bench failed (status ${c.status}): ${c.stderr.trim()}`);
          return 1;
        }
        row(round, 'c', size, Number(f[1]), Number(f[3]));
        await cluster.ask(1, { type: 'drain', quietMs: 150, maxMs: 5000 }, 10_000);
      }
    }
    return 0;
  } finally {
    await cluster.close();
  }
}

async function latency(cluster: BenchCluster, sizes: number[], seconds: number, rounds: number): Promise<number> {
  console.log(`idle round trips from node 1 of 3 (totem, crypto off, agreed), ${seconds} s per size after a ${WARMUP_MS} ms warm-up`);
  console.log(['round', 'client', 'size', 'samples', 'p50 us', 'p99 us'].map((h) => h.padStart(8)).join(''));
  const row = (round: number, who: string, size: number, n: number, p50: number, p99: number) =>
    console.log([String(round), who, String(size), String(n), p50.toFixed(0), p99.toFixed(0)].map((c) => c.padStart(8)).join(''));
  let phase = 2_000_000;
  for (let round = 1; round <= rounds; round++) {
    for (const size of sizes) {
      const r = await cluster.ask<LatencyResult>(1, { type: 'latency', phase: ++phase, size, order: 'agreed', warmupMs: WARMUP_MS, seconds, samplesMax: 1_000_000 }, (seconds + 30) * 1000);
      if (r.errors.length) console.error(`TypeScript client: ${r.errors.join('; ')}`);
      const ts = summarizeLatency(r.samplesUs);
      row(round, 'ts', size, ts.samples, ts.medianUs, ts.p99Us);
      const c = spawnSync(AFC_BENCH, ['--latency', '--socket', cluster.socket(1), '--group', BENCH_GROUP, '--sizes', String(size), '--seconds', String(seconds), '--members', '4'],
        { encoding: 'utf8', timeout: (seconds + 60) * 1000 });
      const f = c.stdout.split('\n').find((l) => l.trim().startsWith(`${size} `))?.trim().split(/\s+/);
      if (c.status !== 0 || !f) {
        console.error(`afc-bench --latency failed (status ${c.status}): ${c.stderr.trim()}`);
        return 1;
      }
      row(round, 'c', size, Number(f[1]), Number(f[2]), Number(f[3]));
    }
  }
  return 0;
}

process.exitCode = await main();
