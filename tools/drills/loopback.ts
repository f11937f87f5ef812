// The loopback fault drills in sequence on one cluster of real daemons (127.0.0.1..N): kill -9
// of the last node, its restart, then SIGSTOP/SIGCONT of node 2. Used by `afcluster faults` and
// test/drills.
import { LocalCluster } from '../local-cluster.ts';
import { killDrill, restartDrill, stopDrill, type DrillResult, type DrillSettings } from './faults.ts';
import { driverSections, type DrillDriver } from './profiles.ts';

export interface LoopbackOptions {
  readonly driver: DrillDriver;
  readonly nodes: number;
  readonly basePort: number;
  readonly settings: DrillSettings;
}

/** Runs `body` on a fresh cluster of real daemons on loopback, stopped (and continued first) whatever happens. */
export async function withLoopbackCluster<T>(o: LoopbackOptions, body: (cluster: LocalCluster) => Promise<T>): Promise<T> {
  const cluster = new LocalCluster({ nodes: o.nodes, driver: o.driver, basePort: o.basePort, driverSections: driverSections(o.driver), prefix: 'afc-faults-' });
  const say = o.settings.progress ?? (() => undefined);
  try {
    say(`starting ${o.nodes} ${o.driver} daemons on 127.0.0.1..${o.nodes} port ${o.basePort}`);
    await cluster.start();
    say('ring formed');
    return await body(cluster);
  } catch (e) {
    for (const n of cluster.nodes) say(`node ${n.id} log:\n${cluster.logTail(n.id)}`);
    throw e;
  } finally {
    for (const n of cluster.nodes) n.proc?.kill('SIGCONT');
    await cluster.stop();
  }
}

export function runLoopbackDrills(o: LoopbackOptions): Promise<DrillResult[]> {
  const say = o.settings.progress ?? (() => undefined);
  return withLoopbackCluster(o, async (cluster) => {
    const results: DrillResult[] = [];
    for (const run of [() => killDrill(cluster, o.settings, o.nodes), () => restartDrill(cluster, o.settings, o.nodes), () => stopDrill(cluster, o.settings, 2)]) {
      const r = await run();
      results.push(r);
      if (r.verdict === 'fail') for (const n of cluster.nodes) say(`node ${n.id} log (last lines):\n${cluster.logTail(n.id)}`);
    }
    return results;
  });
}
