// The C client (clients/c) against real daemons: the library, its examples and its test program
// compiled with -std=c99 -Wall -Wextra -Werror (and again with AddressSanitizer and UBSan), then
// run on loopback daemons next to a TypeScript ClusterSocket in the same group. Both must see the
// same messages (200 KiB ones included) in the same order. The daemons' send queue is tiny, so
// the C client's pipelined sends meet EAGAIN, the fence, WRITABLE and RESUME all the time.
// Skipped, saying so, where no C compiler or make exists.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSocket } from '../../sockapi/client.ts';
import type { SocketEvent } from '../../core/api/types.ts';
import { eventToLine } from '../../tools/cmd-listen.ts';
import { tempDir, testPort } from './bridge-helpers.ts';
import { TestCluster, track } from './cluster.ts';
import { freePort } from '../../tools/local-cluster.ts';

const CDIR = resolve(import.meta.dirname, '../../clients/c');
const CC = process.env.CC || 'cc';
const SANITIZE = '-fsanitize=address,undefined';

const works = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const HAVE_CC = works(CC, ['--version']) && works('make', ['--version']);
if (!HAVE_CC) console.warn(`c-client.test.ts: skipped: no C compiler (${CC}) or no make on this machine`);

/** Can this compiler build and run a sanitized program? (Some lack libasan/libubsan.) */
function sanitizersWork(): boolean {
  if (!HAVE_CC) return false;
  const tmp = tempDir('afc-cprobe-');
  try {
    const exe = join(tmp.dir, 'probe');
    const r = spawnSync(CC, ['-x', 'c', '-', SANITIZE, '-o', exe], { input: 'int main(void) { return 0; }\n' });
    return r.status === 0 && spawnSync(exe, []).status === 0;
  } finally {
    tmp.cleanup();
  }
}
const SANITIZERS = sanitizersWork();
if (HAVE_CC && !SANITIZERS) console.warn(`c-client.test.ts: the sanitizer run is skipped: ${CC} cannot build and run a ${SANITIZE} program here`);

/** make -C clients/c into `out`; throws with the compiler's output when it fails. */
function build(out: string, cflags: string, ldflags = ''): void {
  const r = spawnSync('make', ['-C', CDIR, `O=${out}`, 'WARNINGS=-Wall -Wextra -Werror', `CFLAGS=${cflags}`, `LDFLAGS=${ldflags}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make in ${CDIR} (CFLAGS=${cflags}) failed:\n${r.stdout}\n${r.stderr}`);
}

interface Run { code: number | null; lines: string[]; stderr: string; pid: number }

/** A C program whose stdout lines are collected; `onLine` sees each as it comes. */
function runC(exe: string, args: string[], onLine: (l: string) => void = () => {}): { pid: number; done: Promise<Run> } {
  const p = track(spawn(exe, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1' },
  }));
  const lines: string[] = [];
  let stderr = '';
  p.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  createInterface({ input: p.stdout! }).on('line', (l) => { lines.push(l); onLine(l); });
  const done = new Promise<Run>((res) => p.once('close', (code) => res({ code, lines, stderr, pid: p.pid! })));
  return { pid: p.pid!, done };
}

/** The C test program's message i of n (clients/c/test/afc-order-test.c, make_message). */
function cMessage(i: number, n: number, largeEvery: number, largeSize: number, lastSize: number): Uint8Array {
  // A container; alone; the largest SEND and the smallest in parts up to version 4; and under version 5.
  const edges = [0, 65513, 65514, 65525, 65526, 196598, 196599];
  const len = lastSize > 0 && i === n - 1 ? lastSize
    : largeEvery > 0 && i % largeEvery === largeEvery - 1 ? largeSize : i >= 1 && i <= 7 ? edges[i - 1] : (i * 37) % 1500;
  const b = new Uint8Array(len);
  for (let j = 0; j < len; j++) b[j] = (i * 7 + j * 13) & 0xff;
  const prefix = new TextEncoder().encode(`c-${i}:`);
  b.set(prefix.subarray(0, Math.min(len, prefix.length)));
  return b;
}

function fnv1a(b: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const x of b) h = Math.imul(h ^ x, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

const who = (m: { nodeId: number; pid: number; port: number }): string => `${m.nodeId}/${m.pid}/${m.port}`;
const line = (sender: string, order: string, data: Uint8Array): string => `message ${sender} ${order} ${data.length} ${fnv1a(data)}`;

/** The next event, or a failure naming what was awaited. */
async function next(it: AsyncIterator<SocketEvent>, what: string, ms = 30_000): Promise<SocketEvent> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`no event within ${ms} ms while waiting for ${what}`)), ms); });
  try {
    const r = await Promise.race([it.next(), timeout]);
    if (r.done) throw new Error(`the event stream ended while waiting for ${what}`);
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `p`, unless the C program fails first: then a failure carrying its exit status and stderr. A
 * program that ends well (status 0) may finish before this side has read everything.
 */
function unlessExited<T>(p: Promise<T>, c: { done: Promise<Run> }): Promise<T> {
  const failed = c.done.then((run): Promise<never> | Promise<T> => run.code === 0 ? p
    : Promise.reject(new Error(`the C program exited (status ${run.code}) first:\n${run.stderr}`)));
  return Promise.race([p, failed]);
}

/** Until a membership event in which a member of process `pid` joined; returns it. */
async function joinOf(it: AsyncIterator<SocketEvent>, pid: number, what: string): Promise<SocketEvent> {
  for (;;) {
    const ev = await next(it, what);
    if (ev.type === 'membership' && ev.joined.some((c) => c.member.pid === pid)) return ev;
  }
}

describe.skipIf(!HAVE_CC)('the C client (clients/c) against real daemons', () => {
  let tmp: ReturnType<typeof tempDir> | undefined;
  let plain = '', asan = '';
  // Made in beforeAll: a skipped or filtered run writes no cluster directory.
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = new TestCluster({
      nodes: 3, driver: 'totem', basePort: testPort(50000), crypto: false,
      driverSections: { totem: { send_queue_max: 16 } },
    });
    tmp = tempDir('afc-cbuild-');
    plain = join(tmp.dir, 'plain');
    asan = join(tmp.dir, 'asan');
    build(plain, '-O2 -g');
    if (SANITIZERS) build(asan, `-O1 -g -fno-omit-frame-pointer ${SANITIZE}`, SANITIZE);
    await cluster.start();
  });
  afterAll(async () => {
    await cluster?.stop();
    tmp?.cleanup();
  });

  /**
   * The C program on node 1 and a TypeScript socket on node 2 send at once into `group`; both
   * must then hold the same message sequence, each sender's messages in its own order.
   */
  async function sameOrder(dir: string, group: string, extra: string[] = []): Promise<void> {
    // The C client's last message has more parts (16) than the daemon's socket queue holds
    // datagrams (net.unix.max_dgram_qlen, 10 by default): its parts meet a full queue, and must still go.
    const C_SEND = 240, C_LARGE_EVERY = 40, LARGE = 200 * 1024, LAST = 1_000_000, TS_SEND = 60;
    const tsMessages = Array.from({ length: TS_SEND }, (_, i) => i % 20 === 10
      ? new Uint8Array(LARGE).fill(0x30 + (i % 10))
      : new TextEncoder().encode(`ts-${i}:${'t'.repeat((i * 53) % 900)}`));
    const ts = await ClusterSocket.open({ path: cluster.node(2).socket });
    try {
      await ts.bind(group);
      const it = ts[Symbol.asyncIterator]();
      const c = runC(join(dir, 'afc-order-test'), [cluster.node(1).socket, group, '--send', `${C_SEND}`, '--expect', `${C_SEND + TS_SEND}`,
        '--large-every', `${C_LARGE_EVERY}`, '--large-size', `${LARGE}`, '--last-size', `${LAST}`, '--timeout', '90', ...extra]);
      const joined = await unlessExited(joinOf(it, c.pid, 'the C client to join'), c);
      const cSelf = joined.type === 'membership' ? who(joined.joined.find((x) => x.member.pid === c.pid)!.member) : '';
      const sent = Promise.all(tsMessages.map((m) => ts.send(m)));
      const seen: string[] = [];
      while (seen.length < C_SEND + TS_SEND) {
        const ev = await unlessExited(next(it, `message ${seen.length + 1} of ${C_SEND + TS_SEND}`), c);
        if (ev.type === 'message') seen.push(line(who(ev.sender), ev.order, ev.data));
        if (ev.type === 'error') throw new Error(`TypeScript socket: ${ev.code}: ${ev.message}`);
      }
      await sent;
      const run = await c.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.lines.at(-1)).toBe('done');
      const cSeen = run.lines.filter((l) => l.startsWith('message '));
      // The same messages in the same order at both ends...
      expect(cSeen).toEqual(seen);
      // ...each sender's in the order it sent them (the C client's large ones and the edges of one datagram included).
      const tsSelf = who(ts.self);
      expect(seen.filter((l) => l.startsWith(`message ${cSelf} `))).toEqual(
        Array.from({ length: C_SEND }, (_, i) => line(cSelf, 'agreed', cMessage(i, C_SEND, C_LARGE_EVERY, LARGE, LAST))));
      expect(seen.filter((l) => l.startsWith(`message ${tsSelf} `))).toEqual(tsMessages.map((m) => line(tsSelf, 'agreed', m)));
      // The C client says 5 where the daemon takes it (on its native sockets; its unix-dgram fallback
      // answers 5 with EPROTO), as the TypeScript socket did: that one's version stands for the daemon's.
      const asked = extra.includes('--version') ? Number(extra[extra.indexOf('--version') + 1]) : 5;
      const version = Math.min(asked, ts.protocolVersion);
      expect(run.lines[0]).toMatch(new RegExp(`^open ${cSelf} totem ${version}$`));
      // afc_quorum: the state and the three configured nodes under version 3; EOPNOTSUPP below it.
      expect(run.lines[1]).toBe(version >= 3
        ? 'quorum votes=3 expected=3 quorum=2 flags=quorate nodes=1:1:1,2:1:1,3:1:1'
        : 'quorum EOPNOTSUPP');
      expect(run.lines).toContain('members 2');
      // The C client's own join, as it saw it: a regular configuration listing both (under version 3
      // with its view id, a view of the event's own ring, and the node's quorum state; under 4 with
      // who each member is: both this test's user, the pids verified).
      const own = run.lines.find((l) => l.startsWith('membership '));
      const ids = `${process.getuid!()}:${process.getgid!()}:1`;
      expect(own).toMatch(new RegExp(`^membership regular (\\d+\\.\\d+) 2 \\+${cSelf} join${version >= 3
        ? ' view \\1/\\d+ votes=3 expected=3 quorum=2 flags=quorate' : ''}${version >= 4 ? ` ids=${ids},${ids}` : ''}$`));
    } finally {
      await ts.close();
    }
  }

  it('a C client and a TypeScript client see the same messages in the same order, 200 KiB ones included', async () => {
    await sameOrder(plain, 'c-order');
  });

  it('the same over protocol version 4 (64 KiB datagrams: a message of 64 KiB and more in parts)', async () => {
    await sameOrder(plain, 'c-order-v4', ['--version', '4']);
  });

  it('the same over protocol version 3 (no identities; parts not fenced)', async () => {
    await sameOrder(plain, 'c-order-v3', ['--version', '3']);
  });

  it('a daemon on the unix-dgram fallback (64 KiB datagrams) answers HELLO 5 with EPROTO, and the C client goes on at 4', async () => {
    const saved = process.env.AFCLUSTER_UNIX_SOCKETS;
    process.env.AFCLUSTER_UNIX_SOCKETS = 'unix-dgram'; // read by the daemon this starts, at its start
    const fallback = new TestCluster({ nodes: 1, driver: 'totem', basePort: await freePort(1), crypto: false });
    try {
      await fallback.start();
    } finally {
      if (saved === undefined) delete process.env.AFCLUSTER_UNIX_SOCKETS; else process.env.AFCLUSTER_UNIX_SOCKETS = saved;
    }
    try {
      const run = await runC(join(plain, 'afc-order-test'), [fallback.node(1).socket, 'c-fallback', '--open-only']).done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.lines[0]).toMatch(/^open 1\/\d+\/\d+ totem 4$/);
    } finally {
      await fallback.stop();
    }
  });

  it('the same over protocol version 2 (no view ids, no quorum)', async () => {
    await sameOrder(plain, 'c-order-v2', ['--version', '2']);
  });

  it('the same over protocol version 1 (no batches, one send in flight)', async () => {
    await sameOrder(plain, 'c-order-v1', ['--version', '1']);
  });

  it.skipIf(!SANITIZERS)('the same under AddressSanitizer and UBSan', async () => {
    await sameOrder(asan, 'c-order-asan');
  });

  it('afc-listen prints the lines afcluster listen prints', async () => {
    const group = 'c-listen';
    const ts = await ClusterSocket.open({ path: cluster.node(2).socket });
    const sender = await ClusterSocket.open({ path: cluster.node(1).socket });
    try {
      await ts.bind(group);
      const it = ts[Symbol.asyncIterator]();
      const listen = runC(join(SANITIZERS ? asan : plain, 'afc-listen'), ['--socket', cluster.node(3).socket, '--count', '3', group]);
      const events: SocketEvent[] = [await unlessExited(joinOf(it, listen.pid, 'afc-listen to join'), listen)];
      await sender.bind(group);
      const texts = [new TextEncoder().encode('hello'), new Uint8Array([0, 1, 0xff]), new TextEncoder().encode('tab\tand ✓\nnewline')];
      for (const t of texts) await sender.send(t);
      while (events.filter((e) => e.type === 'message').length < texts.length) events.push(await next(it, 'the messages'));
      const run = await listen.done;
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain(`listening on ${group} as 3/${listen.pid}/`);
      expect(run.lines.join('\n')).toBe(events.map(eventToLine).join('\n'));
    } finally {
      await sender.close();
      await ts.close();
    }
  });

  it('afc-bench measures one sender by size (a size over one datagram, in parts, too)', async () => {
    const probe = await ClusterSocket.open({ path: cluster.node(1).socket }); // the version node 1's daemon takes
    const version = probe.protocolVersion;
    await probe.close();
    const run = await runC(join(SANITIZERS ? asan : plain, 'afc-bench'), ['--socket', cluster.node(1).socket, '--seconds', '0.2', '--sizes', '100,70000,250000', '--group', 'c-bench']).done;
    expect(run.code, run.stderr).toBe(0);
    expect(run.lines[0]).toMatch(new RegExp(`^afc-bench: node 1 \\(driver totem, protocol ${version}\\), group c-bench, agreed order`));
    expect(run.lines[1].trim().split(/\s+/)).toEqual(['size', 'writes', 'seconds', 'TP/s', 'MB/s']);
    expect(run.lines.slice(2).map((l) => l.trim().split(/\s+/)[0])).toEqual(['100', '70000', '250000']);
    for (const l of run.lines.slice(2)) expect(l).toMatch(/^\s*\d+\s+\d+\s+\d+\.\d\d\s+\d+\s+\d+\.\d\d$/);
  });

  // Last: it stops node 3's daemon.
  it('afc-listen ends with ECONNREFUSED and exit status 1 when its daemon stops', async () => {
    const ts = await ClusterSocket.open({ path: cluster.node(2).socket });
    try {
      await ts.bind('c-stop');
      const listen = runC(join(SANITIZERS ? asan : plain, 'afc-listen'), ['--socket', cluster.node(3).socket, 'c-stop']);
      await joinOf(ts[Symbol.asyncIterator](), listen.pid, 'afc-listen to join');
      await cluster.kill(3, 'SIGTERM');
      const run = await listen.done;
      expect(run.code, run.stderr).toBe(1);
      expect(run.lines.at(-1)).toMatch(/^error {6}ECONNREFUSED: /);
    } finally {
      await ts.close();
    }
  });

  it('the header stands alone: C99 -pedantic, and C++ where a C++ compiler exists', () => {
    const header = join(CDIR, 'afcluster.h');
    const c = spawnSync(CC, ['-std=c99', '-Wall', '-Wextra', '-Werror', '-pedantic', '-fsyntax-only', '-x', 'c', header], { encoding: 'utf8' });
    expect(c.status, c.stderr).toBe(0);
    if (works('c++', ['--version'])) {
      const cxx = spawnSync('c++', ['-Wall', '-Wextra', '-Werror', '-fsyntax-only', '-x', 'c++', header], { encoding: 'utf8' });
      expect(cxx.status, cxx.stderr).toBe(0);
    }
    expect(existsSync(join(plain, 'libafcluster.a'))).toBe(true);
  });
});
