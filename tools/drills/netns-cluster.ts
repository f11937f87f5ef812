// A cluster of real daemons, one per network namespace (tools/drills/netns.ts): the integration
// harness's TestCluster, with the node addresses moved from 127.0.0.K to 10.213.7.K (which exist
// only inside the namespaces) and each daemon started under `ip netns exec` (which execs it, so
// the child's pid is the daemon's and signals reach it). Clients stay in the host's namespace:
// the daemons' unix sockets are files, reachable from any network namespace.
import { spawn } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TestCluster, track, type ClusterOptions } from '../../test/integration/cluster.ts';
import { SUBNET, type Topology } from './netns.ts';

const ENTRY = join(resolve(import.meta.dirname, '../..'), 'tools/afcluster.mjs');

export class NetnsCluster extends TestCluster {
  constructor(opts: ClusterOptions, readonly topology: Topology) {
    super(opts);
    for (const n of this.nodes) {
      const text = readFileSync(n.config, 'utf8');
      const moved = text.replace(/"127\.0\.0\.(\d+):/g, `"${SUBNET}.$1:`);
      if (moved === text) throw new Error(`no loopback node address to move in ${n.config}`);
      writeFileSync(n.config, moved);
    }
  }

  override startNode(id: number): void {
    const n = this.node(id);
    const fd = openSync(n.log, 'a');
    const ns = this.topology.names[id - 1];
    n.proc = track(spawn('ip', ['netns', 'exec', ns, process.execPath, ENTRY, 'daemon', '--config', n.config, '--log-level', 'info'], {
      stdio: ['ignore', fd, fd],
    }));
  }
}
