// Proves the daemon learns who a client is from the kernel, not from the client: the socket file's owner, the socket bound at the path (/proc/net/unix), and the claimed process holding it (/proc/PID/fd); a pid of another live process, a missing process, a link or a plain file in place of the socket are refused; a socket made by another user (nobody) is that user's; a daemon that is not root accepts only its own user's processes unverified and refuses other users' claims.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundInode, identifyPeer, type PeerIdentity } from './peercred.ts';
import { bindUnix, createUnixSocket, type UnixDgramSocket } from './unix.ts';
import { tempDir, until } from '../../test/integration/bridge-helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/** A process of user nobody that binds a unix datagram socket at `path`, prints its pid and waits. */
function nobodyHolder(path: string): { proc: ChildProcess; pid: Promise<number> } {
  const code = `const u = require(${JSON.stringify(join(ROOT, 'node_modules/unix-dgram'))});
const s = u.createSocket('unix_dgram'); s.bind(${JSON.stringify(path)}); console.log(process.pid);
setInterval(() => {}, 1000);`;
  const proc = spawn(process.execPath, ['-e', code], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = new Promise<number>((resolve, reject) => {
    proc.stdout!.once('data', (b: Buffer) => resolve(Number(String(b).trim())));
    proc.once('exit', (code) => reject(new Error(`the socket holder exited (${code})`)));
  });
  return { proc, pid };
}

describe('peer identity from the kernel', () => {
  const tmp = tempDir('afc-peercred-');
  const shared = join(tmp.dir, 'shared');
  const mine = join(tmp.dir, 'mine.sock');
  let sock: UnixDgramSocket;
  let sleeper: ChildProcess;
  const kids: ChildProcess[] = [];

  beforeAll(() => {
    sock = createUnixSocket();
    bindUnix(sock, mine);
    sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    kids.push(sleeper);
    mkdirSync(shared, { mode: 0o777 });
    chmodSync(shared, 0o777);
    chmodSync(tmp.dir, 0o755);
  });
  afterAll(() => {
    sock.close();
    for (const k of kids) k.kill('SIGKILL');
    tmp.cleanup();
  });

  it('knows its own process: owner of the file, the pid verified, the supplementary groups', () => {
    const id = identifyPeer(mine, process.pid) as PeerIdentity;
    expect(id).toMatchObject({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!(), verified: true });
    expect(id.groups).toContain(process.getgid!());
    expect(typeof id.file).toBe('string');
    expect(boundInode(mine)).toBeGreaterThan(0);
  });

  it('refuses a claim to another live process, a missing process, a link or a file at the path', () => {
    expect(identifyPeer(mine, sleeper.pid!)).toBe('EACCES');
    expect(identifyPeer(mine, 0x7ffffff0)).toBe('ESRCH');
    expect(identifyPeer(join(tmp.dir, 'absent.sock'), process.pid)).toBe('ENOENT');
    const link = join(tmp.dir, 'link.sock');
    symlinkSync(mine, link);
    expect(identifyPeer(link, process.pid)).toBe('EACCES');
    const plain = join(tmp.dir, 'plain.sock');
    writeFileSync(plain, '');
    expect(identifyPeer(plain, process.pid)).toBe('EACCES');
  });

  it.skipIf(!isRoot)('a socket bound by user nobody is nobody\'s; root cannot claim it', async () => {
    const path = join(shared, 'nobody.sock');
    const h = nobodyHolder(path);
    kids.push(h.proc);
    const pid = await h.pid;
    const id = await until('nobody bound its socket', () => {
      const r = identifyPeer(path, pid);
      return typeof r === 'string' ? undefined : r;
    });
    expect(id).toMatchObject({ pid, uid: NOBODY, gid: NOBODY, verified: true });
    expect(identifyPeer(path, process.pid)).toBe('EACCES'); // root does not hold nobody's socket
  });

  it.skipIf(!isRoot || spawnSync('unshare', ['--net', 'true']).status !== 0)('a client in another network namespace is found in its own', async () => {
    const path = join(shared, 'netns.sock');
    const code = `const u = require(${JSON.stringify(join(ROOT, 'node_modules/unix-dgram'))});
const s = u.createSocket('unix_dgram'); s.bind(${JSON.stringify(path)}); console.log(process.pid); setInterval(() => {}, 1000);`;
    const proc = spawn('unshare', ['--net', process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    kids.push(proc);
    const pid = await new Promise<number>((resolve) => proc.stdout!.once('data', (b: Buffer) => resolve(Number(String(b).trim()))));
    expect(boundInode(path)).toBeUndefined(); // not in the daemon's namespace
    expect(identifyPeer(path, pid)).toMatchObject({ pid, uid: 0, verified: true });
  });

  it.skipIf(!isRoot)('a daemon that is not root: its own user\'s processes verified, another user\'s own socket unverified, a false claim refused', async () => {
    const path = join(shared, 'nobody2.sock');
    const h = nobodyHolder(path);
    kids.push(h.proc);
    const pid = await h.pid;
    await until('nobody bound its socket', () => typeof identifyPeer(path, pid) !== 'string');
    // identifyPeer run as nobody (a daemon of user nobody).
    const asNobody = (p: string, claimed: number): unknown => {
      const code = `import(${JSON.stringify(join(ROOT, 'core/af/peercred.ts'))}).then((m) => console.log(JSON.stringify(m.identifyPeer(${JSON.stringify(p)}, ${claimed}))))`;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { uid: NOBODY, gid: NOBODY, cwd: ROOT, env: { ...process.env, HOME: shared }, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    };
    expect(asNobody(path, pid)).toMatchObject({ pid, uid: NOBODY, verified: true });
    // Root's socket and root's process: nobody may not look at root's descriptors, so the claim
    // rests on the process's user being the file's owner: accepted, unverified.
    expect(asNobody(mine, process.pid)).toMatchObject({ pid: process.pid, uid: 0, verified: false });
    // Root's socket claimed for nobody's process: the kernel's records contradict it.
    expect(asNobody(mine, pid)).toBe('EACCES');
  });
});
