// The one-sender workload on real daemons, apart from the bench's tables: one sender alone in an
// N-node group (node 1's client sends as fast as its daemon accepts, the others only count),
// idle self-delivery round trips, and node 1's daemon RSS idle, at its peak and a while after.
// Latency first (on a ring with no backlog), then throughput by size.
// Run: npx tsx tools/bench/one-sender.ts [--driver totem] [--nodes 3] [--sizes 100,1300,65536]
//      [--crypto off|on] [--seconds 3] [--latency-sizes 100,1000] [--latency-seconds 3]
//      [--after-s 60] [--profile DIR] [--set section.key=value] [--mtu 65535]
//      [--daemon-flags "--trace-gc --max-semi-space-size=8"] (after the daemons' own V8 flags)
//      [--latency-after] (latency after the throughput sizes, as `afcluster bench` orders them)
//      [--latency-gap S] (with --latency-after: S seconds of nothing between them)
//      [--latency-both] (latency before the throughput sizes and again after them)
//      [--latency-warmup S] (round trips not counted first; default 0.3, where `afcluster bench`
//      waits 3: this tool is where the first seconds after a start or a load show)
//      [--latency-paced MS] (idle round trips started every MS ms, as `afcluster bench --latency-paced`)
//      [--latency-load N] (the latency rows under N msg/s sent by the other nodes together, as
//      `afcluster bench --latency` loads them; with ONE_SENDER_STATS, the counters' changes)
// Environment: ONE_SENDER_MEM=1 prints node 1's memory after each size, ONE_SENDER_HIST=1 the
// latency percentiles and the slowest 1% of samples, ONE_SENDER_KEEP=1 keeps the daemons' logs.
// docs/BENCH.md ("Large messages, tail latency, memory") has what it measured.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchCluster } from './cluster.ts';
import type { ClientRequest, LatencyResult, ThroughputResult } from './client-protocol.ts';
import { idleRowName, measureLatency, WARMUP_MS } from './driver-bench.ts';
import { parseLatencyPaced, parseLatencyWarmup } from './options.ts';
import { cpuSeconds, request } from './proc.ts';

interface Args {
  driver: string; nodes: number; sizes: number[]; crypto: boolean; seconds: number;
  latencySizes: number[]; latencySeconds: number; afterS: number; profile?: string;
  sections: Record<string, Record<string, unknown>>; mtu?: number; daemonFlags: string[]; latencyAfter: boolean; latencyBoth: boolean; latencyGapS: number; latencyWarmupMs: number;
  latencyLoad: number; latencyPacedMs: number;
}

function parse(argv: string[]): Args {
  const a: Args = { driver: 'totem', nodes: 3, sizes: [100, 1300, 65536], crypto: false, seconds: 3, latencySizes: [100, 1000], latencySeconds: 3, afterS: 0, sections: {}, daemonFlags: [], latencyAfter: false, latencyBoth: false, latencyGapS: 0, latencyWarmupMs: WARMUP_MS, latencyLoad: 0, latencyPacedMs: 0 };
  const list = (s: string) => (s === '' || s === 'none' ? [] : s.split(',').map(Number));
  for (let i = 0; i < argv.length; i += 2) {
    const v = argv[i + 1] ?? '';
    switch (argv[i]) {
      case '--driver': a.driver = v; break;
      case '--nodes': a.nodes = Number(v); break;
      case '--sizes': a.sizes = list(v); break;
      case '--crypto': a.crypto = v === 'on'; break;
      case '--seconds': a.seconds = Number(v); break;
      case '--latency-sizes': a.latencySizes = list(v); break;
      case '--latency-seconds': a.latencySeconds = Number(v); break;
      case '--after-s': a.afterS = Number(v); break;
      case '--profile': a.profile = v; break;
      case '--mtu': a.mtu = Number(v); break;
      case '--latency-after': a.latencyAfter = true; i--; break;
      case '--latency-both': a.latencyAfter = a.latencyBoth = true; i--; break;
      case '--latency-gap': a.latencyGapS = Number(v); break;
      case '--latency-warmup': a.latencyWarmupMs = Math.round(parseLatencyWarmup(v) * 1000); break;
      case '--latency-paced': a.latencyPacedMs = parseLatencyPaced(v, true, false) ?? 0; break;
      case '--latency-load':
        a.latencyLoad = Number(v);
        if (v === '' || !Number.isFinite(a.latencyLoad) || a.latencyLoad < 0) throw new Error(`--latency-load ${v}: expected messages per second, 0 or more`);
        break;
      case '--daemon-flags': a.daemonFlags = v.split(' ').filter(Boolean); break;
      case '--set': {
        const [k, val] = v.split('=');
        const [sec, key] = k.split('.');
        a.sections[sec] = { ...a.sections[sec], [key]: Number.isFinite(Number(val)) ? Number(val) : val };
        break;
      }
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  if (a.latencyLoad > 0 && process.env.ONE_SENDER_HIST) throw new Error('ONE_SENDER_HIST times idle round trips only: leave out --latency-load');
  return a;
}

function rssMb(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN) / 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** The numeric stats that changed on each node: as differences (ask for counters), except those
 *  named ...Ms or ...Max, shown as they are now; another gauge would show its change. */
function printChanges(before: readonly Record<string, unknown>[], after: readonly Record<string, unknown>[], re: RegExp): void {
  after.forEach((st, i) => {
    const changed = Object.entries(st).filter(([k, v]) => re.test(k) && typeof v === 'number' && v !== before[i]?.[k]);
    const shown = changed.map(([k, v]) => {
      const was = before[i]?.[k];
      return `${k}=${typeof was === 'number' && !/Ms$|Max$/.test(k) ? (v as number) - was : String(v)}`;
    });
    console.log(`   node ${i + 1}: ${shown.join(' ')}`);
  });
}

let phase = 1_000_000;

async function oneSender(c: BenchCluster, size: number, seconds: number): Promise<string> {
  phase++;
  const pid = c.daemonPids[0];
  const cpu0 = cpuSeconds(pid) ?? 0, all0 = c.cpu();
  const results = await Promise.all(Array.from({ length: c.size }, (_, i) => request<ThroughputResult>(c.client(i + 1), {
    type: 'throughput', phase, size, order: 'agreed', warmupMs: WARMUP_MS, seconds, send: i === 0,
  } satisfies ClientRequest, WARMUP_MS + seconds * 1000 + 60_000)));
  const cpu1 = cpuSeconds(pid) ?? 0, all1 = c.cpu();
  const tp = results.map((r) => r.delivered / r.elapsedS);
  const minTp = Math.min(...tp);
  // CPU per message over the warm-up and the window, as if the window's rate held through both.
  const perMsg = (s: number) => ((s * 1e6) / (minTp * (seconds + WARMUP_MS / 1000))).toFixed(1);
  const errs = [...new Set(results.flatMap((r) => r.errors))];
  // Drain: the clients report once nothing has arrived for 150 ms.
  await Promise.all(Array.from({ length: c.size }, (_, i) => request(c.client(i + 1), { type: 'drain', quietMs: 150, maxMs: 5000 } satisfies ClientRequest, 30_000)));
  return `${String(size).padStart(8)} B  ${minTp.toFixed(1).padStart(10)} msg/s  ${((minTp * size) / 1e6).toFixed(2).padStart(8)} MB/s` +
    `  (slowest node; sender's daemon cpu ${(((cpu1 - cpu0) / (seconds + WARMUP_MS / 1000)) * 100).toFixed(0)}%;` +
    ` cpu us/msg daemons+clients ${perMsg(all1.daemons - all0.daemons)}+${perMsg(all1.clients - all0.clients)})${errs.length ? `  errors: ${errs.join('; ')}` : ''}`;
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const c = await BenchCluster.start({
    driver: a.driver, nodes: a.nodes, crypto: a.crypto, driverSections: a.sections, mtu: a.mtu, keep: !!process.env.ONE_SENDER_KEEP, daemonFlags: a.daemonFlags,
    profileDir: a.profile ? join(a.profile, `${a.driver}-crypto-${a.crypto ? 'on' : 'off'}`) : undefined,
  });
  try {
    const pid = c.daemonPids[0];
    const idle = rssMb(pid);
    console.log(`${a.driver}, ${a.nodes} nodes, crypto ${a.crypto ? 'on' : 'off'}, one sender (node 1), agreed; node 1 daemon idle RSS ${idle.rss.toFixed(1)} MB`);
    const l = { driver: a.driver, crypto: a.crypto ? 'on' as const : 'off' as const, accelerated: '-' as const, order: 'agreed' as const };
    const latencies = async (): Promise<void> => {
      for (const size of a.latencySizes) {
        if (process.env.ONE_SENDER_HIST) {
          phase++;
          const r = await request<LatencyResult>(c.client(1), { type: 'latency', phase, size, order: 'agreed', warmupMs: a.latencyWarmupMs, seconds: a.latencySeconds, samplesMax: 100_000, ...(a.latencyPacedMs ? { intervalUs: a.latencyPacedMs * 1000 } : {}) } satisfies ClientRequest, a.latencyWarmupMs + a.latencySeconds * 1000 + 60_000);
          if (process.env.ONE_SENDER_DUMP) writeFileSync(`${process.env.ONE_SENDER_DUMP}.${phase}`, r.samplesUs.map((x) => x.toFixed(0)).join('\n'));
          const sorted = [...r.samplesUs].sort((x, y) => x - y);
          const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))].toFixed(0);
          console.log(`latency ${size} B: p10 ${at(0.1)} p50 ${at(0.5)} p90 ${at(0.9)} p95 ${at(0.95)} p98 ${at(0.98)} p99 ${at(0.99)} p99.5 ${at(0.995)} max ${at(0.9999)}; top 1%: ${sorted.slice(Math.floor(sorted.length * 0.99)).map((x) => x.toFixed(0)).join(' ')}`);
          continue;
        }
        const before = process.env.ONE_SENDER_STATS ? await c.stats() : [];
        const { row, errors } = await measureLatency(c, l, { size, seconds: a.latencySeconds, loadPerSec: a.latencyLoad, warmupMs: a.latencyWarmupMs, intervalMs: a.latencyPacedMs || undefined });
        console.log(`latency ${size} B ${a.latencyLoad > 0 ? `under ${a.latencyLoad} msg/s` : idleRowName(a.latencyPacedMs)}: p50 ${row.medianUs.toFixed(0)} us, p99 ${row.p99Us.toFixed(0)} us (${row.samples} samples)${errors.length ? ` errors: ${errors.join('; ')}` : ''}`);
        if (process.env.ONE_SENDER_STATS) printChanges(before, await c.stats(), new RegExp(process.env.ONE_SENDER_STATS));
      }
    };
    if (!a.latencyAfter || a.latencyBoth) await latencies();
    for (const size of a.sizes) {
      console.log(await oneSender(c, Math.min(size, c.messageSizeMax), a.seconds));
      if (process.env.ONE_SENDER_MEM) {
        const st = (await c.stats())[0];
        console.log('   node 1 memory (MB):', ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'].map((k) => `${k} ${(Number(st[`process.${k}`]) / 2 ** 20).toFixed(0)}`).join(', '), `gcRuns ${String(st['process.gcRuns'])} floor ${(Number(st['process.gcFloorBytes']) / 2 ** 20).toFixed(0)} last ${Number(st['process.gcLastMs']).toFixed(1)} ms max ${Number(st['process.gcMaxMs']).toFixed(1)} ms`, `hwm ${rssMb(pid).hwm.toFixed(0)}`);
      }
    }
    if (a.latencyAfter) {
      if (a.latencyGapS > 0) await new Promise((r) => setTimeout(r, a.latencyGapS * 1000));
      await latencies();
    }
    if (process.env.ONE_SENDER_STATS) {
      const re = new RegExp(process.env.ONE_SENDER_STATS);
      for (const [i, st] of (await c.stats()).entries()) console.log(`   node ${i + 1}:`, Object.entries(st).filter(([k]) => re.test(k)).map(([k, v]) => `${k}=${String(v)}`).join(' '));
    }
    const peak = rssMb(pid);
    console.log(`node 1 daemon RSS: idle ${idle.rss.toFixed(1)} MB, peak ${peak.hwm.toFixed(1)} MB, now ${peak.rss.toFixed(1)} MB; all daemons' peaks ${c.peakRss().map((b) => (b / 2 ** 20).toFixed(1)).join(' ')} MB`);
    if (a.afterS > 0) {
      await new Promise((r) => setTimeout(r, a.afterS * 1000));
      const st = (await c.stats())[0];
      console.log(`node 1 daemon RSS ${a.afterS} s later: ${rssMb(pid).rss.toFixed(1)} MB`, ['heapTotal', 'heapUsed', 'external', 'arrayBuffers'].map((k) => `${k} ${(Number(st[`process.${k}`]) / 2 ** 20).toFixed(1)}`).join(', '),
        `gcRuns ${String(st['process.gcRuns'])} mallocTrims ${String(st['process.mallocTrims'])} (last ${Number(st['process.mallocTrimLastMs']).toFixed(1)} ms)`);
    }
  } finally {
    await c.close();
  }
}

await main();
