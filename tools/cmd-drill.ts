// `afcluster drill`: the consistency drill of the lock service on a local cluster of real
// daemons. Under totem (agreed order) it must find nothing; under cman it reports what it finds.
import { randomInt } from 'node:crypto';
import { builtinRegistry } from '../drivers/builtin.ts';
import { intFlag, parseFlags, UsageError, type Command } from './command.ts';
import { runDrill, type DrillOutcome } from './drill/run.ts';
import { runPartitionDrill, type PartitionReport } from './drill/partition.ts';
import { freePort } from './local-cluster.ts';

function printPartitions(r: PartitionReport): void {
  console.log(`\npartition drill: ${r.nodes} nodes, quorum ${r.quorum ? 'on' : 'OFF'}, seed ${r.seed}`);
  console.log('episode  cut        holder  asker  holder exit  granted after (ms)  two holders (ms)');
  for (const e of r.episodes) {
    console.log(`${String(e.index).padEnd(8)} ${e.cut.join(',').padEnd(10)} ${String(e.holderNode).padEnd(7)} ${String(e.askerNode).padEnd(6)} ${String(e.holderExit).padEnd(12)} ${(e.grantedAfterMs?.toFixed(0) ?? 'never').padEnd(19)} ${e.overlapMs.toFixed(0)}`);
  }
  console.log(`\ndouble holders       ${r.doubleHolders} of ${r.episodes.length} episodes (judged from the commands' own start and stop times)`);
  console.log(`slowest grant        ${r.slowestGrantMs.toFixed(0)} ms after the split (bound ${r.grantBoundMs} ms: failure detection + fencing delay + 2 s)`);
}

function print(out: DrillOutcome): void {
  const r = out.report;
  console.log(`\ndriver ${out.driver}, order ${out.order}, seed ${out.seed}`);
  console.log('worker    node  ops     grants  tryfails  entries index  error');
  for (const w of out.workers) {
    console.log(`${w.observer.padEnd(9)} ${String(w.nodeId).padEnd(5)} ${String(w.result.ops).padEnd(7)} ${String(w.result.grants).padEnd(7)} ${String(w.result.tryfails).padEnd(9)} ${String(w.table.entries ?? '').padEnd(7)} ${String(w.table.index ?? '').padEnd(6)} ${w.error ?? ''}${w.truncated ? ' (record truncated)' : ''}`);
  }
  console.log(`\ndecisions recorded   ${r.decisions} (${r.grants} grants) by ${r.observers} observers; ${r.ownHolds} holds timed`);
  console.log(`double grants        ${r.doubleGrants}  (in one node's view ${r.doubleGrantsInView}, overlapping in time ${r.doubleGrantsInTime})`);
  console.log(`disagreements        ${r.disagreements} of ${r.pairsCompared} observer pairs`);
  for (const e of r.examples) console.log(`  ${e}`);
  if (out.crashed.length > 0) console.log(`killed halfway (-9)  ${out.crashed.join(', ')}`);
  for (const f of out.daemonFailures) console.log(`daemon failure: ${f}`);
}

export const command: Command = {
  name: 'drill',
  summary: 'race lock-service workers on a local cluster; count double grants and disagreements',
  help: `usage: afcluster drill [--driver totem|cman] [--nodes N] [--workers K] [--seconds S] [--locks L]
                       [--late J] [--crash C] [--seed X] [--port P] [--keep] [--json]

Starts N daemons on 127.0.0.1..N (like "afcluster up"), then K worker processes spread over the
nodes, each a member of the lock service (services/lock/lock.ts). For S seconds they race for L locks
(lock, trylock, shared and exclusive, held for 0-2 ms). Every worker records, in delivery
order, every grant and release its table decided and when it held a lock itself. The checker
then counts
  double grants   two holders of one exclusive lock at once: in one node's view, or in time
                  (two workers each holding it by their own node's table);
  disagreements   observer pairs whose tables took different decisions on a lock.
With totem (agreed order) both must be 0. With cman (FIFO only, requests sent fifo) nodes
apply requests in different orders: the drill reports what it measured.
Exit status: 0 if both counts are 0, 1 otherwise.

With --partitions E it runs the partition drill instead (root, network namespaces): N totem
daemons, one per namespace; in each of E episodes a command holds a lock on a node that is then
cut off with a minority (1 vs 2, 2 vs 3, ...; node 1 among them every other episode) while a node
of the majority asks for the lock; then the split heals. Two holders at once are judged from the
commands' own start and stop times. Exit status 0 when no episode had two holders (with
--no-quorum the drill is expected to find them: quorum is what prevents them).

options:
  --driver NAME     totem (default) or cman
  --nodes N         nodes, 1..254 (default 3)
  --workers K       worker processes in all, spread over the nodes (default 6)
  --seconds S       how long they race (default 10)
  --locks L         how many lock names (default 3)
  --late J          J more workers join halfway (they get the table by snapshot, under load)
  --crash C         C workers are killed with -9 halfway (the others release their locks)
  --seed X          the workers' random choices (default: random, printed)
  --port P          UDP port of the daemons (default: a free one)
  --keep            keep the cluster's directory (configs, logs)
  --json            print the outcome as JSON
  --partitions E    the partition drill, E episodes (with --nodes 3..9, default 5; --seed, --port)
  --no-quorum       (partition drill) quorum off in every node's config, to show what it prevents`,
  async run(argv) {
    const { values } = parseFlags(argv, {
      driver: { type: 'string' }, nodes: { type: 'string' }, workers: { type: 'string' }, seconds: { type: 'string' },
      locks: { type: 'string' }, late: { type: 'string' }, crash: { type: 'string' }, seed: { type: 'string' }, port: { type: 'string' }, keep: { type: 'boolean' }, json: { type: 'boolean' },
      partitions: { type: 'string' }, 'no-quorum': { type: 'boolean' },
    });
    if (values.partitions !== undefined) {
      if (values.driver !== undefined && values.driver !== 'totem') throw new UsageError('--partitions runs the totem driver only');
      const nodes = intFlag(values.nodes, 'nodes', 5, 3, 9);
      const report = await runPartitionDrill({
        nodes, episodes: intFlag(values.partitions, 'partitions', 1, 1, 10_000), quorum: values['no-quorum'] !== true,
        seed: intFlag(values.seed, 'seed', randomInt(2 ** 31), 0, 2 ** 32 - 1),
        port: values.port === undefined ? await freePort(1) : intFlag(values.port, 'port', 0, 1, 65535),
        tag: String(process.pid % 100_000), log: values.json ? undefined : (l) => console.log(l),
      });
      if (values.json) console.log(JSON.stringify(report, null, 2));
      else printPartitions(report);
      return report.doubleHolders === 0 ? 0 : 1;
    }
    const driver = values.driver ?? 'totem';
    const registry = builtinRegistry();
    if (!registry.has(driver)) throw new UsageError(`--driver ${driver}: registered drivers are ${registry.names().join(', ')}`);
    const out = await runDrill({
      driver,
      nodes: intFlag(values.nodes, 'nodes', 3, 1, 254),
      workers: intFlag(values.workers, 'workers', 6, 1, 200),
      seconds: intFlag(values.seconds, 'seconds', 10, 1, 3600),
      locks: intFlag(values.locks, 'locks', 3, 1, 100),
      late: intFlag(values.late, 'late', 0, 0, 200),
      crash: intFlag(values.crash, 'crash', 0, 0, 200),
      seed: intFlag(values.seed, 'seed', randomInt(2 ** 31), 0, 2 ** 32 - 1),
      port: values.port === undefined ? undefined : intFlag(values.port, 'port', 0, 1, 65535),
      keep: values.keep,
      log: values.json ? undefined : (l) => console.log(l),
    });
    if (values.json) console.log(JSON.stringify(out, null, 2));
    else print(out);
    return out.report.doubleGrants === 0 && out.report.disagreements === 0 ? 0 : 1;
  },
};
