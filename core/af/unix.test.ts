// Proves sendUnix, the one way the bridge and the client send a datagram, on both socket
// implementations (the native helper's and unix-dgram's): it reports a sent datagram as
// undefined, a full peer queue as EAGAIN (and a later datagram goes once the peer reads), a
// missing peer by its errno's name, and leaves Error.stackTraceLimit as it found it. And that the
// native sockets receive datagrams over 64 KiB whole, gather a send from several arrays, name the
// sender's path, and carry an empty datagram.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bindUnix, connectUnix, createUnixSocket, sendUnix, unixErrorName, unixLargeDatagrams } from './unix.ts';

const dir = mkdtempSync(join(tmpdir(), 'afc-unix-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each([['native', undefined], ['unix-dgram', 'unix-dgram']] as const)('sendUnix (%s sockets)', (name, impl) => {
  it('sends, reports a full queue as EAGAIN on connected and unconnected sockets, names a missing peer', async (ctx) => {
    if (impl === undefined && !unixLargeDatagrams()) {
      console.log('skipped: the native helper was not built (npm run build:native)');
      ctx.skip();
    }
    const path = join(dir, `peer-${name}.sock`);
    const peer = createUnixSocket(impl);
    bindUnix(peer, path);
    const received: number[] = [];
    const connected = createUnixSocket(impl);
    expect(connectUnix(connected, path)).toBeUndefined();
    const unconnected = createUnixSocket(impl);
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

describe('native sockets', () => {
  it('receive a 150 kB datagram whole, gather a send, name the sender, carry an empty datagram', async (ctx) => {
    if (!unixLargeDatagrams()) {
      console.log('skipped: the native helper was not built (npm run build:native)');
      ctx.skip();
    }
    const path = join(dir, 'large.sock');
    const peer = createUnixSocket();
    bindUnix(peer, path);
    const from = createUnixSocket();
    bindUnix(from, join(dir, 'large-from.sock'));
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

describe('unixErrorName', () => {
  it('names errnos from the table, congestion as EAGAIN', () => {
    expect(unixErrorName(Object.assign(new Error('x'), { code: 1 }))).toBe('EAGAIN');
    expect(unixErrorName(Object.assign(new Error('x'), { code: -111 }))).toBe('ECONNREFUSED');
    expect(unixErrorName(Object.assign(new Error('x'), { code: -11 }))).toBe('EAGAIN'); // not EWOULDBLOCK, its twin
    expect(unixErrorName(Object.assign(new Error('x'), { code: -9999 }))).toBe('E9999');
  });
});
