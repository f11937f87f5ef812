// Proves `afcluster daemon` start-up and shut-down: loud warning without crypto, socket directory 0750 and socket 0660 (owner and group from config), a stale socket file replaced, a second daemon on the same socket refused, a bad config named with its key, and SIGTERM removing the socket.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeLocalCluster } from '../../core/config/index.ts';
import { bindUnix, createUnixSocket } from '../../core/af/unix.ts';
import { ClusterSocket } from '../../sockapi/client.ts';
import { tempDir, testPort, until } from './bridge-helpers.ts';
import { track } from './cluster.ts';

const ENTRY = join(import.meta.dirname, '../../tools/afcluster.mjs');

describe('afcluster daemon', () => {
  const tmp = tempDir('afc-daemon-');
  afterAll(() => tmp.cleanup());

  it('starts, warns loudly without crypto, secures its socket, and cleans up on SIGTERM', async () => {
    const { configs } = writeLocalCluster({ dir: tmp.dir, nodes: 1, driver: 'totem', crypto: false, basePort: testPort(48000) });
    const socket = join(tmp.dir, 'run', 'node1.sock');
    writeFileSync(configs[0], readFileSync(configs[0], 'utf8').replace(/^socket = .*$/m, `socket = ${JSON.stringify(socket)}`));
    // A stale socket file, as a crashed daemon leaves it: bound, then closed without unlink.
    const stale = createUnixSocket();
    mkdirSync(join(tmp.dir, 'run'), { recursive: true });
    bindUnix(stale, socket);
    stale.close();

    let err = '';
    const d = track(spawn(process.execPath, [ENTRY, 'daemon', '--config', configs[0]], { stdio: ['ignore', 'ignore', 'pipe'] }));
    d.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
    const exited = new Promise<number | null>((res) => d.once('exit', (code) => res(code)));
    const sock = await until('daemon answers', async () => ClusterSocket.open({ path: socket, timeoutMs: 1000 }).catch(() => undefined));
    expect(err).toContain('CRYPTO IS OFF');
    expect(statSync(socket).mode & 0o777).toBe(0o660);
    expect((await sock.localNode()).nodeId).toBe(1);
    await sock.close();

    const second = spawnSync(process.execPath, [ENTRY, 'daemon', '--config', configs[0]], { encoding: 'utf8', timeout: 60_000 });
    expect(second.status).toBe(1);
    expect(second.stderr).toContain('EADDRINUSE');

    d.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(socket)).toBe(false);
  });

  it('creates a missing socket directory with mode 0750, owner and group from the config', async () => {
    const { configs } = writeLocalCluster({ dir: join(tmp.dir, 'b'), nodes: 1, driver: 'cman', crypto: true, basePort: testPort(48000) + 1 });
    const socket = join(tmp.dir, 'b', 'fresh', 'dir', 'node1.sock');
    // Owner and group by number (as root: nobody/nogroup, else ourselves: chown to yourself is allowed).
    const uid = process.getuid!() === 0 ? 65534 : process.getuid!();
    const gid = process.getuid!() === 0 ? 65534 : process.getgid!();
    writeFileSync(configs[0], readFileSync(configs[0], 'utf8').replace(/^socket = .*$/m,
      `socket = ${JSON.stringify(socket)}\nsocket_owner = ${uid}\nsocket_group = ${gid}`));
    const d = track(spawn(process.execPath, [ENTRY, 'daemon', '--config', configs[0]], { stdio: 'ignore' }));
    const exited = new Promise<number | null>((res) => d.once('exit', (code) => res(code)));
    await until('socket exists', () => existsSync(socket));
    const dir = statSync(join(tmp.dir, 'b', 'fresh', 'dir'));
    expect(dir.mode & 0o777).toBe(0o750);
    expect([dir.uid, dir.gid]).toEqual([uid, gid]);
    await until('socket chowned', () => statSync(socket).uid === uid);
    expect(statSync(socket).gid).toBe(gid);
    d.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('refuses a bad config, naming the file and the key', () => {
    const bad = join(tmp.dir, 'bad.toml');
    writeFileSync(bad, '[node]\nid = 1\nsocket = "/tmp/x.sock"\n[cluster]\ndriver = "nosuch"\nnodes = [ { id = 1, addr = "127.0.0.1:47503" } ]\n');
    const r = spawnSync(process.execPath, [ENTRY, 'daemon', '--config', bad], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(bad);
    expect(r.stderr).toContain('driver');
  });
});
