// Proves the lock service over real daemons: the consistency drill finds zero double grants and
// zero disagreements under totem (and the cman run is reported as measured), and
// `afcluster lock` excludes, passes on the exit status, fails --try while held, and a holder
// killed with -9, or whose node's daemon is killed, has its lock released to the next waiter.
import { EXIT_LOST } from '../../tools/cmd-lock.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDrill } from '../../tools/drill/run.ts';
import { tempDir, testPort, until } from './bridge-helpers.ts';
import { TestCluster, track } from './cluster.ts';

const ENTRY = resolve(import.meta.dirname, '../../tools/afcluster.mjs');
const SEED = Number(process.env.DRILL_SEED ?? Math.floor(Math.random() * 2 ** 31));

describe('the consistency drill on real daemons', () => {
  it('totem: zero double grants and zero disagreements, with a late joiner and a worker killed -9 halfway', async () => {
    console.log(`drill seed ${SEED} (DRILL_SEED=${SEED} replays the workers' choices; process and UDP timing vary)`);
    const out = await runDrill({ driver: 'totem', nodes: 3, workers: 6, late: 1, crash: 1, seconds: 4, seed: SEED, port: testPort(56000) });
    console.log(`totem drill: ${JSON.stringify(out.report)}`);
    expect(out.daemonFailures).toEqual([]);
    expect(out.crashed).toHaveLength(1);
    expect(out.workers.map((w) => w.error)).toEqual(Array(6).fill(undefined));
    expect(out.workers.filter((w) => w.observer.includes('late')).map((w) => w.table.snapshotsInstalled)).toEqual([1]);
    expect(out.report.observers).toBe(6);
    expect(out.report.pairsCompared).toBe(15);
    expect(out.report.grants).toBeGreaterThan(100);
    expect(out.report.doubleGrants).toBe(0);
    expect(out.report.disagreements).toBe(0);
  });

  it('cman: the same drill runs and its counts are reported as measured', async () => {
    const out = await runDrill({ driver: 'cman', nodes: 3, workers: 6, seconds: 2, seed: SEED, port: testPort(56000) + 1 });
    console.log(`cman drill (measured, not asserted): double grants ${out.report.doubleGrants}, disagreements ${out.report.disagreements} of ${out.report.pairsCompared} pairs; ${JSON.stringify(out.report.examples.slice(0, 3))}`);
    expect(out.order).toBe('fifo');
    expect(out.report.observers).toBe(6);
  });
});

describe('afcluster lock on a totem cluster', () => {
  const cluster = new TestCluster({ nodes: 3, driver: 'totem', basePort: testPort(58000) });
  const tmp = tempDir('afc-lock-');
  const file = (name: string): string => join(tmp.dir, name);
  // Each lock client binds its socket in the test's temp dir: one killed by SIGKILL cannot remove
  // it, and it goes with the dir, not into /tmp.
  const lock = (node: number, args: string[], opts: { detached?: boolean } = {}): ChildProcess =>
    track(spawn(process.execPath, [ENTRY, 'lock', 'demo', '--socket', cluster.node(node).socket, ...args], {
      stdio: ['ignore', 'inherit', 'inherit'], detached: opts.detached, env: { ...process.env, XDG_RUNTIME_DIR: tmp.dir },
    }));
  const exited = (p: ChildProcess): Promise<number | null> =>
    p.exitCode !== null || p.signalCode !== null ? Promise.resolve(p.exitCode) : new Promise((r) => p.once('exit', (code) => r(code)));

  beforeAll(async () => { await cluster.start(); });
  afterAll(async () => {
    await cluster.stop();
    tmp.cleanup();
  });

  it('runs commands one at a time and passes on their exit status', async () => {
    const log = file('order.log');
    const body = `echo "start $1" >> ${log}; sleep 0.2; echo "end $1" >> ${log}; exit 7`;
    const procs = [1, 2, 3].map((n) => lock(n, ['--', 'sh', '-c', body, 'sh', `n${n}`]));
    expect(await Promise.all(procs.map(exited))).toEqual([7, 7, 7]);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(6);
    for (let i = 0; i < 6; i += 2) expect(lines[i + 1]).toBe(lines[i].replace('start', 'end'));
  });

  it('--try fails at once while another node holds the lock', async () => {
    const holder = lock(1, ['--', 'sh', '-c', `touch ${file('held')}; while [ ! -e ${file('release')} ]; do sleep 0.05; done`]);
    await until('the holder runs', () => existsSync(file('held')), 30_000);
    expect(await exited(lock(2, ['--try', '--', 'true']))).toBe(1);
    writeFileSync(file('release'), '');
    expect(await exited(holder)).toBe(0);
    expect(await exited(lock(2, ['--try', '--', 'true']))).toBe(0);
  });

  it('a holder killed with -9 loses the lock to the next waiter at the membership event', async () => {
    const holder = lock(1, ['--', 'sh', '-c', `touch ${file('k-held')}; sleep 600`], { detached: true });
    await until('the holder runs', () => existsSync(file('k-held')), 30_000);
    const waiter = lock(2, ['--', 'sh', '-c', `touch ${file('k-got')}`]);
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(file('k-got'))).toBe(false);
    process.kill(-(holder.pid as number), 'SIGKILL'); // the command and its child, as a crash would
    expect(await exited(waiter)).toBe(0);
    expect(existsSync(file('k-got'))).toBe(true);
  });

  it('a holder whose node dies (daemon killed -9) loses the lock to a waiter on another node after the nodedown event and the fencing delay', async () => {
    const holder = lock(3, ['--', 'sh', '-c', `touch ${file('n-held')}; sleep 600`], { detached: true });
    await until('the holder runs', () => existsSync(file('n-held')), 30_000);
    const waiter = lock(2, ['--', 'sh', '-c', `touch ${file('n-got')}`]);
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(file('n-got'))).toBe(false);
    await cluster.kill(3, 'SIGKILL');
    expect(await exited(waiter)).toBe(0);
    expect(existsSync(file('n-got'))).toBe(true);
    // The holder notices its daemon is gone (the socket's keepalive), stops its command (SIGTERM)
    // and says it lost the lock.
    expect(await exited(holder)).toBe(EXIT_LOST);
    try { process.kill(-(holder.pid as number), 'SIGKILL'); } catch { /* already gone */ }
  });
});
