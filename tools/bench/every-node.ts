// The bench's every-node rows on one cluster, apart from its tables: every node's client sends as
// fast as its daemon accepts, for each size in turn on the same daemons (a size may repeat: the
// first rows after a start run on code V8 has not optimised yet), with the driver's counters that
// changed on node 1, and optionally V8 flags for the daemons, for A/B runs of flags in turns.
// Run: npx tsx tools/bench/every-node.ts [--sizes 1300,100,1301,101] [--seconds 2] [--crypto off|on]
//      [--senders all|one[,...]] (a list: row i sends as its i-th entry, the list repeated) [--set section.key=value] [--stats REGEX (node 1's counters to print)]
//      [--daemon-flags "--trace-gc --max-semi-space-size=2"] (after the daemons' own V8 flags)
//      [--keep] (keep the daemons' configs and logs: --trace-gc writes to them)
//      [--client ts|c] (the clients' library: the TypeScript one, or the C one as `afcluster bench --client c`)
//      [--profile DIR] (a .cpuprofile of every daemon and TypeScript client; each one's busiest functions printed at the end)
//      [--mtu N] (cluster.mtu of every daemon; default the config's, loopback's 65535)
//      [--rss] (each daemon's peak RSS, VmHWM, so far, in MiB: printed after each row)
//      [--each] (each process's CPU per message delivered: every daemon and client, over the whole row, its warm-up and drain included)
// docs/BENCH.md ("Full collections under every node's load") has what it measured.
import { intFlag } from '../command.ts';
import type { ClientKind } from './cluster-clients.ts';
import { BenchCluster } from './cluster.ts';
import { measureThroughput } from './driver-bench.ts';
import { parseClient, parseSeconds, parseSets } from './options.ts';
import { formatProfileSummary } from './profile.ts';
import { profileOf } from './run.ts';
import { join } from 'node:path';
import type { Senders } from './results.ts';

interface Args {
  sizes: number[]; seconds: number; crypto: boolean; senders: Senders[]; stats: RegExp;
  daemonFlags: string[]; sections: Record<string, Record<string, number | boolean | string>>; keep: boolean;
  client: ClientKind; profile?: string; each: boolean; mtu?: number; rss: boolean;
}

function parse(argv: string[]): Args {
  const a: Args = {
    sizes: [1300, 100, 1301, 101], seconds: 2, crypto: false, senders: ['all'], daemonFlags: [], sections: {}, keep: false, client: 'ts', each: false, rss: false,
    stats: /sendsRefused|writableSent|driver\.tokens$|gcRuns|gcMinorRuns/,
  };
  const sets: string[] = [];
  for (let i = 0; i < argv.length; i += 2) {
    const v = argv[i + 1] ?? '';
    switch (argv[i]) {
      case '--sizes': a.sizes = v.split(',').map(Number); break;
      case '--seconds': a.seconds = parseSeconds(v); break;
      case '--crypto':
        if (v !== 'on' && v !== 'off') throw new Error(`--crypto ${v}: expected on or off`);
        a.crypto = v === 'on';
        break;
      case '--senders':
        a.senders = v.split(',').map((x) => {
          if (x !== 'all' && x !== 'one') throw new Error(`--senders ${v}: expected all or one, or a list of them`);
          return x;
        });
        break;
      case '--stats': a.stats = new RegExp(v); break;
      case '--daemon-flags': a.daemonFlags = v.split(' ').filter(Boolean); break;
      case '--keep': a.keep = true; i--; break;
      case '--each': a.each = true; i--; break;
      case '--rss': a.rss = true; i--; break;
      case '--client': a.client = parseClient(v); break;
      case '--set': sets.push(v); break;
      case '--profile': a.profile = v; break;
      case '--mtu': a.mtu = intFlag(v, 'mtu', 1500, 576, 65535); break; // the bounds afcluster bench --mtu takes
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  if (a.sizes.some((s) => !Number.isInteger(s) || s < 1)) throw new Error('--sizes: expected positive integers');
  return { ...a, sections: parseSets(sets) };
}

let a: Args;
try {
  a = parse(process.argv.slice(2));
} catch (e) {
  console.error(`every-node: ${(e as Error).message} (options: the comment at the top of tools/bench/every-node.ts)`);
  process.exit(2);
}
const c = await BenchCluster.start({ nodes: 3, driver: 'totem', crypto: a.crypto, daemonFlags: a.daemonFlags, driverSections: a.sections, keep: a.keep, client: a.client, order: 'agreed', profileDir: a.profile, mtu: a.mtu });
if (a.keep) console.log(`daemons' configs and logs in ${c.dir}`);
try {
  for (const [i, size] of a.sizes.entries()) {
    const senders = a.senders[i % a.senders.length];
    const before = (await c.stats())[0] ?? {};
    const cpuBefore = c.cpuEach();
    const { row, errors } = await measureThroughput(c, { driver: 'totem', crypto: a.crypto ? 'on' : 'off', accelerated: 'off', order: 'agreed' }, size, a.seconds, senders);
    const after = (await c.stats())[0] ?? {};
    const changed = Object.entries(after)
      .filter(([k, v]) => a.stats.test(k) && typeof v === 'number')
      .map(([k, v]) => `${k.replace(/^.*\./, '')}=${(v as number) - (typeof before[k] === 'number' ? before[k] as number : 0)}`);
    const cpu = row.cpuUsPerMessage;
    console.log(`${size} B${a.senders.length > 1 ? ` (${senders === 'one' ? 'one sender' : 'every node'})` : ''}: ${Math.round(row.tpPerSec)} msg/s, cpu us/msg daemons+clients ${cpu ? `${cpu.daemons.toFixed(1)}+${cpu.clients.toFixed(1)}` : '-'} | node 1: ${changed.join(' ')}`);
    if (a.each) {
      const messages = row.tpPerSec * row.seconds;
      const us = c.cpuEach().map((t, i) => ((t - cpuBefore[i]) * 1e6) / messages);
      const who = us.map((u, i) => `${i < c.size ? `d${i + 1}` : `c${i - c.size + 1}`} ${u.toFixed(2)}`);
      console.log(`  cpu us/msg each (whole row): ${who.join('  ')}`);
    }
    if (a.rss) console.log(`  daemons' peak RSS so far (MiB): ${c.peakRss().map((b) => (b / 2 ** 20).toFixed(1)).join(' ')}`);
    for (const e of errors) console.log(`  error: ${e}`);
  }
} finally {
  await c.close();
}
if (a.profile) {
  // Written as each process exits (close() above waited for them).
  for (const who of ['node1', 'node2', 'node3', ...(a.client === 'ts' ? ['client1', 'client2', 'client3'] : [])]) {
    const { file, summary } = profileOf(join(a.profile, who), who);
    console.log(`\n== ${who}: ${file || 'no profile'}`);
    if (summary) console.log(formatProfileSummary(summary, 12).split('\n\n').slice(-1)[0]);
  }
}
