// Proves `afcluster keygen` writes a 0600 key readable by readKeyFile, refuses to overwrite without --force, and requires --out.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { command } from './cmd-keygen.ts';
import { readKeyFile } from '../core/crypto/keyfile.ts';

const dir = mkdtempSync(join(tmpdir(), 'afc-keygen-'));
afterEach(() => vi.restoreAllMocks());

describe('afcluster keygen', () => {
  it('writes a key, refuses to overwrite it, replaces it with --force', async () => {
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const out = join(dir, 'authkey');
    expect(await command.run(['--out', out])).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const first = Buffer.from(readKeyFile(out));
    await expect(command.run(['--out', out])).rejects.toThrow(/already exists.*--force/);
    expect(await command.run(['--out', out, '--force'])).toBe(0);
    expect(readFileSync(out)).not.toEqual(first);
    rmSync(dir, { recursive: true, force: true });
  });

  it('requires --out', async () => {
    await expect(command.run([])).rejects.toThrow(/--out FILE is required/);
  });
});
