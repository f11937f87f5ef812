// Proves a process in another language can use the cluster from docs/PROTOCOL.md alone: examples/python-client.py (the package in clients/python, standard library only, protocol version 3) binds, sends and receives (a 200 KB message in parts too) through a real daemon, sees view ids and quorum, and a TypeScript client on another node sees its messages; and the version-2 client of the previous release (a fixture, unchanged) still works against this daemon.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSocket } from '../../sockapi/client.ts';
import type { SocketEvent } from '../../core/api/types.ts';
import { testPort } from './bridge-helpers.ts';
import { TestCluster } from './cluster.ts';

const SCRIPT = join(import.meta.dirname, '../../examples/python-client.py');
/** The client as the previous release shipped it (protocol version 2): it must keep working. */
const SCRIPT_V2 = join(import.meta.dirname, 'fixtures/python-client-v2.py');

describe('examples/python-client.py against real daemons', () => {
  const cluster = new TestCluster({ nodes: 2, driver: 'totem', basePort: testPort(44000) });
  beforeAll(() => cluster.start());
  afterAll(() => cluster.stop());

  it('binds, sends, receives its own messages, and a TypeScript member on node 2 receives them too', async () => {
    const ts = await ClusterSocket.open({ path: cluster.node(2).socket });
    await ts.bind('py');
    const py = spawnSync('python3', [SCRIPT, cluster.node(1).socket, 'py', 'hello', 'from python', '@200000', '--timeout', '30'], { encoding: 'utf8', timeout: 60_000 });
    expect(py.status, py.stderr).toBe(0);
    const lines = py.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const open = lines[0] as { self: { nodeId: number; pid: number; port: number } };
    expect(open.self.nodeId).toBe(1);
    expect(lines.filter((l) => l.type === 'message').map((l) => l.text)).toEqual(['hello', 'from python', '200000 bytes: xxxxxxxxxxxxxxxx...']);
    expect(lines[0]).toMatchObject({ version: 3 });
    expect(lines[1]).toMatchObject({ type: 'quorum-state', quorum: { quorate: true, votes: 2, expected: 2, nodes: [{ nodeId: 1, present: 1 }, { nodeId: 2, present: 1 }] } });
    expect(lines.find((l) => l.type === 'membership')).toMatchObject({ group: 'py', kind: 'regular', quorum: { quorate: true }, viewId: expect.stringMatching(/^\d+\.\d+\/\d+$/) });
    const got: SocketEvent[] = [];
    for await (const ev of ts) {
      got.push(ev);
      if (ev.type === 'membership' && ev.left.some((c) => c.member.pid === open.self.pid)) break;
    }
    const texts = got.flatMap((e) => (e.type === 'message' ? [new TextDecoder().decode(e.data)] : []));
    expect(texts).toEqual(['hello', 'from python', 'x'.repeat(200_000)]);
    expect(got.filter((e) => e.type === 'message').every((e) => e.type === 'message' && e.sender.pid === open.self.pid)).toBe(true);
    expect(got.at(-1)).toMatchObject({ type: 'membership', left: [{ member: open.self, reason: 'leave' }] });
    await ts.close();
  });

  it('the previous release\'s version-2 client, unchanged, still binds, sends and receives', () => {
    const py = spawnSync('python3', [SCRIPT_V2, cluster.node(1).socket, 'py2', 'old', '@70000', '--timeout', '30'], { encoding: 'utf8', timeout: 60_000 });
    expect(py.status, py.stderr).toBe(0);
    const lines = py.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.type === 'message').map((l) => l.text)).toEqual(['old', '70000 bytes: xxxxxxxxxxxxxxxx...']);
    const membership = lines.find((l) => l.type === 'membership');
    expect(membership).toMatchObject({ group: 'py2', kind: 'regular' });
    expect(membership).not.toHaveProperty('quorum'); // it asked for version 2: plain MEMBERSHIP events
  });
});
