// Helpers for bridge tests: a raw protocol client (to send hostile bytes) and waiting on
// conditions without letting timing decide the outcome (a deadline only turns a hang into a failure).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeDaemonDatagram, encodeRequest, type DaemonDatagram, type Reply, type Request } from '../../core/af/codec.ts';
import { bindUnix, createUnixSocket, unixErrorName, type UnixDgramSocket, type UnixError } from '../../core/af/unix.ts';
import type { SocketEvent } from '../../core/api/types.ts';

/**
 * A UDP port for a test file: each file has its own base (2000 apart), and the run's pid picks a
 * slot inside it, so files never collide and two test runs on one machine rarely do.
 */
export function testPort(base: number): number {
  return base + (process.pid % 997) * 2;
}

export function tempDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Poll `check` until it returns a value (not undefined/false), or fail after `ms`. */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A client that speaks the protocol byte by byte, to send what ClusterSocket never would. */
export class RawClient {
  readonly received: DaemonDatagram[] = [];
  private readonly sock: UnixDgramSocket;
  constructor(readonly path: string, private readonly daemon: string) {
    this.sock = createUnixSocket();
    this.sock.on('message', (buf) => {
      const d = decodeDaemonDatagram(buf);
      // A version-2+ socket gets containers: what is inside, in order.
      if (d.type === 'batch') for (const item of d.items) this.received.push(decodeDaemonDatagram(item));
      else this.received.push(d);
    });
    this.sock.on('error', () => { /* reported through callbacks */ });
    bindUnix(this.sock, path);
  }
  /** Send one datagram; while the daemon's kernel queue is full (EAGAIN, ENOBUFS), retry. */
  async raw(bytes: Uint8Array): Promise<void> {
    const b = Buffer.from(bytes);
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      const err = await new Promise<UnixError | undefined>((res) => this.sock.send(b, 0, b.length, this.daemon, res));
      if (!err) return;
      const name = unixErrorName(err);
      if (name !== 'EAGAIN' && name !== 'ENOBUFS') throw new Error(`send to ${this.daemon}: ${name}`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  async request(req: Request): Promise<Reply> {
    await this.raw(encodeRequest(req));
    return this.reply(req.id);
  }
  reply(id: number): Promise<Reply> {
    return until(`reply ${id}`, () => {
      const d = this.received.find((x) => x.type === 'reply' && x.reply.id === id);
      return d?.type === 'reply' ? d.reply : undefined;
    });
  }
  events(): SocketEvent[] {
    return this.received.flatMap((d) => (d.type === 'event' ? [d.event] : []));
  }
  /** Close; `keepFile` leaves the socket file behind, as a crashed process does. */
  close(keepFile = false): void {
    this.sock.removeAllListeners();
    this.sock.close();
    if (!keepFile) try { rmSync(this.path); } catch { /* gone */ }
  }
}
