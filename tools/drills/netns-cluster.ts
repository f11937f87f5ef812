// A cluster of real daemons, one per network namespace (tools/drills/netns.ts): a LocalCluster
// (tools/local-cluster.ts) with the node addresses moved from 127.0.0.K to 10.213.7.K (which exist
// only inside the namespaces) and each daemon started under `ip netns exec` (which execs it, so
// the child's pid is the daemon's and signals reach it). Clients stay in the host's namespace:
// the daemons' unix sockets are files, reachable from any network namespace.
import { readFileSync, writeFileSync } from 'node:fs';
import { LocalCluster, type ClusterOptions, type LocalNode } from '../local-cluster.ts';
import { SUBNET, type Topology } from './netns.ts';

export class NetnsCluster extends LocalCluster {
  constructor(opts: ClusterOptions, readonly topology: Topology) {
    super({ prefix: 'afc-netns-', ...opts });
    for (const n of this.nodes) {
      const text = readFileSync(n.config, 'utf8');
      const moved = text.replace(/"127\.0\.0\.(\d+):/g, `"${SUBNET}.$1:`);
      if (moved === text) throw new Error(`no loopback node address to move in ${n.config}`);
      writeFileSync(n.config, moved);
    }
  }

  protected override daemonCommand(n: LocalNode): { readonly file: string; readonly args: string[] } {
    const { file, args } = super.daemonCommand(n);
    return { file: 'ip', args: ['netns', 'exec', this.topology.names[n.id - 1], file, ...args] };
  }
}
