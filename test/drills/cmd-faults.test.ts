// Proves `afcluster faults` is registered, explains itself, and refuses bad options with exit status 2 and a message saying what is expected (no daemons started).
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ENTRY = join(resolve(import.meta.dirname, '../..'), 'tools/afcluster.mjs');
const run = (...args: string[]) => spawnSync(process.execPath, [ENTRY, 'faults', ...args], { encoding: 'utf8', timeout: 60_000 });

describe('afcluster faults', () => {
  it('prints its help, naming every drill and every reported figure', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    for (const word of ['kill-9', 'restart', 'sigstop', 'netns-cable', 'netem-loss', 'netem-delay', 'tbf-shaping', 'missing', 'not everywhere', 'membership']) {
      expect(r.stdout).toContain(word);
    }
  });

  it('refuses an unknown driver and too few nodes', () => {
    const bad = run('--driver', 'tipc');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--driver tipc: expected totem or cman/);
    const few = run('--nodes', '2');
    expect(few.status).toBe(2);
    expect(few.stderr).toMatch(/--nodes 2: expected an integer from 3 to 32/);
  });
});
