// Proves the command line's promises that need no cluster: --version, help COMMAND, usage errors
// that say the fix and exit 2 without hanging (an empty group, a busy port for `up`, a bad --opt
// for `sim`), keygen's advice for a missing directory, and `daemon --check`: exit 0 with a summary
// of a good file (host names resolved), exit 1 with every error of a bad one.
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { UsageError } from './command.ts';
import { DAEMON_ENTRY, freePort } from './local-cluster.ts';
import { writeKeyFile } from '../core/crypto/keyfile.ts';

const dir = mkdtempSync(join(tmpdir(), 'afc-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The real bin, as a user runs it; a hang fails the test (timeout) instead of passing. */
function afc(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [DAEMON_ENTRY, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('afcluster command line', () => {
  it('--version, help COMMAND, and an unknown command', () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(afc(['--version'])).toMatchObject({ status: 0, stdout: `afcluster ${version}\n` });
    const help = afc(['help', 'send']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: afcluster send GROUP MESSAGE/);
    expect(help.stdout).toContain('--file FILE');
    const unknown = afc(['help', 'sned']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "sned" \(did you mean "send"\?\)/);
  });

  it('an empty group name is a usage error that exits at once; daemon --help points at the config reference', () => {
    const listen = afc(['listen', '', '--socket', join(dir, 'no.sock')]);
    expect(listen.status).toBe(2);
    expect(listen.stderr).toMatch(/GROUP is empty; give a group name/);
    const help = afc(['daemon', '--help']);
    expect(help.stdout).toContain('docs/CONFIG.md');
    expect(help.stdout).toContain('/etc/afcluster/afcluster.toml');
    expect(help.stdout).not.toMatch(/see README/);
  });

  it('daemon --check: a good file (with a host name) exits 0 and says what it configures; a bad one lists every error and exits 1', () => {
    const key = join(dir, 'authkey');
    writeKeyFile(key, { force: true });
    const good = join(dir, 'good.toml');
    writeFileSync(good, `[node]\nid = 2\n[cluster]\nname = "lab"\nnodes = [\n  { id = 1, addr = "127.0.0.1:7405" },\n  { id = 2, addr = "localhost:7406", name = "two" },\n]\n[crypto]\nkey_file = "authkey"\n`);
    const ok = afc(['daemon', '--check'], { AFCLUSTER_CONFIG: good });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain(`${good}: OK`);
    expect(ok.stdout).toContain('node 2 (two), listening on UDP 127.0.0.1:7406');
    expect(ok.stdout).toContain(`crypto: on, key ${key}`);
    const bad = join(dir, 'bad.toml');
    writeFileSync(bad, `[node]\nid = 3\n[cluster]\nnodes = [ { id = 1, addr = "no-such-host.invalid" }, { id = 2, addr = "10.0.0.2:99999" } ]\n[limits]\nsockets_max = 0\n`);
    const no = afc(['daemon', '--check', '--config', bad]);
    expect(no.status).toBe(1);
    expect(no.stderr).toContain(`${bad}: cluster.nodes[1].addr = "10.0.0.2:99999": expected an address "host:port"`);
    expect(no.stderr).toContain(`${bad}: limits.sockets_max = 0: expected an integer from 1 to 1000000`);
    const unresolved = join(dir, 'unresolved.toml');
    writeFileSync(unresolved, `[node]\nid = 1\n[cluster]\nnodes = [ { id = 1, addr = "127.0.0.1" }, { id = 2, addr = "no-such-host.invalid" } ]\n`);
    const dns = afc(['daemon', '--check', '--config', unresolved]);
    expect(dns.status).toBe(1);
    expect(dns.stderr).toMatch(/cluster.nodes\[1\].addr = "no-such-host.invalid:5405": cannot resolve host "no-such-host.invalid"/);
  });

  it("client commands find this machine's daemon by the socket its config names", async () => {
    const { configuredSocket } = await import('./target.ts');
    const file = join(dir, 'machine.toml');
    writeFileSync(file, `[node]\nid = 1\nsocket = "/run/afc-custom/node.sock"\n[cluster]\nnodes = [ { id = 1, addr = "127.0.0.1" } ]\n`);
    expect(configuredSocket({ AFCLUSTER_CONFIG: file })).toBe('/run/afc-custom/node.sock');
    expect(configuredSocket({ AFCLUSTER_CONFIG: join(dir, 'none.toml') })).toBe('/run/afcluster/afcluster.sock');
  });

  it('in process: keygen names a missing directory, sim --opt says the key and form, up names a busy port and --port', async () => {
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const keygen = (await import('./cmd-keygen.ts')).command;
    await expect(keygen.run(['--out', '/nonexistent-afc-dir/k'])).rejects.toThrow(
      '/nonexistent-afc-dir/k: cannot create the key file: the directory /nonexistent-afc-dir does not exist; create it first (mkdir -p /nonexistent-afc-dir)');
    const sim = (await import('./cmd-sim.ts')).command;
    const err = await sim.run(['--driver', 'totem', '--opt', 'token_ms=abc']).catch((e: Error) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain('--opt: token_ms = "abc": expected an integer from 10 to 600000');
    expect((err as Error).message).not.toContain('"code"');
    const port = await freePort(1);
    const holder = createSocket('udp4');
    await new Promise<void>((res) => holder.bind(port, '127.0.0.1', () => res()));
    try {
      const up = (await import('./cmd-up.ts')).command;
      await expect(up.run(['--nodes', '1', '--port', String(port)])).rejects.toThrow(
        `UDP port ${port} is already in use on 127.0.0.1 (another "afcluster up", or a daemon, runs there); choose another port: afcluster up --port ${port + 100}`);
    } finally {
      holder.close();
      vi.restoreAllMocks();
    }
  });
});
