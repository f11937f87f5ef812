// The bundle in dist/ runs the real CLI without tsx, and the bin's rule runs it only while no input changed since the build.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain JavaScript module without declarations (it runs before any TypeScript can)
import { bundleEntry, buildBundle, ROOT } from './build.mjs';

type Manifest = { started: number; inputs: string[] };
const entryOf = bundleEntry as (root?: string, dist?: string, env?: Record<string, string | undefined>) => string | undefined;

describe('bundle', () => {
  // Inside the checkout (not /tmp): the bundle finds its externals in the project's node_modules.
  const dir = mkdtempSync(join(ROOT, 'dist.tmp-test-'));
  const dist = join(dir, 'dist');
  let entry = '';
  const manifest = (): Manifest => JSON.parse(readFileSync(join(dist, 'build.json'), 'utf8')) as Manifest;

  beforeAll(async () => { entry = await (buildBundle as (root: string, dist: string) => Promise<string>)(ROOT, dist); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the CLI: every command loads, and the daemon reports a bad config as the sources do', () => {
    const help = spawnSync(process.execPath, [entry, '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(help.status).toBe(0);
    for (const name of ['keygen', 'daemon', 'up', 'send', 'listen', 'bench']) expect(help.stdout).toContain(`  ${name} `);
    const bad = join(dir, 'bad.toml');
    writeFileSync(bad, '[node]\nid = "x"\n');
    const daemon = spawnSync(process.execPath, [entry, 'daemon', '--config', bad], { encoding: 'utf8', timeout: 60_000 });
    expect(daemon.status).toBe(1);
    expect(daemon.stderr).toContain('bad.toml');
    expect(daemon.stderr).not.toContain('ERR_MODULE_NOT_FOUND');
  });

  it('records its inputs: the sources it bundled, this build script and package.json', () => {
    const { inputs } = manifest();
    expect(inputs).toEqual(expect.arrayContaining(['tools/main.ts', 'tools/cmd-daemon.ts', 'core/af/daemon.ts', 'tools/build.mjs', 'package.json']));
    expect(inputs.some((f) => f.startsWith('drivers/totem/'))).toBe(true);
  });

  it('is fresh while every input is older than the build, stale once one is newer or gone; without sources, always the bundle', () => {
    // A tree of its own with chosen mtimes: the project's files may be edited while this runs.
    const root = join(dir, 'rule');
    const out = join(root, 'dist');
    mkdirSync(out, { recursive: true });
    mkdirSync(join(root, 'tools'));
    writeFileSync(join(root, 'tools/main.ts'), ''); // a checkout: its sources are there
    for (const f of ['a.ts', 'b.ts']) { writeFileSync(join(root, f), ''); utimesSync(join(root, f), 1000, 1000); }
    writeFileSync(join(out, 'afcluster.mjs'), '');
    const write = (m: Manifest): void => writeFileSync(join(out, 'build.json'), JSON.stringify(m));
    const built: Manifest = { started: 2_000_000, inputs: ['a.ts', 'b.ts'] }; // 2000 s, after both
    write(built);
    expect(entryOf(root, out, {})).toBe(join(out, 'afcluster.mjs'));
    expect(entryOf(root, out, { AFCLUSTER_TSX: '1' })).toBeUndefined();
    utimesSync(join(root, 'b.ts'), 2000, 2000); // edited the very moment the build began
    expect(entryOf(root, out, {})).toBeUndefined();
    utimesSync(join(root, 'b.ts'), 1000, 1000);
    write({ ...built, inputs: [...built.inputs, 'gone.ts'] });
    expect(entryOf(root, out, {})).toBeUndefined();
    writeFileSync(join(out, 'build.json'), '{"started": 1'); // half-written manifest
    expect(entryOf(root, out, {})).toBeUndefined();
    write(built);
    rmSync(join(out, 'afcluster.mjs'));
    expect(entryOf(root, out, {})).toBeUndefined();
    // An installed package has the bundle and no sources: it runs the bundle.
    writeFileSync(join(out, 'afcluster.mjs'), '');
    rmSync(join(root, 'tools'), { recursive: true });
    utimesSync(join(root, 'b.ts'), 2000, 2000);
    expect(entryOf(root, out, {})).toBe(join(out, 'afcluster.mjs'));
    rmSync(join(out, 'afcluster.mjs'));
    expect(entryOf(root, out, {})).toBeUndefined();
  });
});
