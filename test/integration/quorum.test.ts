// Proves quorum on real daemons: `afcluster quorum` exits 0 and lists every node while the
// cluster is whole; when two of three nodes stop, the survivor's listener is told in the
// membership event that shows them leave (not quorate), `quorum` exits 1 and `status` names the
// absent nodes; when they come back the cluster is quorate again.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSocket } from '../../sockapi/client.ts';
import type { SocketEvent } from '../../core/api/types.ts';
import { driverSections } from '../../tools/drills/profiles.ts';
import { TestCluster } from './cluster.ts';
import { until } from './bridge-helpers.ts';

const ENTRY = join(import.meta.dirname, '../../tools/afcluster.mjs');

describe('quorum on real daemons (totem, 127.0.0.1..3)', () => {
  let cluster: TestCluster;
  const cli = (...args: string[]) => spawnSync(process.execPath, [ENTRY, ...args], { encoding: 'utf8', timeout: 30_000 });

  beforeAll(async () => {
    cluster = await TestCluster.create({ nodes: 3, driver: 'totem', crypto: false, driverSections: driverSections('totem') });
    await cluster.start();
    await cluster.waitRing([1, 2, 3]);
  }, 90_000);
  afterAll(() => cluster?.stop());

  it('says quorate with every node, not quorate with one of three, and quorate again', async () => {
    const whole = cli('quorum', '--socket', cluster.node(1).socket, '--json');
    expect(whole.status, whole.stderr).toBe(0);
    expect(JSON.parse(whole.stdout)).toMatchObject({
      quorate: true, votes: 3, expected: 3, quorum: 2, node: 1,
      nodes: [{ nodeId: 1, votes: 1, present: true }, { nodeId: 2, votes: 1, present: true }, { nodeId: 3, votes: 1, present: true }],
    });
    expect(cli('quorum', '--socket', cluster.node(1).socket).stdout).toMatch(/quorate: +yes/);

    const sock = await ClusterSocket.open({ path: cluster.node(1).socket });
    const events: SocketEvent[] = [];
    try {
      await sock.bind('q');
      const reader = (async () => { for await (const ev of sock) events.push(ev); })();
      await until('own join seen', () => events.some((e) => e.type === 'membership'));
      expect(events[0]).toMatchObject({ type: 'membership', quorum: { quorate: true, votes: 3 } });
      await cluster.kill(2, 'SIGKILL');
      await cluster.kill(3, 'SIGKILL');
      await until('the listener is told quorum is lost', () => events.some((e) => (e.type === 'quorum' || e.type === 'membership') && e.quorum?.quorate === false), 30_000);
      const lost = cli('quorum', '--socket', cluster.node(1).socket);
      expect(lost.status, lost.stderr).toBe(1);
      expect(lost.stdout).toMatch(/quorate: +NO/);
      expect(cli('status', '--socket', cluster.node(1).socket).stdout).toMatch(/quorum: NOT QUORATE, 1 of 3 expected votes \(quorum 2\).*absent: 2, 3/);

      cluster.startNode(2);
      await until('quorate again with node 2 back', () => cli('quorum', '--socket', cluster.node(1).socket).status === 0, 60_000);
      await until('the listener is told', () => events.some((e) => e.type !== 'message' && e.type !== 'error' && e.quorum?.quorate === true && events.indexOf(e) > 0), 30_000);
      void reader;
    } finally {
      await sock.close();
    }
    expect(cli('quorum', '--socket', join(cluster.dir, 'no-such.sock')).status).toBe(3);
  }, 150_000);
});
