// Proves key files are written 0600 with 32 random bytes, never overwritten without force, and refused when group/other can read them or their length is wrong.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readKeyFile, writeKeyFile } from './keyfile.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'afc-key-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('key files', () => {
  it('writes 32 random bytes with mode 0600 and reads them back', () => {
    const p = join(dir, 'authkey');
    writeKeyFile(p);
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(readFileSync(p).length).toBe(32);
    expect(Buffer.from(readKeyFile(p))).toEqual(readFileSync(p));
    const q = join(dir, 'other');
    writeKeyFile(q);
    expect(readFileSync(q)).not.toEqual(readFileSync(p));
  });

  it('refuses to overwrite an existing key unless forced', () => {
    const p = join(dir, 'authkey');
    writeKeyFile(p);
    const first = readFileSync(p);
    expect(() => writeKeyFile(p)).toThrow(/already exists.*--force/);
    expect(readFileSync(p)).toEqual(first);
    chmodSync(p, 0o644);
    writeKeyFile(p, { force: true });
    expect(readFileSync(p)).not.toEqual(first);
    expect(statSync(p).mode & 0o777).toBe(0o600);
  });

  it('refuses a key group or others can read, saying how to fix it', () => {
    const p = join(dir, 'authkey');
    writeKeyFile(p);
    for (const mode of [0o640, 0o604, 0o660]) {
      chmodSync(p, mode);
      expect(() => readKeyFile(p)).toThrow(`EACCES: ${p}: key file has mode 0${mode.toString(8)}, so group or others can read or change it; fix it with: chmod 600 ${p}`);
    }
    chmodSync(p, 0o400);
    expect(readKeyFile(p).length).toBe(32);
  });

  it('refuses a key of the wrong length and a missing file', () => {
    const p = join(dir, 'short');
    writeFileSync(p, Buffer.alloc(31), { mode: 0o600 });
    expect(() => readKeyFile(p)).toThrow(/EINVAL: .*short: a key file holds exactly 32 bytes, this one has 31/);
    writeFileSync(p, Buffer.alloc(33), { mode: 0o600 });
    expect(() => readKeyFile(p)).toThrow(/this one has 33/);
    expect(() => readKeyFile(join(dir, 'nope'))).toThrow(/ENOENT: .*nope: no such key file; make one with: afcluster keygen --out/);
  });
});
