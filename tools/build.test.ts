// The bundle in dist/ runs the real CLI without tsx, and the bin's rule runs it only while no input changed since the build.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  const rewrite = (m: Manifest): void => writeFileSync(join(dist, 'build.json'), JSON.stringify(m));

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

  it('is fresh right after the build, and stale once any input is newer than the build or gone', () => {
    const fresh = manifest();
    expect(entryOf(ROOT, dist, {})).toBe(entry);
    rewrite({ ...fresh, started: 0 }); // every input now counts as modified after the build began
    expect(entryOf(ROOT, dist, {})).toBeUndefined();
    rewrite({ ...fresh, inputs: [...fresh.inputs, 'tools/no-such-file.ts'] });
    expect(entryOf(ROOT, dist, {})).toBeUndefined();
    rewrite(fresh);
    expect(entryOf(ROOT, dist, { AFCLUSTER_TSX: '1' })).toBeUndefined();
    writeFileSync(join(dist, 'build.json'), '{"started": 1'); // half-written manifest
    expect(entryOf(ROOT, dist, {})).toBeUndefined();
    rewrite(fresh);
    expect(entryOf(ROOT, dist, {})).toBe(entry);
  });
});
