// Proves afcluster installs as a package: `npm pack` of the project (its prepack and prepare
// scripts build the JavaScript and the type declarations) gives a tarball with the built files
// and no sources; installed into an empty project it provides `import { ClusterSocket } from
// 'afcluster'` and `afcluster/node`, types a TypeScript consumer can check against, and an
// `afcluster` bin that runs a daemon the installed client talks to. The project is packed from a
// copy, so the checkout's dist/ is never rebuilt under other tests. Dependencies come from the npm
// cache (--offline); when it lacks them they are fetched, and the test is skipped, saying so,
// when the registry cannot be reached.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { signalAndWait, track } from '../../tools/local-cluster.ts';
import { ClusterSocket } from '../../sockapi/client.ts';
import { testPort, until } from '../integration/bridge-helpers.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'afc-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(cmd: string, args: string[], cwd: string, timeout = 180_000): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, npm_config_update_notifier: 'false' } });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

const NETWORK = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|ENETUNREACH|network/i;

describe('the npm package', () => {
  it('packs, installs into an empty project, and works there: import, types, bin and daemon', async (ctx) => {
    // 1. A copy of the project as git sees it (tracked and new files, ignored ones left out).
    const stage = join(work, 'stage');
    const files = run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], ROOT).out.split('\0').filter(Boolean);
    for (const f of files) {
      try {
        mkdirSync(dirname(join(stage, f)), { recursive: true });
        cpSync(join(ROOT, f), join(stage, f));
      } catch { /* deleted in the working tree */ }
    }
    symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'));

    // 2. npm pack: prepack writes the declarations, prepare the bundle and the library.
    const out = join(work, 'out');
    mkdirSync(out);
    const pack = run('npm', ['pack', '--pack-destination', out, '--json'], stage);
    expect(pack.status, pack.out).toBe(0);
    const tarball = join(out, readdirSync(out).find((f) => f.endsWith('.tgz'))!);
    const listing = run('tar', ['tzf', tarball], work).out.split('\n').filter(Boolean);
    for (const f of ['package/package.json', 'package/tools/afcluster.mjs', 'package/dist/afcluster.mjs', 'package/dist/lib/index.mjs',
      'package/dist/lib/node.mjs', 'package/types/sockapi/index.d.ts', 'package/types/sockapi/node.d.ts',
      'package/contrib/systemd/afcluster.service', 'package/docs/CONFIG.md', 'package/core/native/afcluster_native.c']) expect(listing, f).toContain(f);
    expect(listing.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(listing.some((f) => f.startsWith('package/test/'))).toBe(false);

    // 3. An empty project installs the tarball: from the npm cache, else from the registry.
    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    const flags = ['install', '--no-audit', '--no-fund', '--no-package-lock', tarball];
    let install = run('npm', [...flags, '--offline'], app);
    if (install.status !== 0 && /ENOTCACHED/.test(install.out)) {
      console.log('the npm cache lacks some dependencies of afcluster: fetching them from the registry');
      install = run('npm', [...flags, '--prefer-offline'], app);
      if (install.status !== 0 && NETWORK.test(install.out)) {
        console.log(`SKIPPED the package install: the registry cannot be reached and the cache lacks dependencies:\n${install.out.slice(-400)}`);
        ctx.skip();
      }
    }
    expect(install.status, install.out).toBe(0);
    // The install script built the daemon's native helper (malloc_trim) where the package landed.
    expect(existsSync(join(app, 'node_modules/afcluster/core/native/build/Release/afcluster_native.node')), install.out).toBe(true);

    // 4. JavaScript: both entry points load (the native unix-dgram addon included).
    const load = run(process.execPath, ['--input-type=module', '-e',
      "import { ClusterSocket, ClusterError } from 'afcluster'; import { createNode, parseNodeConfig } from 'afcluster/node';"
      + " console.log(typeof ClusterSocket.open, typeof createNode, typeof parseNodeConfig, new ClusterError('EAGAIN', 'x').code);"], app);
    expect(load.out.trim()).toBe('function function function EAGAIN');

    // 5. TypeScript: a consumer type-checks against the declarations, and a wrong call is caught.
    writeFileSync(join(app, 'main.ts'), [
      "import { ClusterSocket, type SocketEvent } from 'afcluster';",
      "import { createNode, type NodeConfig } from 'afcluster/node';",
      'export async function demo(config: NodeConfig): Promise<string[]> {',
      "  const sock = await ClusterSocket.open({ path: '/run/afcluster/afcluster.sock' });",
      "  await sock.bind('demo');",
      "  await sock.send('hello', { order: 'agreed' });",
      "  // @ts-expect-error: send takes bytes or a string",
      '  await sock.send(42);',
      '  const seen: string[] = [];',
      '  for await (const ev of sock) { const e: SocketEvent = ev; seen.push(e.type); break; }',
      '  const node = await createNode({ config });',
      '  await node.close();',
      '  return seen;',
      '}', ''].join('\n'));
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: {
      module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true,
      types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')],
    }, files: ['main.ts'] }));
    const tsc = run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], app);
    expect(tsc.out).toBe('');
    expect(tsc.status).toBe(0);

    // 6. The bin: --version, then a daemon started by it, reached by the installed client.
    const bin = join(app, 'node_modules/.bin/afcluster');
    expect(run(bin, ['--version'], app).out.trim()).toMatch(/^afcluster \d+\.\d+\.\d+$/);
    const keygen = run(bin, ['keygen', '--out', join(app, 'authkey')], app);
    expect(keygen.status, keygen.out).toBe(0);
    const socket = join(app, 'node1.sock');
    writeFileSync(join(app, 'node1.toml'), `[node]\nid = 1\nsocket = "${socket}"\nstate_dir = "state"\n[cluster]\nnodes = [ { id = 1, addr = "127.0.0.1:${testPort(36000)}" } ]\n[crypto]\nkey_file = "authkey"\n`);
    const daemon = track(spawn(bin, ['daemon', '--config', join(app, 'node1.toml')], { cwd: app, stdio: 'ignore' }));
    try {
      await until('the installed daemon answers', () => ClusterSocket.open({ path: socket, timeoutMs: 1000 }).then((s) => s.close().then(() => true), () => false), 60_000);
      const client = run(process.execPath, ['--input-type=module', '-e', [
        "import { ClusterSocket } from 'afcluster';",
        `const s = await ClusterSocket.open({ path: ${JSON.stringify(socket)} });`,
        "await s.bind('pkg'); await s.send('from the package');",
        "for await (const ev of s) if (ev.type === 'message') { console.log(new TextDecoder().decode(ev.data), s.daemon.driver); break; }",
        'await s.close();'].join('\n')], app, 60_000);
      expect(client.out.trim()).toBe('from the package totem');
    } finally {
      await signalAndWait(daemon, 'SIGTERM');
    }
  }, 300_000);
});
