// Runs `afcluster sim`'s scenario (sim/scenario.ts) for cman over many seeds and prints,
// per EVS property, the seeds that break it: as the checker sees the raw logs, and as an EVS
// application would judge them (helpers.ts asViews). Also checks, on every seed, cman's own
// claim directly: exactly once and FIFO at every live node for every message sent after the last
// configuration change of any node (membership whole and stable to the end of the run), and for
// the whole run when it had no fault.
// Usage: npx tsx test/cman/survey.ts [--faults none|loss|all] [--seeds 1-200] [--nodes 3] [--swarm]
import { parseArgs } from 'node:util';
import { ALL_PROPERTIES, check, type Property } from '../../sim/checker.ts';
import { runSeed, type FaultMix } from '../../sim/scenario.ts';
import { cmanDriver } from '../../drivers/cman/index.ts';
import { asViews, exactlyOnceFifoProblems } from './helpers.ts';

const { values } = parseArgs({ options: { faults: { type: 'string', default: 'all' }, seeds: { type: 'string', default: '1-200' }, nodes: { type: 'string' }, swarm: { type: 'boolean', default: false } } });
const [lo, hi] = values.seeds!.split('-').map(Number);
const faults = values.faults as FaultMix;
const raw = new Map<Property, number[]>();
const views = new Map<Property, number[]>();
const add = (m: Map<Property, number[]>, p: Property, seed: number) => {
  const l = m.get(p) ?? [];
  if (!l.includes(seed)) l.push(seed);
  m.set(p, l);
};
const own: string[] = [];
let ownChecked = 0;
const started = Date.now();
for (let seed = lo; seed <= (hi ?? lo); seed++) {
  const r = runSeed({ driver: cmanDriver as never, seed, faults, swarm: values.swarm, nodes: values.nodes ? Number(values.nodes) : undefined, properties: ALL_PROPERTIES });
  for (const v of r.violations) add(raw, v.property, seed);
  const logs = r.sim.logs();
  for (const v of check(asViews(logs), { properties: ALL_PROPERTIES, liveFrom: r.liveFrom })) add(views, v.property, seed);
  let lastConf = 0;
  for (const l of logs) for (const e of l.events) if (e.type === 'conf' || e.type === 'crash' || e.type === 'restart') lastConf = Math.max(lastConf, e.t);
  const from = faults === 'none' ? 0 : lastConf;
  const problems = exactlyOnceFifoProblems(logs, from);
  if (problems.length) own.push(`seed ${seed}: ${problems.slice(0, 3).join('; ')}`);
  if (logs.some((l) => l.events.some((e) => e.type === 'send' && e.t > from))) ownChecked++;
}
const show = (title: string, m: Map<Property, number[]>) => {
  console.log(title);
  for (const p of [...ALL_PROPERTIES, 'invariants' as Property]) {
    const l = m.get(p) ?? [];
    console.log(`  ${p.padEnd(18)} ${String(l.length).padStart(4)} seeds${l.length ? ': ' + l.slice(0, 12).join(' ') + (l.length > 12 ? ' ...' : '') : ''}`);
  }
};
console.log(`cman, faults ${faults}${values.swarm ? ' (swarm: 2-12 nodes)' : ''}, seeds ${lo}-${hi ?? lo}, ${((Date.now() - started) / 1000).toFixed(1)} s`);
show('checker on the raw logs:', raw);
show('checker on the logs as views (configurations named by member set, requested order):', views);
console.log(`exactly once + FIFO at every node, ${faults === 'none' ? 'whole run' : 'after the last membership change'}: `
  + `${own.length} failing of ${ownChecked} seeds with such messages`);
for (const line of own.slice(0, 10)) console.log('  ' + line);
