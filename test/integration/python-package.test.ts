// Proves clients/python is an installable package that works against real daemons: pip installs
// it from the directory with no index (its build backend is standard library only), and its
// unittest suite, run against the installed copy with two nodes' sockets, passes in full (none
// skipped); `python3 -m afcluster` prints a group's events. Skipped, saying why, without python3
// or pip.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, testPort } from './bridge-helpers.ts';
import { TestCluster } from './cluster.ts';

const PKG = resolve(import.meta.dirname, '../../clients/python');
const python = spawnSync('python3', ['-m', 'pip', '--version'], { encoding: 'utf8' });
const missing = python.error ? 'python3 is not installed' : python.status !== 0 ? `python3 has no pip (${python.stderr.trim()})` : undefined;

describe('clients/python: the afcluster Python package', () => {
  const cluster = new TestCluster({ nodes: 2, driver: 'totem', basePort: testPort(38000) });
  const tmp = tempDir('afc-py-');
  const target = join(tmp.dir, 'site');
  beforeAll(async () => { if (!missing) await cluster.start(); });
  afterAll(async () => { await cluster.stop(); tmp.cleanup(); });

  it('installs with pip (no index), and its tests pass against two real daemons', (ctx) => {
    if (missing) {
      console.log(`SKIPPED the Python package: ${missing}`);
      ctx.skip();
    }
    const pip = spawnSync('python3', ['-m', 'pip', 'install', '--no-index', '--disable-pip-version-check', '--target', target, PKG],
      { encoding: 'utf8', timeout: 120_000, cwd: tmp.dir });
    expect(pip.status, `${pip.stdout}${pip.stderr}`).toBe(0);
    // From the installed copy, not the source tree: cwd is elsewhere and PYTHONPATH names the target.
    const env = { ...process.env, PYTHONPATH: target, AFCLUSTER_SOCKET: cluster.node(1).socket, AFCLUSTER_SOCKET_2: cluster.node(2).socket };
    const where = spawnSync('python3', ['-c', 'import afcluster; print(afcluster.__file__)'], { encoding: 'utf8', env, cwd: tmp.dir });
    expect(where.stdout.trim()).toBe(join(target, 'afcluster', '__init__.py'));
    const tests = spawnSync('python3', ['-m', 'unittest', 'discover', '-s', join(PKG, 'tests'), '-t', join(PKG, 'tests'), '-v'],
      { encoding: 'utf8', timeout: 120_000, env, cwd: tmp.dir });
    expect(tests.status, tests.stderr).toBe(0);
    expect(tests.stderr).toMatch(/Ran 5 tests/);
    expect(tests.stderr).not.toMatch(/skipped/);
    const cli = spawnSync('python3', ['-m', 'afcluster', cluster.node(2).socket, 'py-cli', 'hello', '--timeout', '30'], { encoding: 'utf8', timeout: 60_000, env, cwd: tmp.dir });
    expect(cli.status, cli.stderr).toBe(0);
    const lines = cli.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ type: 'open', self: { nodeId: 2 }, version: 3 });
    expect(lines.filter((l) => l.type === 'message').map((l) => l.text)).toEqual(['hello']);
  });
});
