// Network namespaces for the fault drills: N node namespaces, each with one veth ("eth0",
// 10.213.7.K/24) to a bridge that lives in a namespace of its own, so nothing is added to the
// host's own network (no address, no route, no link) and no packet can leave for a real outside
// address: the 10.213.7.0/24 addresses exist only inside these namespaces. Faults: `tc netem`
// loss/delay on a node's eth0, the link set down, or a partition (some nodes' bridge ports moved
// to a second bridge, br1, that the others are not on). Every namespace made is deleted again,
// on success, failure, or exit of the process.
import { execFileSync } from 'node:child_process';

export const SUBNET = '10.213.7';
export const IFACE = 'eth0';

export interface Topology {
  /** Namespace of node K is names[K - 1]. */
  readonly names: readonly string[];
  readonly bridge: string;
}

const live = new Set<Topology>();
process.once('exit', () => { for (const t of live) destroyTopology(t); });

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tc(ns: string, args: string[]): void {
  execFileSync('ip', ['netns', 'exec', ns, 'tc', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function why(e: unknown): string {
  const err = e as { stderr?: Buffer | string; message?: string; code?: string };
  const text = err.stderr ? String(err.stderr).trim() : '';
  return text || err.code || err.message || String(e);
}

export type Support = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Can this process make namespaces and veth pairs here? (root, `ip`, a kernel that lets it) */
export function namespaceSupport(): Support {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces are Linux only (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespaces need root (run as root, e.g. sudo)' };
  const probe = `afcprobe${process.pid}`;
  try {
    ip(['netns', 'add', probe]);
  } catch (e) {
    return { ok: false, reason: `cannot create a network namespace (ip netns add: ${why(e)})` };
  }
  try {
    ip(['-n', probe, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1']);
    ip(['-n', probe, 'link', 'add', 'br0', 'type', 'bridge']);
    execFileSync('ip', ['netns', 'exec', probe, process.execPath, '-e', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: `cannot create veth pairs or a bridge in a namespace, or run a process in it (${why(e)})` };
  } finally {
    try { ip(['netns', 'del', probe]); } catch { /* already gone */ }
  }
}

/** Can this kernel's tc add a netem qdisc (module sch_netem)? */
export function netemSupport(): Support {
  const ns = namespaceSupport();
  if (!ns.ok) return ns;
  const probe = `afcprobe${process.pid}`;
  try {
    ip(['netns', 'add', probe]);
    ip(['-n', probe, 'link', 'set', 'lo', 'up']);
    tc(probe, ['qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']);
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: `tc cannot add a netem qdisc: "${why(e)}" (the kernel lacks sch_netem, or it cannot be loaded here)` };
  } finally {
    try { ip(['netns', 'del', probe]); } catch { /* already gone */ }
  }
}

export function nodeAddress(k: number): string {
  return `${SUBNET}.${k}`;
}

/** N node namespaces on one bridge. `tag` keeps concurrent topologies apart (e.g. a pid); `mtu`
 *  sets the links' MTU (absent: the kernel's 1500). */
export function createTopology(n: number, tag: string, mtu?: number): Topology {
  const t: Topology = { names: Array.from({ length: n }, (_, i) => `afc${tag}n${i + 1}`), bridge: `afc${tag}br` };
  live.add(t);
  try {
    ip(['netns', 'add', t.bridge]);
    for (const br of ['br0', 'br1']) {
      ip(['-n', t.bridge, 'link', 'add', br, 'type', 'bridge']);
      ip(['-n', t.bridge, 'link', 'set', br, 'up']);
    }
    t.names.forEach((ns, i) => addNode(t, ns, i + 1, mtu));
    return t;
  } catch (e) {
    destroyTopology(t);
    throw new Error(`could not build the namespace topology: ${why(e)}`, { cause: e });
  }
}

function addNode(t: Topology, ns: string, k: number, mtu: number | undefined): void {
  ip(['netns', 'add', ns]);
  ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  // Made inside the node's namespace, the bridge end then moved: never in the host's namespace.
  ip(['-n', ns, 'link', 'add', IFACE, 'type', 'veth', 'peer', 'name', `v${k}`]);
  ip(['-n', ns, 'link', 'set', `v${k}`, 'netns', t.bridge]);
  if (mtu !== undefined) {
    ip(['-n', ns, 'link', 'set', IFACE, 'mtu', String(mtu)]);
    ip(['-n', t.bridge, 'link', 'set', `v${k}`, 'mtu', String(mtu)]);
  }
  ip(['-n', t.bridge, 'link', 'set', `v${k}`, 'master', 'br0']);
  ip(['-n', t.bridge, 'link', 'set', `v${k}`, 'up']);
  ip(['-n', ns, 'addr', 'add', `${nodeAddress(k)}/24`, 'dev', IFACE]);
  ip(['-n', ns, 'link', 'set', IFACE, 'up']);
}

/** Deletes every namespace of the topology (their links go with them). Never throws. */
export function destroyTopology(t: Topology): void {
  for (const ns of [...t.names, t.bridge]) {
    try { ip(['netns', 'del', ns]); } catch { /* never made, or already gone */ }
  }
  live.delete(t);
}

/** A root qdisc on node K's eth0 (e.g. ['netem', 'loss', '10%'], ['tbf', 'rate', '256kbit', ...]);
 *  undefined removes it. */
export function setQdisc(t: Topology, k: number, spec: readonly string[] | undefined): void {
  const ns = t.names[k - 1];
  if (spec) tc(ns, ['qdisc', 'replace', 'dev', IFACE, 'root', ...spec]);
  else tc(ns, ['qdisc', 'del', 'dev', IFACE, 'root']);
}

/** Packets sent and dropped by node K's root qdisc so far (tc -s). */
export function qdiscCounters(t: Topology, k: number): { sent: number; dropped: number } {
  const out = execFileSync('ip', ['netns', 'exec', t.names[k - 1], 'tc', '-s', 'qdisc', 'show', 'dev', IFACE], { encoding: 'utf8' });
  const m = /Sent \d+ bytes (\d+) pkt \(dropped (\d+)/.exec(out);
  return m ? { sent: Number(m[1]), dropped: Number(m[2]) } : { sent: 0, dropped: 0 };
}

/** Node K's cable, plugged or pulled: its bridge port up or down (the node's own eth0 stays
 *  up and keeps its address, so the daemon sees packets vanish, not a send error). */
export function setLink(t: Topology, k: number, up: boolean): void {
  ip(['-n', t.bridge, 'link', 'set', `v${k}`, up ? 'up' : 'down']);
}

/** A partition: the nodes in `cut` can reach each other and no one else (their ports move to
 *  br1); an empty `cut` heals it (every port back on br0). */
export function setPartition(t: Topology, cut: readonly number[]): void {
  t.names.forEach((_, i) => ip(['-n', t.bridge, 'link', 'set', `v${i + 1}`, 'master', cut.includes(i + 1) ? 'br1' : 'br0']));
}
