// Proves the bench's C client (`afcluster bench --client c`): afc-bench-worker, compiled from
// tools/bench/workers against the C library npm install built, drives real daemons on loopback
// through the same requests as the TypeScript client. One sender's messages reach every node,
// idle round trips come back, and what it cannot do (another order than its own, a second join)
// is an error, not a figure. Skipped, saying so, where no C compiler exists. Assertions are about
// what happened, never how fast.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BenchCluster } from './cluster.ts';
import { measureLatency, measureThroughput, type RunLabels } from './driver-bench.ts';

const CC = process.env.CC || 'cc';
const HAVE_CC = spawnSync(CC, ['--version'], { stdio: 'ignore' }).status === 0;
if (!HAVE_CC) console.warn(`c-worker.test.ts: skipped: no C compiler (${CC}) on this machine`);

const labels: RunLabels = { driver: 'totem', crypto: 'off', accelerated: 'off', order: 'agreed' };

describe.skipIf(!HAVE_CC)('afc-bench-worker, the bench\'s C client', () => {
  let cluster: BenchCluster;
  beforeAll(async () => {
    cluster = await BenchCluster.start({ driver: 'totem', nodes: 2, crypto: false, client: 'c', order: 'agreed', driverSections: { totem: { token_ms: 1000 } } });
  }, 90_000);
  afterAll(async () => { await cluster?.close(); }, 30_000);

  it('sends from node 1 alone and counts its messages at both nodes', async () => {
    expect(cluster.messageSizeMax).toBeGreaterThan(1300);
    const { row, errors } = await measureThroughput(cluster, labels, 1300, 0.5, 'one');
    expect(errors).toEqual([]);
    expect(row.writes).toBeGreaterThan(0);
    expect(row.tpMinPerSec).toBeGreaterThan(0); // node 2, which did not send, counted node 1's
    expect(row.cpuUsPerMessage?.clients).toBeGreaterThan(0); // the C clients' CPU is counted
  }, 60_000);

  it('times idle round trips back to its own process, and paced ones', async () => {
    const back = await measureLatency(cluster, labels, { size: 100, seconds: 0.3, loadPerSec: 0, warmupMs: 100 });
    expect(back.errors).toEqual([]);
    expect(back.row.samples).toBeGreaterThan(0);
    const paced = await measureLatency(cluster, labels, { size: 100, seconds: 0.3, loadPerSec: 0, warmupMs: 100, intervalMs: 10 });
    expect(paced.errors).toEqual([]);
    expect(paced.row.samples).toBeGreaterThan(0);
    expect(paced.row.samples).toBeLessThanOrEqual(31); // one every 10 ms in 0.3 s
  }, 60_000);

  it('refuses a row in another order than the one it was started with, and a second join', async () => {
    await expect(cluster.ask(1, { type: 'throughput', phase: 1, size: 100, order: 'fifo', warmupMs: 0, seconds: 0.1, send: true }, 5000))
      .rejects.toThrow(/sends in agreed order \(given at its start\), not fifo/);
    await expect(cluster.ask(2, { type: 'open', socket: '', group: 'bench' }, 5000)).rejects.toThrow(/node 2's afc-bench-worker: already joined/);
    // Still answering afterwards.
    expect(await cluster.ask(2, { type: 'waitMembers', members: 2, timeoutMs: 5000 }, 10_000)).toEqual({ type: 'members', members: 2 });
  }, 30_000);
});
