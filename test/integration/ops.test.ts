// Proves the operator's promises on real daemons (loopback, totem): each daemon says READY=1 on
// NOTIFY_SOCKET once in a ring; the metrics endpoint answers every name docs/METRICS.md lists;
// SIGHUP keeps the daemon and its ring, applies a new log level and limit, and a refused file
// changes nothing; a node added to every list joins without the others restarting, and quorum's
// expected votes follow it in and out; send --file and send - deliver to a listener on another
// node; cman refuses a new node list on reload and runs on; and no JSON log line repeats a key.
import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindUnix, createUnixSocket } from '../../core/af/unix.ts';
import { FAST_PROFILE } from '../../drivers/totem/options.ts';
import { ClusterSocket } from '../../sockapi/client.ts';
import { DAEMON_ENTRY, type LocalNode } from '../../tools/local-cluster.ts';
import { tempDir, testPort, until } from './bridge-helpers.ts';
import { TestCluster } from './cluster.ts';

/** Daemons started as the systemd unit starts them: no --log-level, so the file's [log] counts. */
class OpsCluster extends TestCluster {
  protected override daemonCommand(n: LocalNode): { readonly file: string; readonly args: string[] } {
    const { file, args } = super.daemonCommand(n);
    const i = args.indexOf('--log-level');
    return { file, args: i < 0 ? args : [...args.slice(0, i), ...args.slice(i + 2)] };
  }
}

function freeTcpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** Top-level keys of one JSON object, in order, duplicates kept (JSON.parse would hide them). */
function topKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (ch === '"') {
      let j = i + 1;
      while (line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (depth === 1 && line[j + 1] === ':') keys.push(line.slice(i + 1, j));
      i = j;
    } else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
  }
  return keys;
}

const alive = (pid: number | undefined): boolean => {
  try { process.kill(pid!, 0); return true; } catch { return false; }
};

describe('a cluster in operation (SIGHUP, node list, metrics, readiness)', () => {
  const tmp = tempDir('afc-ops-');
  const notifyPath = join(tmp.dir, 'notify.sock');
  const notices: string[] = [];
  const notify = createUnixSocket();
  // Four configs; nodes 1-3 start with a list of three, as if node 4 did not exist yet.
  const cluster = new OpsCluster({ nodes: 4, driver: 'totem', basePort: testPort(62000), driverSections: { totem: FAST_PROFILE } });
  const full = cluster.nodes.map((n) => readFileSync(n.config, 'utf8'));
  const withoutNode4 = (text: string): string => text.replace(/^ {2}\{ id = 4, .*\n/m, '');
  let metricsUrl = '';
  const write = (id: number, text: string): void => writeFileSync(cluster.node(id).config, text + (id === 1 ? `\n[metrics]\nlisten = "${metricsUrl.slice(7, -8)}"\n` : ''));
  const logOf = (id: number): string => readFileSync(cluster.node(id).log, 'utf8');
  const reloadLines = (id: number): Record<string, unknown>[] => logOf(id).split('\n').filter((l) => l.includes('"layer":"reload"')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const hup = async (id: number): Promise<Record<string, unknown>> => {
    const before = reloadLines(id).length;
    cluster.node(id).proc!.kill('SIGHUP');
    return until(`node ${id} logs its reload`, () => reloadLines(id)[before]);
  };

  beforeAll(async () => {
    bindUnix(notify, notifyPath);
    notify.on('message', (buf) => notices.push(buf.toString()));
    process.env.NOTIFY_SOCKET = notifyPath; // what systemd sets for a Type=notify unit
    metricsUrl = `http://127.0.0.1:${await freeTcpPort()}/metrics`;
    for (const id of [1, 2, 3]) write(id, withoutNode4(full[id - 1]));
    for (const id of [1, 2, 3]) cluster.startNode(id);
    await cluster.waitRing([1, 2, 3]);
  });
  afterAll(async () => {
    delete process.env.NOTIFY_SOCKET;
    await cluster.stop();
    notify.close();
    tmp.cleanup();
  });

  it('each daemon tells systemd READY=1 once it is in a ring', async () => {
    await until('three READY=1 notices', () => notices.filter((n) => n.startsWith('READY=1\nSTATUS=in a ring')).length === 3);
  });

  it('the metrics endpoint answers every documented name, with the ring and quorum', async () => {
    const documented = [...readFileSync(join(import.meta.dirname, '../../docs/METRICS.md'), 'utf8').matchAll(/^\| `(afcluster_[a-z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.length).toBeGreaterThan(25);
    const { status, body } = await httpGet(metricsUrl);
    expect(status).toBe(200);
    const served = [...body.matchAll(/^# TYPE (\S+) (counter|gauge)$/gm)].map((m) => m[1]);
    expect(served.sort()).toEqual([...documented].sort());
    expect(body).toMatch(/^afcluster_ring_members 3$/m);
    expect(body).toMatch(/^afcluster_quorate 1$/m);
    expect(body).toMatch(/^afcluster_quorum_expected_votes 3$/m);
    expect(body).toMatch(/^afcluster_info\{node="1",driver="totem"\} 1$/m);
    expect((await httpGet(metricsUrl.replace('/metrics', '/'))).status).toBe(404);
  });

  it('SIGHUP keeps the daemon and its ring, applies log level and limits; a refused file changes nothing', async () => {
    const pid = cluster.node(1).proc?.pid;
    const ring = (await cluster.stats(1))['node.ringId'];
    write(1, `${withoutNode4(full[0])}\n[log]\nlevel = "debug"\n\n[limits]\nsockets_max = 1\n`);
    const applied = await hup(1);
    expect(applied).toMatchObject({ applied: ['limits.sockets_max', 'log.level'] });
    await expect(ClusterSocket.open({ path: cluster.node(1).socket })).rejects.toMatchObject({ code: 'EMFILE' });
    write(1, `${withoutNode4(full[0])}\n[limits]\nsockets_max = "many"\n`);
    const refused = await hup(1);
    expect(refused).toMatchObject({ level: 50, msg: expect.stringContaining('refused; still running with the previous config') });
    expect(String(refused.errors)).toContain('limits.sockets_max = "many": expected an integer');
    write(1, withoutNode4(full[0]));
    expect(await hup(1)).toMatchObject({ applied: ['limits.sockets_max', 'log.level'] });
    expect(alive(pid)).toBe(true);
    expect(cluster.node(1).exited).toBeUndefined();
    expect((await cluster.stats(1))['node.ringId']).toBe(ring);
    const { body } = await httpGet(metricsUrl);
    expect(body).toMatch(/^afcluster_reloads_total\{result="ok"\} 2$/m);
    expect(body).toMatch(/^afcluster_reloads_total\{result="failed"\} 1$/m);
  });

  it('a node added to every list joins without the others restarting; removed again, expected votes follow', async () => {
    const pids = [1, 2, 3].map((id) => cluster.node(id).proc?.pid);
    for (const id of [1, 2, 3]) write(id, full[id - 1]);
    for (const id of [1, 2, 3]) expect(await hup(id)).toMatchObject({ applied: ['cluster.nodes'], nodes: [1, 2, 3, 4] });
    cluster.startNode(4);
    await cluster.waitRing([1, 2, 3, 4]);
    expect([1, 2, 3].map((id) => cluster.node(id).proc?.pid)).toEqual(pids);
    expect(pids.every(alive)).toBe(true);
    expect(await cluster.stats(1)).toMatchObject({ 'quorum.expected': 4, 'quorum.votes': 4, 'quorum.quorate': 1 });

    // Clients on the new node and an old one: send --file from node 4, send - (stdin) from node 2.
    const listener = await ClusterSocket.open({ path: cluster.node(1).socket });
    await listener.bind('ops', { selfDelivery: false });
    const file = join(tmp.dir, 'payload.bin');
    writeFileSync(file, Buffer.alloc(100_000, 7));
    const fromFile = spawnSync(process.execPath, [DAEMON_ENTRY, 'send', 'ops', '--file', file, '--socket', cluster.node(4).socket], { encoding: 'utf8', timeout: 60_000 });
    expect(fromFile.stderr).toBe('');
    expect(fromFile.stdout).toMatch(/^sent 100000 bytes to ops \(agreed\) as 4\//);
    const fromStdin = spawnSync(process.execPath, [DAEMON_ENTRY, 'send', 'ops', '-', '--socket', cluster.node(2).socket], { input: 'from stdin\n', encoding: 'utf8', timeout: 60_000 });
    expect(fromStdin.status).toBe(0);
    const got: { sender: number; data: Uint8Array }[] = [];
    for await (const ev of listener) {
      if (ev.type === 'message') got.push({ sender: ev.sender.nodeId, data: ev.data });
      if (got.length === 2) break;
    }
    await listener.close();
    expect(got.map((m) => m.sender)).toEqual([4, 2]);
    expect(Buffer.from(got[0].data).equals(Buffer.alloc(100_000, 7))).toBe(true);
    expect(Buffer.from(got[1].data).toString()).toBe('from stdin\n');

    await cluster.kill(4, 'SIGTERM');
    await cluster.waitRing([1, 2, 3]);
    for (const id of [1, 2, 3]) write(id, withoutNode4(full[id - 1]));
    for (const id of [1, 2, 3]) expect(await hup(id)).toMatchObject({ applied: ['cluster.nodes'], nodes: [1, 2, 3] });
    await until('expected votes back to 3 on every node', async () => {
      const all = await Promise.all([1, 2, 3].map((id) => cluster.stats(id)));
      return all.every((s) => s['quorum.expected'] === 3 && s['quorum.quorate'] === 1);
    });
    expect(pids.every(alive)).toBe(true);
  });

  it('no JSON log line names a key twice (the node id appears once)', () => {
    for (const id of [1, 2, 3, 4]) {
      const lines = logOf(id).split('\n').filter((l) => l.startsWith('{'));
      expect(lines.length).toBeGreaterThan(5);
      for (const line of lines) {
        const keys = topKeys(line);
        expect(new Set(keys).size, line).toBe(keys.length);
        expect(keys.filter((k) => k === 'node'), line).toHaveLength(1);
      }
    }
  });
});

describe('cman and a new node list', () => {
  const cluster = new TestCluster({ nodes: 2, driver: 'cman', basePort: testPort(62000) + 8 });
  beforeAll(async () => {
    const c = cluster.node(1).config;
    writeFileSync(c, readFileSync(c, 'utf8').replace(/^ {2}\{ id = 2, .*\n/m, ''));
    cluster.startNode(1);
    await cluster.waitRing([1]);
  });
  afterAll(() => cluster.stop());

  it('a reload that changes cluster.nodes is refused, the old list stays, the daemon runs on', async () => {
    const c = cluster.node(1).config;
    writeFileSync(c, readFileSync(c, 'utf8').replace('nodes = [\n', 'nodes = [\n  { id = 2, addr = "127.0.0.2:1", name = "node2" },\n'));
    appendFileSync(c, '\n[limits]\ngroups_max = 9\n');
    cluster.node(1).proc!.kill('SIGHUP');
    const log = (): string => readFileSync(cluster.node(1).log, 'utf8');
    await until('the refusal is logged', () => log().includes('reload: cluster.nodes: EOPNOTSUPP: the cman driver cannot change its node list at run time: restart every node with the new list'));
    expect(log()).toContain('"applied":["limits.groups_max"]');
    expect(cluster.node(1).exited).toBeUndefined();
    expect(await cluster.stats(1)).toMatchObject({ 'node.members': '1' });
  });
});
