// Exploration runner (not a test): per-seed wall time and violations of the swarm.
// npx tsx test/totem/swarm-explore.ts FROM TO [swarm|loss] [KEY=VALUE...]
import { runSeed } from '../../sim/scenario.ts';
import { propertiesFor } from '../../sim/checker.ts';
import { totemDriver } from '../../drivers/totem/index.ts';
import type { DriverEntry } from '../../core/driver/types.ts';
const [from, to] = [Number(process.argv[2]), Number(process.argv[3])];
const mode = process.argv[4] ?? 'swarm';
const driverOptions: Record<string, unknown> = {};
for (const kv of process.argv.slice(5)) { const [k, v] = kv.split('='); driverOptions[k] = Number(v); }
let bad = 0;
const t00 = Date.now();
for (let seed = from; seed <= to; seed++) {
  const t0 = Date.now();
  const r = runSeed({ driver: totemDriver as DriverEntry<unknown>, seed, swarm: mode === 'swarm', faults: mode === 'loss' ? 'loss' : undefined,
    properties: propertiesFor(totemDriver.guarantees), driverOptions });
  const ms = Date.now() - t0;
  if (r.violations.length || ms > 2000) {
    console.log(`seed ${seed} nodes ${r.nodes} faults ${r.faults} v=${r.violations.length} events=${r.stats.events} ms=${ms} conv=${r.convergedAt !== null}`);
    for (const v of r.violations.slice(0, 3)) console.log('  ', v.property, v.message.slice(0, 300), v.events.slice(0, 3));
  }
  if (r.violations.length) bad++;
}
console.log(`${to - from + 1} seeds, ${bad} bad, ${Date.now() - t00} ms`);
