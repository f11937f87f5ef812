// Proves afcluster runs on three machines as docs/CONFIG.md tells an operator to run it: three
// network namespaces (tools/drills/netns.ts: separate addresses, own loopback, own /etc/hosts
// naming the hosts alpha, beta, gamma), one config per host written from the page's example (host
// names in cluster.nodes, a key made by `afcluster keygen` and copied with mode 0600, metrics on
// each host's own 127.0.0.1:9405), and each daemon started the way contrib/systemd/afcluster.service
// starts it: its Environment= and EnvironmentFile=, ExecStartPre= (--check) then ExecStart=, with
// NOTIFY_SOCKET, ready when it says READY=1. On each host a client (the afcluster command) listens
// and sends: every host gets the three messages in one order. Metrics answer on each host's
// loopback; SIGHUP (ExecReload) keeps the daemon and its ring; SIGTERM (stop) exits 0. Namespaces,
// /etc/netns entries and files are removed whatever happens; without namespaces it is skipped,
// saying why.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bindUnix, createUnixSocket, type UnixDgramSocket } from '../../core/af/unix.ts';
import { ClusterSocket } from '../../sockapi/client.ts';
import { DAEMON_ENTRY, logTail, signalAndWait, track } from '../../tools/local-cluster.ts';
import { createTopology, destroyTopology, namespaceSupport, nodeAddress, type Topology } from '../../tools/drills/netns.ts';
import { tempDir, until } from './bridge-helpers.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const UNIT = join(ROOT, 'contrib/systemd/afcluster.service');
const HOSTS = ['alpha', 'beta', 'gamma'];
const support = namespaceSupport();

/** What systemd would run: the [Service] section's environment and commands, /usr/bin/afcluster
 *  being this checkout's bin, and paths under /etc/ moved under the host's own root. */
function unitPlan(hostRoot: string): { env: Record<string, string>; pre: string[][]; start: string[] } {
  const lines = readFileSync(UNIT, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const at = (p: string): string => p.replace(/^\/etc\//, `${hostRoot}/etc/`);
  const argv = (cmd: string): string[] => cmd.split(/\s+/).map((a) => (a === '/usr/bin/afcluster' ? DAEMON_ENTRY : at(a)));
  const env: Record<string, string> = {};
  const pre: string[][] = [];
  let start: string[] = [];
  for (const l of lines) {
    const [key, ...rest] = l.split('=');
    const value = rest.join('=');
    if (key === 'Environment') {
      const [k, ...v] = value.split('=');
      env[k] = at(v.join('='));
    } else if (key === 'EnvironmentFile') {
      const file = at(value.replace(/^-/, ''));
      if (existsSync(file)) for (const e of readFileSync(file, 'utf8').split('\n').filter((x) => x.includes('='))) env[e.split('=')[0]] = e.slice(e.indexOf('=') + 1);
    } else if (key === 'ExecStartPre') pre.push(argv(value));
    else if (key === 'ExecStart') start = argv(value);
  }
  return { env, pre, start };
}

interface Host {
  readonly k: number;
  readonly name: string;
  readonly root: string;
  readonly socket: string;
  readonly log: string;
  readonly notices: string[];
  notify?: UnixDgramSocket;
  daemon?: ChildProcess;
}

describe('three hosts (network namespaces), set up from docs/CONFIG.md and the systemd unit', () => {
  const tmp = tempDir('afc-3hosts-');
  let topology: Topology | undefined;
  const etcNetns: string[] = [];
  const hosts: Host[] = HOSTS.map((name, i) => {
    const root = join(tmp.dir, name);
    return { k: i + 1, name, root, socket: join(root, 'run/afcluster/afcluster.sock'), log: join(root, 'daemon.log'), notices: [] };
  });
  const inHost = (h: Host, argv: string[]): string[] => ['netns', 'exec', topology!.names[h.k - 1], ...argv];
  const hadEtcNetns = existsSync('/etc/netns');
  const removeEtc = (): void => {
    for (const d of etcNetns) rmSync(d, { recursive: true, force: true });
    if (!hadEtcNetns) try { rmdirSync('/etc/netns'); } catch { /* not made, or not empty: someone else's */ }
  };
  process.once('exit', removeEtc);

  afterAll(async () => {
    await Promise.all(hosts.map((h) => signalAndWait(h.daemon, 'SIGKILL')));
    for (const h of hosts) h.notify?.close();
    if (topology) destroyTopology(topology);
    removeEtc();
    tmp.cleanup();
  });

  it('forms one ring; a client on each host sends and every host receives in one order; metrics, SIGHUP and stop behave', async (ctx) => {
    if (!support.ok) {
      console.log(`SKIPPED the three-host test: ${support.reason}`);
      ctx.skip(support.reason);
    }
    topology = createTopology(3, `h${process.pid % 100_000}`);
    // Each "machine" has its own /etc/hosts (ip netns exec mounts /etc/netns/NAME/hosts over it).
    const hostsFile = ['127.0.0.1 localhost', ...HOSTS.map((n, i) => `${nodeAddress(i + 1)} ${n}`), ''].join('\n');
    for (const ns of topology.names) {
      const dir = `/etc/netns/${ns}`;
      mkdirSync(dir, { recursive: true });
      etcNetns.push(dir);
      writeFileSync(join(dir, 'hosts'), hostsFile);
    }

    // The operator's files, as docs/CONFIG.md shows them (paths under each host's own root: the
    // three "machines" share one filesystem).
    const key = join(tmp.dir, 'authkey');
    const keygen = spawnSync(process.execPath, [DAEMON_ENTRY, 'keygen', '--out', key], { encoding: 'utf8', timeout: 60_000 });
    expect(keygen.status, keygen.stderr).toBe(0);
    for (const h of hosts) {
      mkdirSync(join(h.root, 'etc/afcluster'), { recursive: true });
      mkdirSync(join(h.root, 'etc/default'), { recursive: true });
      copyFileSync(key, join(h.root, 'etc/afcluster/authkey')); // keeps mode 0600
      writeFileSync(join(h.root, 'etc/afcluster/afcluster.toml'), [
        `# ${h.name}: written from docs/CONFIG.md's three-host example`,
        '[node]', `id = ${h.k}`, `socket = "${h.socket}"`, `state_dir = "${join(h.root, 'var/lib/afcluster')}"`, '',
        '[cluster]', 'name = "prod"', 'nodes = [',
        ...HOSTS.map((n, i) => `  { id = ${i + 1}, addr = "${n}:5405", name = "${n}" },`), ']', '',
        '[crypto]', `key_file = "${join(h.root, 'etc/afcluster/authkey')}"`, '',
        '[metrics]', 'listen = "127.0.0.1:9405"', ''].join('\n'));
      // What /etc/default/afcluster would say on this machine: where its config is.
      writeFileSync(join(h.root, 'etc/default/afcluster'), `AFCLUSTER_CONFIG=${join(h.root, 'etc/afcluster/afcluster.toml')}\n`);
    }

    // Start each host's daemon as systemd would: ExecStartPre, then ExecStart with NOTIFY_SOCKET.
    for (const h of hosts) {
      const plan = unitPlan(h.root);
      expect(plan.start).toEqual([DAEMON_ENTRY, 'daemon']);
      const notifyPath = join(h.root, 'notify.sock');
      h.notify = createUnixSocket();
      bindUnix(h.notify, notifyPath);
      h.notify.on('message', (b) => h.notices.push(b.toString()));
      const env = { ...process.env, ...plan.env, NOTIFY_SOCKET: notifyPath };
      for (const pre of plan.pre) {
        const r = spawnSync('ip', inHost(h, pre), { encoding: 'utf8', env, timeout: 60_000 });
        expect(r.status, `${h.name}: ExecStartPre ${pre.join(' ')}:\n${r.stdout}${r.stderr}`).toBe(0);
        expect(r.stdout).toContain(`node ${h.k} (${h.name}), listening on UDP ${nodeAddress(h.k)}:5405`); // the name, resolved on that host
      }
      const fd = openSync(h.log, 'a');
      h.daemon = track(spawn('ip', inHost(h, plan.start), { env, stdio: ['ignore', fd, fd] }));
    }
    await until('READY=1 from every host', () => hosts.every((h) => h.notices.some((n) => n.startsWith('READY=1'))), 60_000)
      .catch((e: Error) => { throw new Error(`${e.message}\n${hosts.map((h) => `${h.name}: ${logTail(h.log)}`).join('\n')}`); });
    await until('one ring of the three hosts', async () => {
      const stats = await Promise.all(hosts.map((h) => ClusterSocket.open({ path: h.socket, timeoutMs: 2000 })
        .then(async (s) => { try { return await s.stats(); } finally { await s.close(); } }, () => undefined)));
      return stats.every((s) => s?.['node.members'] === '1,2,3');
    }, 60_000);

    // A client on each host: a listener, then one message sent from each host.
    const listeners = hosts.map((h) => {
      const p = track(spawn('ip', inHost(h, [process.execPath, DAEMON_ENTRY, 'listen', 'demo', '--json', '--count', '3', '--socket', h.socket]), { stdio: ['ignore', 'pipe', 'inherit'] }));
      const lines: Record<string, unknown>[] = [];
      createInterface({ input: p.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
      const exited = new Promise<number | null>((res) => p.once('exit', (code) => res(code)));
      return { lines, exited };
    });
    await until('every listener sees the three listeners', () => listeners.every((l) => l.lines.some((e) => e.type === 'membership' && (e.members as unknown[]).length === 3)), 60_000);
    for (const h of hosts) {
      const r = spawnSync('ip', inHost(h, [process.execPath, DAEMON_ENTRY, 'send', 'demo', `from ${h.name}`, '--socket', h.socket]), { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
    }
    expect(await Promise.all(listeners.map((l) => l.exited))).toEqual([0, 0, 0]);
    const orders = listeners.map((l) => l.lines.filter((e) => e.type === 'message').map((e) => `${(e.sender as { nodeId: number }).nodeId}:${e.text as string}`));
    expect([...orders[0]].sort()).toEqual(['1:from alpha', '2:from beta', '3:from gamma']);
    expect(orders[1]).toEqual(orders[0]);
    expect(orders[2]).toEqual(orders[0]);

    // Metrics on each host's own loopback.
    for (const h of hosts) {
      const r = spawnSync('ip', inHost(h, [process.execPath, '-e',
        "require('http').get('http://127.0.0.1:9405/metrics', (res) => { let b = ''; res.on('data', (c) => { b += c; }); res.on('end', () => process.stdout.write(b)); })"]), { encoding: 'utf8', timeout: 60_000 });
      expect(r.stdout).toMatch(/^afcluster_ring_members 3$/m);
      expect(r.stdout).toMatch(new RegExp(`^afcluster_info\\{node="${h.k}",driver="totem"\\} 1$`, 'm'));
      expect(r.stdout).toMatch(/^afcluster_quorate 1$/m);
    }

    // ExecReload (SIGHUP) on beta: the same daemon, the same ring.
    const beta = hosts[1];
    const ring = await ClusterSocket.open({ path: beta.socket }).then(async (s) => { try { return (await s.stats())['node.ringId']; } finally { await s.close(); } });
    beta.daemon!.kill('SIGHUP');
    await until('beta logs its reload', () => readFileSync(beta.log, 'utf8').includes('reload: nothing to change at run time'));
    expect(beta.daemon!.exitCode).toBeNull();
    const after = await ClusterSocket.open({ path: beta.socket }).then(async (s) => { try { return await s.stats(); } finally { await s.close(); } });
    expect(after).toMatchObject({ 'node.ringId': ring, 'node.members': '1,2,3' });

    // systemctl stop: SIGTERM, the node leaves the ring, exit status 0.
    const codes = await Promise.all(hosts.map((h) => new Promise<number | null>((res) => { h.daemon!.once('exit', (code) => res(code)); h.daemon!.kill('SIGTERM'); })));
    expect(codes).toEqual([0, 0, 0]);
    for (const h of hosts) expect(h.notices.some((n) => n.startsWith('STOPPING=1'))).toBe(true);
  }, 240_000);
});
