// Proves sendUnix, the one way the bridge and the client send a datagram, on both socket
// implementations (the native helper's and unix-dgram's): it reports a sent datagram as
// undefined, a full peer queue as EAGAIN (and a later datagram goes once the peer reads), a
// missing peer by its errno's name, and leaves Error.stackTraceLimit as it found it. And that the
// native sockets receive datagrams over 64 KiB whole, gather a send from several arrays, name the
// sender's path, carry an empty datagram, and go on receiving after the kernel reports an error on
// the socket (POLLERR). And that a native build that cannot be used is told
// apart from one that is not there.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bindUnix, connectUnix, createUnixSocket, sendUnix, unixErrorName, unixLargeDatagrams } from './unix.ts';
import { LARGE_DATAGRAM_MAX } from './codec.ts';
import { loadNative, loadNativeAt, NATIVE_PATH } from '../native/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'afc-unix-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each([['native', undefined], ['unix-dgram', 'unix-dgram']] as const)('sendUnix (%s sockets)', (name, impl) => {
  it('sends, reports a full queue as EAGAIN on connected and unconnected sockets, names a missing peer', async (ctx) => {
    if (impl === undefined && !unixLargeDatagrams()) {
      console.log('skipped: the native helper was not built (npm run build:native)');
      ctx.skip();
    }
    const path = join(dir, `peer-${name}.sock`);
    const peer = createUnixSocket({ impl });
    bindUnix(peer, path);
    const received: number[] = [];
    const connected = createUnixSocket({ impl });
    expect(connectUnix(connected, path)).toBeUndefined();
    const unconnected = createUnixSocket({ impl });
    bindUnix(unconnected, join(dir, `from-${name}.sock`));
    try {
      const limit = Error.stackTraceLimit;
      const buf = Buffer.alloc(1000, 7);
      expect(sendUnix(connected, buf)).toBeUndefined();
      // Nobody reads yet: the peer's queue fills, and each socket hears EAGAIN.
      let sent = 1;
      let failure: string | undefined;
      while (sent < 100_000 && (failure = sendUnix(connected, buf)) === undefined) sent++;
      expect(failure).toBe('EAGAIN');
      // The unconnected socket may still have room in the peer's queue (its limit is per sender
      // on some kernels, net.unix.max_dgram_qlen elsewhere): it sends until it too hears EAGAIN.
      let sentUnconnected = 0;
      while (sentUnconnected < 100_000 && (failure = sendUnix(unconnected, buf, path)) === undefined) sentUnconnected++;
      expect(failure).toBe('EAGAIN');
      sent += sentUnconnected;
      expect(Error.stackTraceLimit).toBe(limit);
      expect(sendUnix(unconnected, buf, join(dir, 'nobody.sock'))).toBe('ENOENT');
      // The peer reads: every datagram the sockets were told went arrives.
      peer.on('message', (b) => received.push(b.length));
      await new Promise<void>((resolve, reject) => {
        const t = setInterval(() => { if (received.length >= sent) { clearInterval(t); resolve(); } }, 5);
        setTimeout(() => { clearInterval(t); reject(new Error(`only ${received.length} of ${sent} arrived`)); }, 10_000);
      });
      expect(received.length).toBe(sent);
      expect(received.every((n) => n === 1000)).toBe(true);
    } finally {
      connected.close();
      unconnected.close();
      peer.close();
    }
  });

});

/** Two native sockets bound in `dir` (NAME.sock receives, NAME-from.sock sends); the test is
 *  skipped where the native helper was not built. */
function nativePair(ctx: { skip: () => void }, name: string) {
  if (!unixLargeDatagrams()) {
    console.log('skipped: the native helper was not built (npm run build:native)');
    ctx.skip();
  }
  const path = join(dir, `${name}.sock`);
  const peer = createUnixSocket();
  bindUnix(peer, path);
  const from = createUnixSocket();
  bindUnix(from, join(dir, `${name}-from.sock`));
  return { path, peer, from };
}

describe('native sockets', () => {
  it('receive a 150 kB datagram whole, gather a send, name the sender, carry an empty datagram', async (ctx) => {
    const { path, peer, from } = nativePair(ctx, 'large');
    const anon = createUnixSocket(); // never bound: no path to name
    const got: { data: Buffer; path: string | null }[] = [];
    peer.on('message', (data, rinfo) => got.push({ data, path: rinfo.path }));
    const big = new Uint8Array(150_000).map((_, i) => (i * 13) % 256);
    try {
      expect(sendUnix(from, big, path)).toBeUndefined();
      expect(sendUnix(from, [Uint8Array.of(1, 2, 3), big.subarray(0, 10), new Uint8Array(0), Uint8Array.of(9)], path)).toBeUndefined();
      expect(sendUnix(anon, new Uint8Array(0), path)).toBeUndefined();
      expect(sendUnix(from, Array.from({ length: 17 }, () => Uint8Array.of(1)), path)).toBe('EINVAL'); // at most 16 parts
      await new Promise<void>((resolve, reject) => {
        const t = setInterval(() => { if (got.length >= 3) { clearInterval(t); resolve(); } }, 5);
        setTimeout(() => { clearInterval(t); reject(new Error(`only ${got.length} of 3 arrived`)); }, 10_000);
      });
      expect(got.map((g) => g.data.length)).toEqual([150_000, 14, 0]);
      expect(new Uint8Array(got[0].data)).toEqual(big);
      expect([...got[1].data]).toEqual([1, 2, 3, ...big.subarray(0, 10), 9]);
      expect(got.map((g) => g.path)).toEqual([join(dir, 'large-from.sock'), join(dir, 'large-from.sock'), null]);
    } finally {
      peer.close();
      from.close();
      anon.close();
    }
    // A closed socket answers EBADF, however often it is closed or used.
    from.close();
    expect(sendUnix(from, Uint8Array.of(1), path)).toBe('EBADF');
    expect(from.fd).toBe(-1);
  });
});

describe('native sockets: datagrams small and large in any order', () => {
  it('arrive whole and in order, read in one call up to 16 KiB and peeked above it, switching both ways', async (ctx) => {
    const { path, peer, from } = nativePair(ctx, 'mixed');
    const got: Buffer[] = [];
    peer.on('message', (data) => got.push(data));
    const K = 16 * 1024;
    // Each group goes before the peer reads any of it (one wake reads several), within the
    // kernel's queue of 10 and the sender's buffer.
    // Read in one call until a large one (K + 1), then peeked until 8 small ones in a row (the
    // fourth group), then in one call again until the fifth group's first.
    const groups = [[0, 1, 100, K, K + 1, 5, 40_000, 3], [100_000, 7, K, 0], [K + 1, K + 1, 2, 30_000, 30_000, 1],
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [50_000, 10, 20_000, 30]];
    const sent: Uint8Array[] = [];
    try {
      for (const sizes of groups) {
        const before = got.length;
        for (const n of sizes) {
          const d = new Uint8Array(n).map((_, i) => (i * 7 + sent.length * 31) & 0xff);
          sent.push(d);
          expect(sendUnix(from, d, path)).toBeUndefined();
        }
        await new Promise<void>((resolve, reject) => {
          const t = setInterval(() => { if (got.length >= before + sizes.length) { clearInterval(t); resolve(); } }, 5);
          setTimeout(() => { clearInterval(t); reject(new Error(`only ${got.length - before} of ${sizes.length} arrived`)); }, 10_000);
        });
      }
      // Checked after every read: a datagram handed on as a view of the buffer the next one is
      // read into would have changed since.
      expect(got.map((g) => g.length)).toEqual(sent.map((d) => d.length));
      got.forEach((g, i) => expect(new Uint8Array(g)).toEqual(sent[i]));
    } finally {
      peer.close();
      from.close();
    }
  });
});

describe('native sockets after a socket error', () => {
  it('go on receiving once the kernel reported an error on the socket (POLLERR stops libuv\'s poll)', async (ctx) => {
    if (!unixLargeDatagrams()) {
      console.log('skipped: the native helper was not built (npm run build:native)');
      ctx.skip();
    }
    // Two sockets connected to each other; B's datagram waits unread in A's queue when A
    // connects elsewhere: the kernel purges that queue and sets ECONNRESET on B (its peer,
    // connected back to A), which B's poll then reports as POLLERR. All in one turn of the event
    // loop, so A never reads first.
    const p = (name: string) => join(dir, `err-${name}.sock`);
    const [a, b, c, d, a2, b2, c2] = ['a', 'b', 'c', 'd', 'a2', 'b2', 'c2'].map((name) => {
      const s = createUnixSocket();
      bindUnix(s, p(name));
      return s;
    });
    const gotB: number[] = [];
    b.on('message', (data) => gotB.push(data[0]));
    try {
      expect(connectUnix(a, p('b'))).toBeUndefined();
      expect(connectUnix(b, p('a'))).toBeUndefined();
      expect(sendUnix(b, Uint8Array.of(1))).toBeUndefined();
      expect(connectUnix(a, p('c'))).toBeUndefined(); // B's error is set here
      // The same on a second pair, whose error a send takes at once: the kernel does set it.
      expect(connectUnix(a2, p('b2'))).toBeUndefined();
      expect(connectUnix(b2, p('a2'))).toBeUndefined();
      expect(sendUnix(b2, Uint8Array.of(1))).toBeUndefined();
      expect(connectUnix(a2, p('c2'))).toBeUndefined();
      expect(sendUnix(b2, Uint8Array.of(2))).toBe('ECONNRESET');
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); // B's poll takes it
      // B now takes datagrams from D only (a connected socket hears its peer alone).
      expect(connectUnix(b, p('d'))).toBeUndefined();
      expect(sendUnix(d, Uint8Array.of(7), p('b'))).toBeUndefined();
      await new Promise<void>((resolve, reject) => {
        const give = setTimeout(() => { clearInterval(t); reject(new Error('B heard nothing after its error: its poll stopped')); }, 5_000);
        const t = setInterval(() => { if (gotB.length > 0) { clearInterval(t); clearTimeout(give); resolve(); } }, 5);
      });
      expect(gotB).toEqual([7]);
    } finally {
      for (const s of [a, b, c, d, a2, b2, c2]) s.close();
    }
  });
});

describe('native sockets and their owners', () => {
  it('raise a send buffer smaller than asked (and say what they got); a closed socket answers EBADF', (ctx) => {
    const n = loadNative()?.unixSocket;
    if (!n || !unixLargeDatagrams()) {
      console.log('skipped: the native helper was not built (npm run build:native)');
      return ctx.skip();
    }
    const plain = n.open(() => undefined, () => undefined);
    const raised = n.open(() => undefined, () => undefined, 300_000);
    if (typeof plain === 'number' || typeof raised === 'number') throw new Error(`open: ${String(plain)} ${String(raised)}`);
    const wmemMax = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
    const wmemDefault = Number(readFileSync('/proc/sys/net/core/wmem_default', 'utf8'));
    expect(n.sendBuffer(plain)).toBe(wmemDefault);
    // Linux doubles what it is given, up to twice wmem_max (root's sockets: the same, not forced).
    expect(n.sendBuffer(raised)).toBe(wmemDefault >= 300_000 ? wmemDefault : Math.min(300_000 / 2 + 1, wmemMax) * 2);
    const made = createUnixSocket();
    expect(made.largeDatagrams).toBe(Math.max(wmemDefault, Math.min(LARGE_DATAGRAM_MAX / 2 + 17, wmemMax) * 2) >= LARGE_DATAGRAM_MAX + 32);
    made.close();
    n.close(plain);
    n.close(raised);
    expect(n.sendBuffer(plain)).toBe(-9); // EBADF
  });

  it('a Worker thread that ends with its sockets open ends cleanly, and so does its process', (ctx) => {
    if (!unixLargeDatagrams()) {
      console.log('skipped: the native helper was not built (npm run build:native)');
      return ctx.skip();
    }
    // In a process of its own: a crash there (the close callback after the Worker's env is gone)
    // would take this test runner with it.
    const path = join(dir, 'worker.sock');
    const worker = join(dir, 'worker.cjs');
    writeFileSync(worker, `
      const { parentPort } = require('node:worker_threads');
      const n = require(${JSON.stringify(NATIVE_PATH)}).unixSocket;
      const a = n.open(() => {}, () => {});
      const b = n.open(() => {}, () => {});
      if (n.bind(a, ${JSON.stringify(path)}) !== 0 || n.connect(b, ${JSON.stringify(path)}) !== 0) throw new Error('bind/connect');
      n.send(b, Buffer.from('unread'));
      if (parentPort) parentPort.postMessage('open'); // its poll keeps the thread alive until ended
    `);
    // The first Worker is terminated with two sockets open, the second exits by process.exit()
    // with one open (its sockets cannot end the thread by themselves).
    const script = `
      const { Worker } = require('node:worker_threads');
      const w = new Worker(${JSON.stringify(worker)});
      w.on('message', async () => {
        await w.terminate();
        const again = new Worker(require('node:fs').readFileSync(${JSON.stringify(worker)}, 'utf8').replaceAll(${JSON.stringify(path)}, ${JSON.stringify(path + '2')}) + ';setTimeout(() => process.exit(3), 20)', { eval: true });
        again.on('exit', (code) => { console.log('worker exits', code); setTimeout(() => process.exit(0), 50); });
      });
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    expect(r.stdout).toBe('worker exits 3\n');
  });
});

describe('unixErrorName', () => {
  it('names errnos from the table, congestion as EAGAIN', () => {
    expect(unixErrorName(Object.assign(new Error('x'), { code: 1 }))).toBe('EAGAIN');
    expect(unixErrorName(Object.assign(new Error('x'), { code: -111 }))).toBe('ECONNREFUSED');
    expect(unixErrorName(Object.assign(new Error('x'), { code: -11 }))).toBe('EAGAIN'); // not EWOULDBLOCK, its twin
    expect(unixErrorName(Object.assign(new Error('x'), { code: -9999 }))).toBe('E9999');
  });
});

describe('loadNativeAt', () => {
  const dir = mkdtempSync(join(tmpdir(), 'afc-native-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('takes a build that is not there as absent, and says why one that is there cannot be used', () => {
    expect(loadNativeAt(join(dir, 'none.node'))).toEqual({});
    const older = join(dir, 'older.cjs'); // a build from before sendBuffer: trim and sockets, no sendBuffer
    writeFileSync(older, 'module.exports = { trim() { return true; }, unixSocket: { open() { return -1; } } };');
    expect(loadNativeAt(older)).toEqual({ unusable: 'it is older than this code: no unixSocket.sendBuffer' });
    const beforeTune = join(dir, 'before-tune.cjs'); // sockets with sendBuffer, no mallocTune
    writeFileSync(beforeTune, 'module.exports = { trim() { return true; }, unixSocket: { sendBuffer() { return 0; } } };');
    expect(loadNativeAt(beforeTune)).toEqual({ unusable: 'it is older than this code: no mallocTune' });
    const beforeUdp = join(dir, 'before-udp.cjs'); // everything up to mallocTune, no UDP sockets
    writeFileSync(beforeUdp, 'module.exports = { trim() { return true; }, mallocTune() { return true; }, unixSocket: { sendBuffer() { return 0; } } };');
    expect(loadNativeAt(beforeUdp)).toEqual({ unusable: 'it is older than this code: no udpSocket' });
    const garbage = join(dir, 'garbage.node');
    writeFileSync(garbage, 'not a shared object');
    const r = loadNativeAt(garbage);
    expect(r.native).toBeUndefined();
    expect(r.unusable).toMatch(/^it does not load: .+/);
  });

  it('uses the build npm install made', (ctx) => {
    if (!loadNative()) {
      console.log('skipped: the native helper was not built (npm run build:native)');
      ctx.skip();
    }
    expect(loadNativeAt(NATIVE_PATH).native?.unixSocket.sendBuffer).toBeTypeOf('function');
  });
});
