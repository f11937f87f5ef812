// `afcluster faults`: the fault drills over real daemons (tools/drills/): kill -9, restart and
// SIGSTOP/SIGCONT on loopback, and with --netns a pulled cable, tbf shaping and netem loss/delay
// inside network namespaces. Prints a summary per drill; exit status 0 when every drill passed.
import { intFlag, parseFlags, UsageError, type Command } from './command.ts';
import { randomInt } from 'node:crypto';
import { pauseDrill, type DrillResult, type DrillSettings, type PauseOutcome } from './drills/faults.ts';
import { runLoopbackDrills, withLoopbackCluster } from './drills/loopback.ts';
import { Rng } from '../sim/rng.ts';
import { namespaceSupport } from './drills/netns.ts';
import { runNetnsDrills } from './drills/netns-drills.ts';
import { drillSettings, parseDriver, type DrillDriver } from './drills/profiles.ts';

const HELP = `usage: afcluster faults [--driver totem|cman] [--nodes N] [--procs P] [--clients K] [--port P]
                        [--netns] [--loss SPEC] [--delay SPEC] [--interval-ms MS] [--json]
                        [--pauses N [--seed X]]

Starts N daemons on 127.0.0.1..N and, on each node, P client processes with K sockets each, all
in one group; every socket sends a steady stream of numbered messages and logs every message and
membership event it receives. While they stream, one drill after another:
  kill-9       node N's daemon is killed with SIGKILL (its clients die with it);
  restart      node N's daemon is started again: it rejoins, and its new clients must see the
               existing members in their first view (the groups were learned);
  sigstop      node 2's daemon is stopped (SIGSTOP) until the others have formed a ring without
               it and moved on, then continued (SIGCONT): it must come back into their ring.
With --netns (root) the daemons then run in N network namespaces (10.213.7.1..N on a bridge in
a namespace of its own; nothing touches the host's network) for:
  netns-cable  node N's cable pulled (its bridge port down) until the others moved on, then back;
  netem-loss   tc netem loss on every node's link (default "loss 10%"), skipped if the kernel
               has no sch_netem, saying so;
  netem-delay  tc netem delay (default "delay 20ms 10ms"), same;
  tbf-shaping  a token bucket on every link: queueing delay and tail drops, no netem needed.
With --pauses N it runs the availability drill instead: N pauses (SIGSTOP, then SIGCONT) of 2.5
to 4 s, past the totem drill profile's token + consensus, spread over every node id in turn,
while the clients stream; per pause it prints how many views an unfaulted node's client went
through, whether unfaulted nodes were separated (one saw another's member leave), and how many
reading clients were evicted; the usual checker judges the whole run.
After each drill every client sends a fence, and once every survivor has every fence the
checker reads the logs. Printed per drill:
  survivors       clients alive at the end (their daemon was never killed)
  configurations  distinct configurations the survivors installed
  messages        distinct messages delivered (deliveries: counted at every survivor)
  missing         delivered at one survivor, not at another that was in the same configuration
                  and went on to the same next one (EVS failure atomicity; cman does not claim
                  it: counted, not judged)
  not everywhere  delivered at a survivor in a configuration listing another survivor that never
                  delivered it (a node cut off misses what was said meanwhile; not judged)
  order           survivor pairs whose common messages came in different orders (totem only)
  duplicates, fifo  deliveries twice, or out of their sender's order
  membership      every survivor ends in one regular configuration listing exactly the survivors
Exit status: 0 if every drill passed, 1 otherwise.

options:
  --driver NAME     totem (default) or cman
  --nodes N         daemons, 3..32 (default 3)
  --procs P         client processes per node (default 1)
  --clients K       sockets per client process (default 1)
  --port P          UDP port of the daemons (default 47901)
  --netns           also run the namespace drills (needs root, ip and a kernel that allows it)
  --loss SPEC       netem loss arguments (default "loss 10%")
  --delay SPEC      netem delay arguments (default "delay 20ms 10ms")
  --interval-ms MS  pause between one socket's sends (default 10)
  --json            print the results as JSON
  --pauses N        the availability drill: N pauses of 2.5-4 s over every node id
  --seed X          (with --pauses) the pause lengths' seed (default: random, printed)`;

function print(driver: DrillDriver, results: readonly DrillResult[], skipped: readonly { drill: string; reason: string }[]): void {
  console.log(`\nfault drills, driver ${driver}${driver === 'cman' ? ' (missing messages measured, not judged: cman does not claim failure atomicity)' : ''}`);
  console.log(`${'drill'.padEnd(13)} ${'verdict'.padEnd(8)} survivors configs messages deliveries missing not-everywhere order dup fifo membership`);
  for (const r of results) {
    const x = r.report;
    console.log(`${r.drill.padEnd(13)} ${r.verdict.padEnd(8)} ${String(x.survivors.length).padEnd(9)} ${String(x.configurations).padEnd(7)} `
      + `${String(x.messages).padEnd(8)} ${String(x.deliveries).padEnd(10)} ${String(x.missing.length).padEnd(7)} ${String(x.notEverywhere).padEnd(14)} `
      + `${String(x.orderViolations).padEnd(5)} ${String(x.duplicates).padEnd(3)} ${String(x.fifoViolations).padEnd(4)} ${x.membershipAgreed ? 'agreed' : 'DISAGREES'}`);
  }
  for (const r of results) {
    for (const f of r.facts) console.log(`  ${r.drill}: ${f}`);
    for (const p of [...r.problems, ...r.report.problems]) console.log(`  ${r.drill}: PROBLEM: ${p}`);
    for (const m of r.report.missing.slice(0, 3)) console.log(`  ${r.drill}: missing ${m.text} at ${m.missingAt} (delivered at ${m.deliveredAt} in ${m.configuration})`);
  }
  for (const s of skipped) console.log(`${s.drill.padEnd(13)} skipped: ${s.reason}`);
}

export const command: Command = {
  name: 'faults',
  summary: 'fault drills on real daemons (kill -9, SIGSTOP, restart; netns loss/delay): survivors agree, nothing missing',
  help: HELP,
  async run(argv) {
    const { values } = parseFlags(argv, {
      driver: { type: 'string' }, nodes: { type: 'string' }, procs: { type: 'string' }, clients: { type: 'string' }, port: { type: 'string' }, netns: { type: 'boolean' },
      loss: { type: 'string' }, delay: { type: 'string' }, 'interval-ms': { type: 'string' }, json: { type: 'boolean' },
      pauses: { type: 'string' }, seed: { type: 'string' },
    });
    const driver = parseDriver(values.driver ?? 'totem');
    const nodes = intFlag(values.nodes, 'nodes', 3, 3, 32);
    const port = intFlag(values.port, 'port', 47901, 1, 65535);
    const settings = drillSettings(driver, {
      processesPerNode: intFlag(values.procs, 'procs', 1, 1, 16),
      clientsPerNode: intFlag(values.clients, 'clients', 1, 1, 16), intervalMs: intFlag(values['interval-ms'], 'interval-ms', 10, 0, 10_000),
      progress: values.json ? undefined : (l) => console.log(l),
    });
    // Ctrl-C: exit through 'exit', whose handlers kill the daemons and delete the namespaces.
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
    if (values.netns) {
      const ns = namespaceSupport();
      if (!ns.ok) throw new UsageError(`--netns: ${ns.reason}`);
    }
    if (values.pauses !== undefined) return runPauses(values, driver, nodes, port, settings);
    const results = await runLoopbackDrills({ driver, nodes, basePort: port, settings });
    const skipped: { drill: string; reason: string }[] = [];
    if (values.netns) {
      const run = await runNetnsDrills({
        driver, nodes, port, settings, tag: String(process.pid % 100_000),
        loss: values.loss?.split(/\s+/), delay: values.delay?.split(/\s+/),
      });
      results.push(...run.results);
      skipped.push(...run.skipped);
    } else {
      skipped.push({ drill: 'netns', reason: 'namespace drills (cable, tbf, netem loss/delay) not asked for: add --netns (root)' });
    }
    if (values.json) console.log(JSON.stringify({ driver, results, skipped }, null, 2));
    else print(driver, results, skipped);
    return results.every((r) => r.verdict === 'pass') ? 0 : 1;
  },
};

/** The availability drill: `--pauses N` pauses over every node id in turn, lengths drawn from `--seed`. */
async function runPauses(values: { pauses?: string; seed?: string; json?: boolean }, driver: DrillDriver, nodes: number, port: number, settings: DrillSettings): Promise<number> {
  const count = intFlag(values.pauses, 'pauses', 1, 1, 1000);
  const seed = intFlag(values.seed, 'seed', randomInt(2 ** 31), 0, 2 ** 32 - 1);
  const rng = new Rng(seed);
  const pauses = Array.from({ length: count }, (_, i) => ({ victim: (i % nodes) + 1, ms: Math.round(rng.range(2500, 4000)) }));
  if (!values.json) console.log(`pause drill: ${count} pauses on ${nodes} ${driver} daemons, seed ${seed}`);
  const outcomes: PauseOutcome[] = [];
  const result = await withLoopbackCluster({ driver, nodes, basePort: port, settings }, (c) => pauseDrill(c, settings, pauses, outcomes));
  if (values.json) {
    console.log(JSON.stringify({ driver, seed, pauses: outcomes, result }, null, 2));
  } else {
    print(driver, [result], []);
    console.log('\npause  node  ms    views  unfaulted nodes   evictions');
    outcomes.forEach((o, i) => console.log(`${String(i + 1).padEnd(6)} ${String(o.victim).padEnd(5)} ${String(o.ms).padEnd(5)} ${String(o.configurations).padEnd(6)} ${(o.separated ? 'SEPARATED' : 'together').padEnd(17)} ${o.evictions}`));
    console.log(`\nseparations ${outcomes.filter((o) => o.separated).length}, evictions ${outcomes.reduce((a, o) => a + o.evictions, 0)}, virtual synchrony ${result.report.verdict}`);
  }
  return result.verdict === 'pass' ? 0 : 1;
}
