// Proves sendUnix, the one way the bridge and the client send a datagram: it reports a sent
// datagram as undefined, a full peer queue as EAGAIN (and a later datagram goes once the peer
// reads), a missing peer by its errno's name, and leaves Error.stackTraceLimit as it found it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bindUnix, connectUnix, createUnixSocket, sendUnix, unixErrorName } from './unix.ts';

const dir = mkdtempSync(join(tmpdir(), 'afc-unix-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sendUnix', () => {
  it('sends, reports a full queue as EAGAIN on connected and unconnected sockets, names a missing peer', async () => {
    const path = join(dir, 'peer.sock');
    const peer = createUnixSocket();
    bindUnix(peer, path);
    const received: number[] = [];
    const connected = createUnixSocket();
    expect(connectUnix(connected, path)).toBeUndefined();
    const unconnected = createUnixSocket();
    bindUnix(unconnected, join(dir, 'from.sock'));
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

  it('names errnos from the table, congestion as EAGAIN', () => {
    expect(unixErrorName(Object.assign(new Error('x'), { code: 1 }))).toBe('EAGAIN');
    expect(unixErrorName(Object.assign(new Error('x'), { code: -111 }))).toBe('ECONNREFUSED');
    expect(unixErrorName(Object.assign(new Error('x'), { code: -11 }))).toBe('EAGAIN'); // not EWOULDBLOCK, its twin
    expect(unixErrorName(Object.assign(new Error('x'), { code: -9999 }))).toBe('E9999');
  });
});
