// Exploration runner (not a test): npx tsx test/totem/explore.ts NODES LOSS SEEDS
import { makeSim, formed, violations } from './harness.ts';
const [n, loss, seeds] = [Number(process.argv[2] ?? 3), Number(process.argv[3] ?? 0.1), Number(process.argv[4] ?? 5)];
const ids = Array.from({ length: n }, (_, i) => i + 1);
for (let seed = 1; seed <= seeds; seed++) {
  const t0 = Date.now();
  const sim = makeSim({ seed, nodes: n, network: { loss, duplicate: 0.05, jitterMs: 0.3 } });
  sim.start();
  const ok1 = sim.runUntil(() => formed(sim, ids), 20000);
  sim.workload({ ratePerSec: 200 });
  sim.runFor(2000);
  sim.workload(null);
  sim.setNetwork({ loss: 0, duplicate: 0 });
  const t1 = sim.now;
  sim.runFor(3000);
  const ok2 = formed(sim, ids);
  const v = violations(sim, t1);
  console.log(`seed ${seed} formed=${ok1} formedEnd=${ok2} v=${v.length} events=${sim.stats().events} sends=${sim.stats().sends} ms=${Date.now() - t0}`);
  for (const x of v.slice(0, 5)) console.log(' ', x.property, x.message, x.events.slice(0, 4));
  if (sim.failure) console.log(sim.failure);
  if (!ok2) console.log(sim.hosts().map((h) => JSON.stringify(h.driver?.stats())).join('\n'));
}
