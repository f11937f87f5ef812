// The fault drills inside network namespaces (tools/drills/netns.ts): a pulled cable (a node's
// bridge port down until the others have moved on without it, then up), and, where the kernel
// has sch_netem, loss and delay on every node's link while the clients stream. Namespaces and
// links are deleted whatever happens.
import { drill, type DrillCluster, type DrillResult, type DrillSettings } from './faults.ts';
import { createTopology, destroyTopology, netemSupport, qdiscCounters, setLink, setQdisc, type Topology } from './netns.ts';
import { NetnsCluster } from './netns-cluster.ts';
import { driverSections, type DrillDriver } from './profiles.ts';

export interface NetnsOptions {
  readonly driver: DrillDriver;
  readonly nodes: number;
  readonly port: number;
  readonly settings: DrillSettings;
  /** Keeps concurrent runs' namespace names apart. */
  readonly tag: string;
  /** netem faults: loss and delay specs, as tc takes them after "netem". */
  readonly loss?: readonly string[];
  readonly delay?: readonly string[];
  /** Also run the tbf shaping drill (works without netem). Default true. */
  readonly shaping?: boolean;
}

export interface NetnsRun {
  readonly results: DrillResult[];
  /** Drills not run, and why. */
  readonly skipped: { readonly drill: string; readonly reason: string }[];
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

export function cableDrill(cluster: DrillCluster, t: Topology, s: DrillSettings, victim: number): Promise<DrillResult> {
  return drill('netns-cable', cluster, s, async (p) => {
    const all = range(t.names.length);
    await p.startClients(all);
    await p.flowing(s.messagesBefore);
    p.say(`cable of node ${victim} pulled`);
    setLink(t, victim, false);
    try {
      await p.ring(all.filter((k) => k !== victim));
      await p.flowing(s.messagesBefore, p.survivors().filter((c) => c.nodeId !== victim));
    } finally {
      p.say(`cable of node ${victim} plugged back`);
      setLink(t, victim, true);
    }
    await p.ring(all);
  });
}

/** A qdisc (netem loss or delay, or tbf shaping) on every node's link while the clients stream. */
export function qdiscDrill(name: string, cluster: DrillCluster, t: Topology, s: DrillSettings, spec: readonly string[]): Promise<DrillResult> {
  return drill(name, cluster, s, async (p) => {
    const all = range(t.names.length);
    await p.startClients(all);
    await p.flowing(s.messagesBefore);
    p.say(`tc qdisc ${spec.join(' ')} on every node`);
    for (const k of all) setQdisc(t, k, spec);
    try {
      // What is judged is agreement and nothing missing across the shaped period; how fast a
      // 128 kbit link that drops most packets carries 20 messages per client is not.
      await p.flowing(s.messagesAfter);
    } finally {
      const counts = all.map((k) => qdiscCounters(t, k));
      p.facts.push(`${spec.join(' ')}: ${counts.reduce((a, c) => a + c.sent, 0)} packets sent, ${counts.reduce((a, c) => a + c.dropped, 0)} dropped by the qdiscs`);
      p.say(`qdisc removed (${p.facts.at(-1)})`);
      for (const k of all) setQdisc(t, k, undefined);
    }
    await p.ring(all);
  });
}

/** Token-bucket shaping: queueing delay and tail drops under load, with no netem needed. */
export const TBF = ['tbf', 'rate', '128kbit', 'burst', '1500', 'latency', '10ms'] as const;

export async function runNetnsDrills(o: NetnsOptions): Promise<NetnsRun> {
  const say = o.settings.progress ?? (() => undefined);
  const netem = netemSupport();
  const t = createTopology(o.nodes, o.tag);
  const cluster = new NetnsCluster({ nodes: o.nodes, driver: o.driver, basePort: o.port, driverSections: driverSections(o.driver) }, t);
  const run: NetnsRun = { results: [], skipped: [] };
  try {
    say(`starting ${o.nodes} ${o.driver} daemons in namespaces ${t.names.join(', ')} (10.213.7.1..${o.nodes})`);
    await cluster.start();
    say('ring formed');
    run.results.push(await cableDrill(cluster, t, o.settings, o.nodes));
    for (const [name, spec] of [['netem-loss', o.loss ?? ['loss', '10%']], ['netem-delay', o.delay ?? ['delay', '20ms', '10ms']]] as const) {
      if (!netem.ok) { run.skipped.push({ drill: name, reason: netem.reason }); say(`[${name}] skipped: ${netem.reason}`); continue; }
      run.results.push(await qdiscDrill(name, cluster, t, o.settings, ['netem', ...spec]));
    }
    if (o.shaping ?? true) run.results.push(await qdiscDrill('tbf-shaping', cluster, t, o.settings, TBF));
    return run;
  } catch (e) {
    for (const n of cluster.nodes) say(`node ${n.id} log:\n${cluster.logTail(n.id)}`);
    throw e;
  } finally {
    await cluster.stop();
    destroyTopology(t);
  }
}
