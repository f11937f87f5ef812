// Proves `afcluster up` without a TTY: it starts N daemons, prints how to reach them, and `status`, `listen` and `send` reach its nodes with --node; SIGTERM stops every daemon and removes its record.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir, testPort, until } from './bridge-helpers.ts';
import { track } from './cluster.ts';
import type { UpRecord } from '../../tools/target.ts';

const ENTRY = join(import.meta.dirname, '../../tools/afcluster.mjs');

describe('afcluster up', () => {
  const runtime = tempDir('afc-up-rt-');
  const env = { ...process.env, XDG_RUNTIME_DIR: runtime.dir };
  const cli = (...args: string[]) => spawnSync(process.execPath, [ENTRY, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  afterAll(() => runtime.cleanup());

  it('runs a cluster the other commands reach with --node, and stops it on SIGTERM', async () => {
    let out = '';
    const up = track(spawn(process.execPath, [ENTRY, 'up', '--nodes', '2', '--driver', 'cman', '--port', String(testPort(46000))], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    up.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    up.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | null>((res) => up.once('exit', (code) => res(code)));
    await until('up is ready', () => out.includes('Ctrl-C stops every node'), 60_000);
    expect(out).toMatch(/node 1 {2}127\.0\.0\.1 {2}socket \S+node1\.sock/);
    expect(out).toMatch(/node 2 {2}127\.0\.0\.2 {2}socket \S+node2\.sock/);
    const record = JSON.parse(readFileSync(join(runtime.dir, `afcluster-up-${process.getuid!()}`, 'current'), 'utf8')) as UpRecord;
    expect(record.nodes.map((n) => n.id)).toEqual([1, 2]);

    await until('both nodes in one configuration', () => {
      const st = cli('status', '--node', '2', '--json');
      return st.status === 0 && (JSON.parse(st.stdout) as { summary: { members: string } }).summary.members === '1,2';
    });
    let listenOut = '';
    const listen = track(spawn(process.execPath, [ENTRY, 'listen', 'demo', '--node', '1', '--json', '--count', '1'], { env, stdio: ['ignore', 'pipe', 'inherit'] }));
    listen.stdout!.on('data', (d: Buffer) => { listenOut += d.toString(); });
    const listenExit = new Promise<number | null>((res) => listen.once('exit', (code) => res(code)));
    await until('listener bound', () => listenOut.includes('"membership"'));
    const sent = cli('send', 'demo', 'hello from send', '--node', '2');
    expect(sent.status, sent.stderr).toBe(0);
    expect(await listenExit).toBe(0);
    const message = listenOut.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.type === 'message');
    expect(message).toMatchObject({ group: 'demo', text: 'hello from send', sender: { nodeId: 2 } });

    up.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(join(runtime.dir, `afcluster-up-${process.getuid!()}`, 'current'))).toBe(false);
    for (const n of record.nodes) expect(() => process.kill(n.pid, 0)).toThrow();
    expect(existsSync(record.dir)).toBe(false);
  });
});
