// Proves "who may do what on a node" over real daemons (2 nodes, totem, loopback), with a client process running as user nobody: its identity is the kernel's word (a HELLO claiming another live process's pid is refused EACCES; MEMBER_INFO on both nodes and the membership events of protocol version 4 report nobody's uid and gid, verified), a user outside the allowed group is refused BIND of a protected group and of the lock service's group with EACCES, a member not allowed to send is refused SEND, and the daemon counts the refusals in STATS. Runs as root (it must start a process of another user); skipped, saying why, otherwise.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_NUMBERS } from '../../core/api/errors.ts';
import { ClusterSocket } from '../../sockapi/client.ts';
import { testPort, until } from './bridge-helpers.ts';
import { TestCluster, track } from './cluster.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('bridge-security: skipped: not root, so it cannot run a client as another user');

interface Answer { readonly op: string; readonly status: number; readonly result: Record<string, unknown> }

/** A raw client process of user nobody (fixtures/raw-client.ts): one request at a time. */
class NobodyClient {
  private readonly proc: ChildProcess;
  private readonly answers: Answer[] = [];
  private taken = 0;
  constructor(daemon: string, path: string, home: string) {
    this.proc = track(spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures/raw-client.ts'), daemon, path], {
      uid: NOBODY, gid: NOBODY, cwd: ROOT, env: { ...process.env, HOME: home }, stdio: ['pipe', 'pipe', 'inherit'],
    }));
    createInterface({ input: this.proc.stdout! }).on('line', (l) => { this.answers.push(JSON.parse(l) as Answer); });
  }
  get pid(): number { return this.proc.pid!; }
  async request(req: Record<string, unknown>): Promise<Answer> {
    this.proc.stdin!.write(`${JSON.stringify(req)}\n`);
    const n = ++this.taken;
    return until(`nobody's answer to ${String(req.type)}`, () => this.answers.length >= n && this.answers[n - 1], 60_000);
  }
  kill(): void { this.proc.kill('SIGKILL'); }
}

describe.skipIf(!isRoot)('local security over real daemons (2 nodes, totem)', () => {
  const cluster = new TestCluster({ nodes: 2, driver: 'totem', basePort: testPort(34000) });
  const home = join(cluster.dir, 'nobody');
  const kids: NobodyClient[] = [];
  const nobody = (name: string, node = 1): NobodyClient => {
    const c = new NobodyClient(cluster.node(node).socket, join(home, `${name}.sock`), home);
    kids.push(c);
    return c;
  };

  beforeAll(async () => {
    // Anyone may use the socket (mode 0666 in a searchable directory); the rules decide the rest.
    chmodSync(cluster.dir, 0o755);
    mkdirSync(home, { mode: 0o777 });
    chmodSync(home, 0o777);
    for (const n of cluster.nodes) {
      writeFileSync(n.config, readFileSync(n.config, 'utf8').replace(/^socket = (.*)$/m, 'socket = $1\nsocket_mode = 0o666'));
      appendFileSync(n.config, '\n[[access.group]]\nname = "secret.*"\njoin = ["root"]\n\n[[access.group]]\nname = "quiet"\njoin = ["*"]\nsend = ["root"]\n');
    }
    await cluster.start();
  });
  afterAll(async () => {
    for (const k of kids) k.kill();
    await cluster.stop();
  });

  it('a HELLO claiming another live process is refused; MEMBER_INFO and membership events on every node tell who each member is', async () => {
    const liar = nobody('liar');
    expect((await liar.request({ type: 'hello', pid: process.pid })).status).toBe(ERROR_NUMBERS.EACCES);
    const honest = nobody('honest');
    const hello = await honest.request({ type: 'hello' });
    expect(hello.status).toBe(0);
    expect(hello.result).toMatchObject({ type: 'hello', hello: { nodeId: 1, pid: honest.pid } });
    expect((await honest.request({ type: 'bind', group: 'open', selfDelivery: true })).status).toBe(0);
    const far = await ClusterSocket.open({ path: cluster.node(2).socket });
    try {
      await far.bind('open');
      const info = await until('both members, on node 2', async () => {
        const list = await far.memberInfo();
        return list.length === 2 && list;
      });
      expect(info).toEqual([
        { member: { nodeId: 1, pid: honest.pid, port: 1 }, identity: { uid: NOBODY, gid: NOBODY, verified: true } },
        { member: far.self, identity: { uid: 0, gid: 0, verified: true } },
      ]);
      const near = await honest.request({ type: 'memberInfo' });
      expect(near.result).toEqual({ type: 'memberInfo', group: 'open', members: info });
      // The same identities in the membership events of protocol version 4, aligned with the members.
      for await (const ev of far) {
        if (ev.type !== 'membership' || ev.members.length < 2) continue;
        expect(ev.members).toEqual(info.map((i) => i.member));
        expect(ev.identities).toEqual(info.map((i) => i.identity));
        break;
      }
      const stats = await far.stats();
      expect(stats['bridge.identityRefused']).toBe(0); // node 2 refused nobody
    } finally {
      await far.close();
    }
    const s1 = await ClusterSocket.open({ path: cluster.node(1).socket });
    expect((await s1.stats())['bridge.identityRefused']).toBe(1);
    await s1.close();
  });

  it('a user outside the allowed group is refused BIND of a protected group and of the lock group (EACCES, counted); SEND needs send', async () => {
    const c = nobody('binder', 2);
    expect((await c.request({ type: 'hello' })).status).toBe(0);
    expect((await c.request({ type: 'bind', group: 'secret.plans', selfDelivery: true })).status).toBe(ERROR_NUMBERS.EACCES);
    expect((await c.request({ type: 'bind', group: 'afcluster.locks', selfDelivery: true })).status).toBe(ERROR_NUMBERS.EACCES);
    expect((await c.request({ type: 'bind', group: 'quiet', selfDelivery: true })).status).toBe(0);
    expect((await c.request({ type: 'send', order: 'agreed', data: 'psst' })).status).toBe(ERROR_NUMBERS.EACCES);
    const root = await ClusterSocket.open({ path: cluster.node(2).socket });
    try {
      await root.bind('secret.plans'); // root may
      const stats = await root.stats();
      expect(stats['bridge.accessDenied']).toBe(3);
      // The lock group holds the daemons' own lock tables (port 0), each the daemon's user.
      const locks = await ClusterSocket.open({ path: cluster.node(2).socket });
      await locks.bind('afcluster.locks');
      const info = await until('both daemons\' lock tables', async () => {
        const list = await locks.memberInfo();
        return list.filter((m) => m.member.port === 0).length === 2 && list;
      });
      for (const m of info) expect(m.identity).toEqual({ uid: 0, gid: 0, verified: true });
      await locks.close();
    } finally {
      await root.close();
    }
  });
});
