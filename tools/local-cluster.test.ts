// tools/local-cluster.ts's promises that no daemon test checks: a process that dies leaves no tracked child and no temp dir behind, its daemons get the bin's V8 flags and environment, a port it picks is free on every node address, and a cluster's files are where its nodes say.
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DAEMON_ENTRY, DAEMON_ENV, DAEMON_V8_FLAGS, freePort, LocalCluster, logTail } from './local-cluster.ts';

const MODULE = new URL('./local-cluster.ts', import.meta.url).href;
const scratch = mkdtempSync(join(tmpdir(), 'afc-lc-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

describe('local-cluster', () => {
  it('kills tracked children and removes registered dirs when the process exits, even by an uncaught error', async () => {
    const dir = mkdtempSync(join(scratch, 'doomed-'));
    const script = `
      import { spawn } from 'node:child_process';
      import { rmSync } from 'node:fs';
      const { track, atExit } = await import(${JSON.stringify(MODULE)});
      const child = track(spawn('sleep', ['60'], { stdio: 'ignore' }));
      atExit(() => rmSync(${JSON.stringify(dir)}, { recursive: true, force: true }));
      console.log(child.pid);
      setTimeout(() => { throw new Error('boom'); }, 50);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    const pid = Number(r.stdout.trim());
    expect(r.status).not.toBe(0);
    expect(pid).toBeGreaterThan(0);
    // SIGKILL is delivered before the parent's exit returns; the kernel reaps the orphan soon after.
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });

  it('starts daemons with the environment and V8 flags of the bin\'s #! line, which node ignores when it runs the file itself', () => {
    const env = '#!/usr/bin/env -S ';
    const shebang = readFileSync(DAEMON_ENTRY, 'utf8').split('\n')[0];
    expect(shebang.startsWith(env)).toBe(true);
    const words = shebang.slice(env.length).trim().split(/\s+/);
    const at = words.indexOf('node');
    expect(Object.fromEntries(words.slice(0, at).map((w) => w.split('=')))).toEqual(DAEMON_ENV);
    expect(words.slice(at + 1)).toEqual([...DAEMON_V8_FLAGS]);
  });

  it('gives a daemon it starts the bin\'s environment, whatever its own', async () => {
    const saved = process.env.MALLOC_ARENA_MAX;
    process.env.MALLOC_ARENA_MAX = '8';
    const c = await LocalCluster.create({ nodes: 1, driver: 'totem', prefix: 'afc-lc-test-env-' });
    try {
      c.startAll();
      const pid = c.node(1).proc?.pid;
      expect(pid).toBeGreaterThan(0);
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      for (const [k, v] of Object.entries(DAEMON_ENV)) expect(environ).toContain(`${k}=${v}`);
    } finally {
      if (saved === undefined) delete process.env.MALLOC_ARENA_MAX; else process.env.MALLOC_ARENA_MAX = saved;
      await c.stop();
    }
  });

  it('picks a UDP port that every node address can bind', async () => {
    const port = await freePort(3);
    const socks = [1, 2, 3].map(() => createSocket('udp4'));
    await Promise.all(socks.map((s, i) => new Promise<void>((res, rej) => { s.once('error', rej); s.bind(port, `127.0.0.${i + 1}`, res); })));
    await Promise.all(socks.map((s) => new Promise<void>((res) => s.close(() => res()))));
  });

  it('writes one config per node into a given dir, keeps it, and names each node its socket and log there', async () => {
    const dir = join(scratch, 'given');
    const c = new LocalCluster({ nodes: 2, driver: 'totem', basePort: 47999, dir });
    expect(c.keepDir).toBe(true);
    expect(c.nodes.map((n) => [n.config, n.socket, n.log])).toEqual([1, 2].map((i) => [join(dir, `node${i}.toml`), join(dir, `node${i}.sock`), join(dir, `node${i}.log`)]));
    expect(c.nodes.every((n) => existsSync(n.config))).toBe(true);
    expect(() => c.node(3)).toThrow(/no node 3/);
    expect(c.logTail(1)).toBe('(no log)');
    expect(logTail(join(dir, 'node1.toml'), 1)).toMatch(/^\S/);
    await c.stop();
    expect(existsSync(dir)).toBe(true);
  });

  it('removes its own temp dir on stop unless told to keep it', async () => {
    const c = await LocalCluster.create({ nodes: 1, driver: 'totem', prefix: 'afc-lc-test-own-' });
    expect(existsSync(c.dir)).toBe(true);
    await c.stop();
    expect(existsSync(c.dir)).toBe(false);
  });
});
