// Proves the bridge server over a real unix socket, on one node with a loopback driver: ClusterSocket binds, sends and receives; hostile datagrams get their errno or are dropped and counted; request-before-hello, bind twice, send before bind, oversize payloads and too many sockets are refused; send waits out EAGAIN (or not, with wait:false) and obeys AbortSignal; version-2 sockets get bursts in BATCH containers and their pipelined sends keep their order across EAGAIN, the fence and WRITABLE, with at most the socket's sendWindow unanswered; version-4 sockets stream large messages' parts without a round trip each, fenced alike, and one at a time through a window of one; requests time out; a vanished client process is procdown; a vanished daemon ends the stream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { GroupService } from '../groups/service.ts';
import { BridgeServer, CLIENT_SEND_BUFFER, PARTIALS_PER_SOCKET_MAX, clientSocket } from './bridge.ts';
import { ClusterSocket } from '../../sockapi/client.ts';
import { ClusterError, ERROR_NUMBERS } from '../api/errors.ts';
import { LARGE_DATAGRAM_MAX, OP, OP_PROTOCOL_ERROR, REPLY_BIT, decodeClientDatagram, encodeBatch, encodeMessagePart, encodeReply, encodeRequest } from './codec.ts';
import { bindUnix, createUnixSocket, unixLargeDatagrams } from './unix.ts';
import { readFileSync } from 'node:fs';
import { identifyPeer, type PeerIdentity } from './peercred.ts';
import { spawn } from 'node:child_process';
import type { NodeConfig } from '../config/types.ts';
import { RawClient, tempDir, until } from '../../test/integration/bridge-helpers.ts';
import type { SocketEvent } from '../api/types.ts';
import { concatBytes } from '../wire/bytes.ts';

const limits: NodeConfig['limits'] = {
  messageSizeMax: 300_000, socketsMax: 16, groupsMax: 8, groupNameMax: 32, recvQueueMax: 64,
  recvQueueBytesMax: 1 << 20, recvStallMs: 2000, membersMax: 64,
};

/** Pids the tests pretend exist: a HELLO claiming one is this process's (the kernel's word otherwise). */
const FAKE_PIDS = new Set([999_999]);

/** One node: a GroupService over a loopback "driver" (multicast comes back as a delivery), and its bridge. */
function loopbackNode(path: string, dead: Set<number>) {
  /** budget: multicasts taken before the loopback answers EAGAIN. */
  const ctl = { blocked: false, budget: Infinity, refused: 0 };
  const late: { bridge?: BridgeServer } = {};
  const svc: GroupService = new GroupService({
    nodeId: 1, limits, guarantees: { fifo: true, agreed: true, safe: true, virtualSynchrony: true },
    driverName: 'loopback', log: () => {}, onWritable: () => late.bridge?.writable(),
    multicast: (p, order) => {
      if (ctl.blocked || ctl.budget <= 0) { ctl.refused++; throw new ClusterError('EAGAIN', 'loopback send queue full'); }
      ctl.budget--;
      const copy = concatBytes(p instanceof Uint8Array ? [p] : p);
      setImmediate(() => svc.deliver(1, copy, order));
    },
  });
  svc.configuration({ kind: 'regular', ringId: { rep: 1, seq: 4 }, members: [1], left: [], joined: [1] });
  const bridge = new BridgeServer({
    socket: { path, dirMode: 0o750, mode: 0o660 }, nodeId: 1, driver: 'loopback', groups: svc,
    runtimeStats: () => ({ 'driver.sent': 0 }), limits, messageSizeMax: limits.messageSizeMax, log: () => {},
    procCheckMs: 50, partialIdleMs: 1000, pidAlive: (pid) => !dead.has(pid) && pid > 0,
    identify: (p, pid) => {
      if (!FAKE_PIDS.has(pid)) return identifyPeer(p, pid);
      const me = identifyPeer(p, process.pid);
      return typeof me === 'string' ? me : { ...me, pid } satisfies PeerIdentity;
    },
  });
  late.bridge = bridge;
  return { svc, bridge, ctl };
}

describe('the socket to each client', () => {
  it('has a send buffer of CLIENT_SEND_BUFFER, or what the host allows, larger than a plain socket\'s', (ctx) => {
    if (!unixLargeDatagrams()) {
      console.log('skipped: the native helper was not built (npm run build:native)');
      return ctx.skip();
    }
    const wmemMax = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
    const wmemDefault = Number(readFileSync('/proc/sys/net/core/wmem_default', 'utf8'));
    const s = clientSocket(), plain = createUnixSocket();
    try {
      // Linux doubles what it is given, up to twice wmem_max.
      expect(s.sendBuffer).toBe(wmemDefault >= CLIENT_SEND_BUFFER ? wmemDefault : Math.min(CLIENT_SEND_BUFFER / 2 + 1, wmemMax) * 2);
      if (wmemMax > wmemDefault) expect(s.sendBuffer).toBeGreaterThan(plain.sendBuffer as number);
    } finally {
      s.close();
      plain.close();
    }
  });
});

describe('bridge server (one node, loopback driver)', () => {
  const tmp = tempDir('afc-bridge-');
  const path = join(tmp.dir, 'run', 'bridge.sock');
  const dead = new Set<number>();
  let node: ReturnType<typeof loopbackNode>;
  let bridge: BridgeServer;

  beforeAll(() => {
    node = loopbackNode(path, dead);
    bridge = node.bridge;
  });
  afterAll(() => { bridge.close(); tmp.cleanup(); });

  it('binds, sends and receives through ClusterSocket', async () => {
    const a = await ClusterSocket.open({ path });
    const b = await ClusterSocket.open({ path });
    expect(a.self.port).not.toBe(b.self.port);
    await a.bind('g');
    await b.bind('g');
    await a.send('hello', { order: 'safe' });
    const seen: SocketEvent[] = [];
    for await (const ev of b) { seen.push(ev); if (ev.type === 'message') break; }
    const msg = seen.at(-1);
    expect(msg).toMatchObject({ type: 'message', group: 'g', sender: a.self, order: 'safe' });
    expect(new TextDecoder().decode((msg as { data: Uint8Array }).data)).toBe('hello');
    expect(seen[0]).toMatchObject({ type: 'membership', group: 'g' });
    expect((await a.members()).length).toBe(2);
    expect(await a.localNode()).toMatchObject({ nodeId: 1, driver: 'loopback', members: [1] });
    const stats = await a.stats();
    expect(stats['node.ringId']).toBe('1.4');
    await expect(a.bind('g')).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await expect(a.send(new Uint8Array(limits.messageSizeMax + 1))).rejects.toMatchObject({ code: 'EMSGSIZE' });
    await a.close();
    await b.close();
  });

  it('send() reports each failure as a rejection, never a throw (too large, not a signal, closed, a version-1 daemon)', async () => {
    for (const maxVersion of [1, 5]) {
      const a = await ClusterSocket.open({ path, maxVersion });
      await a.bind('r');
      let tooBig: Promise<void> | undefined;
      expect(() => { tooBig = a.send(new Uint8Array(limits.messageSizeMax + 1)); }).not.toThrow();
      await expect(tooBig).rejects.toMatchObject({ code: 'EMSGSIZE' });
      await a.send('fits');
      let notASignal: Promise<void> | undefined;
      expect(() => { notASignal = a.send('x', { signal: {} as AbortSignal }); }).not.toThrow();
      await expect(notASignal).rejects.toMatchObject({ code: 'EINVAL' });
      await expect(a.members({ signal: 'soon' as unknown as AbortSignal })).rejects.toMatchObject({ code: 'EINVAL' });
      await a.close();
      let closed: Promise<void> | undefined;
      expect(() => { closed = a.send('late'); }).not.toThrow();
      await expect(closed).rejects.toMatchObject({ code: 'ENOTCONN' });
    }
  });

  it.each([
    ['version 4: 64 KiB datagrams', 4, 0],
    ['version 5: 192 KiB datagrams', 5, 1],
  ])('carries messages larger than a datagram in parts, both ways (%s)', async (_, maxVersion, whole) => {
    const a = await ClusterSocket.open({ path, maxVersion });
    const b = await ClusterSocket.open({ path, maxVersion: 4 });
    const c = await ClusterSocket.open({ path, maxVersion });
    await a.bind('big');
    await b.bind('big');
    await c.bind('big');
    await until('three members', async () => (await a.members()).length === 3);
    const before = bridge.stats();
    const sizes = [65_535, 65_536, 196_598, 250_000, 300_000];
    const payloads = sizes.map((n, k) => new Uint8Array(n).map((_, i) => (i * 7 + k) % 256));
    await Promise.all(payloads.map((p) => a.send(p, { order: 'fifo' })));
    for (const s of [b, c]) { // a version-4 member and one of a's version
      const got: Uint8Array[] = [];
      for await (const ev of s) if (ev.type === 'message' && (got.push(ev.data), got.length === sizes.length)) break;
      expect(got.map((d) => d.length)).toEqual(sizes);
      got.forEach((d, i) => expect(new Uint8Array(d)).toEqual(payloads[i]));
    }
    // Version 5: the first three go as one SEND each (196,598 bytes and the header fill 192 KiB),
    // 250 and 300 kB in 2 parts each; version 4: 2 + 2 + 4 + 4 + 5 parts of 65,513 bytes.
    const after = bridge.stats();
    expect(after.requestsIn - before.requestsIn).toBe(whole ? 3 + 2 + 2 : 2 + 2 + 4 + 4 + 5);
    await a.close();
    await b.close();
    await c.close();
  });

  it('streams a large message\'s parts through a window of one send, in order with small sends around it', async () => {
    // Each part waits for the reply to the one before: the window holds parts as it holds sends.
    const a = await ClusterSocket.open({ path, maxVersion: 4, sendWindow: 1 });
    const b = await ClusterSocket.open({ path });
    await a.bind('narrow');
    await b.bind('narrow');
    await until('two members', async () => (await a.members()).length === 2);
    const payloads = [10, 200_000, 20, 150_000, 30].map((n, k) => new Uint8Array(n).map((_, i) => (i * 11 + k) % 256));
    await Promise.all(payloads.map((p) => a.send(p, { order: 'fifo' })));
    const got: Uint8Array[] = [];
    for await (const ev of b) if (ev.type === 'message' && (got.push(ev.data), got.length === payloads.length)) break;
    got.forEach((d, i) => expect(new Uint8Array(d)).toEqual(payloads[i]));
    await a.close();
    await b.close();
  });

  it('answers hostile datagrams with their errno or drops and counts them', async () => {
    const raw = new RawClient(join(tmp.dir, 'raw.sock'), path);
    const before = bridge.stats();
    expect((await raw.request({ type: 'members', id: 1 })).status).toBe(ERROR_NUMBERS.EPROTO); // before hello
    expect((await raw.request({ type: 'hello', id: 2, pid: process.pid })).status).toBe(0);
    expect((await raw.request({ type: 'send', id: 3, order: 'agreed', data: new Uint8Array(1) })).status).toBe(ERROR_NUMBERS.ENOTCONN);
    const v9 = encodeRequest({ type: 'stats', id: 4 }); v9[2] = 9; await raw.raw(v9);
    expect(await raw.reply(4)).toMatchObject({ op: OP_PROTOCOL_ERROR, status: ERROR_NUMBERS.EPROTO });
    const op = encodeRequest({ type: 'stats', id: 5 }); op[3] = 0x30; await raw.raw(op);
    expect(await raw.reply(5)).toMatchObject({ op: OP_PROTOCOL_ERROR, status: ERROR_NUMBERS.EPROTO });
    await raw.raw(encodeRequest({ type: 'bind', id: 6, group: 'x', selfDelivery: true }).subarray(0, 11));
    expect(await raw.reply(6)).toMatchObject({ op: OP.bind | REPLY_BIT, status: ERROR_NUMBERS.EINVAL });
    expect((await raw.request({ type: 'bind', id: 7, group: 'x'.repeat(33), selfDelivery: true })).status).toBe(ERROR_NUMBERS.ENAMETOOLONG);
    await raw.raw(new Uint8Array([1, 2, 3]));
    await raw.raw(new Uint8Array(0));
    expect((await raw.request({ type: 'bind', id: 8, group: 'x', selfDelivery: true })).status).toBe(0);
    expect((await raw.request({ type: 'bind', id: 9, group: 'y', selfDelivery: true })).status).toBe(ERROR_NUMBERS.EADDRINUSE);
    // Over a version-1 socket's 64 KiB, and over even version 5's 192 KiB: read whole, refused.
    expect((await raw.request({ type: 'send', id: 10, order: 'agreed', data: new Uint8Array(70_000) })).status).toBe(ERROR_NUMBERS.EMSGSIZE);
    expect((await raw.request({ type: 'send', id: 11, order: 'agreed', data: new Uint8Array(200_000) })).status).toBe(ERROR_NUMBERS.EMSGSIZE);
    const after = bridge.stats();
    expect(after.dropped - before.dropped).toBe(2);
    expect(after.badRequests - before.badRequests).toBe(6); // before hello, version, op, truncated body, two oversize
    raw.close();
  });

  it('a BATCH container that closes its socket midway: what came before is answered and sent, what comes after is refused and never reaches the group', async () => {
    const watcher = await ClusterSocket.open({ path });
    await watcher.bind('midway');
    const raw = new RawClient(join(tmp.dir, 'midway.sock'), path);
    expect((await raw.request({ type: 'hello', id: 1, pid: process.pid, version: 2 })).status).toBe(0);
    expect((await raw.request({ type: 'bind', id: 2, group: 'midway', selfDelivery: true })).status).toBe(0);
    const text = (t: string) => new TextEncoder().encode(t);
    await raw.raw(encodeBatch([
      encodeRequest({ type: 'send', id: 3, order: 'agreed', data: text('before') }),
      encodeRequest({ type: 'close', id: 4 }),
      encodeRequest({ type: 'send', id: 5, order: 'agreed', data: text('after') }),
    ]));
    expect((await raw.reply(3)).status).toBe(0);
    expect((await raw.reply(4)).status).toBe(0);
    expect((await raw.reply(5)).status).toBe(ERROR_NUMBERS.EPROTO); // no socket any more: from the main socket
    // The watcher's own message comes after anything the closed socket could have sent.
    await watcher.send('marker');
    const seen: string[] = [];
    let buffers = 0;
    for await (const ev of watcher) {
      if (ev.type === 'message') seen.push(new TextDecoder().decode(ev.data));
      if (ev.type === 'message' && Buffer.isBuffer(ev.data)) buffers++;
      if (seen.at(-1) === 'marker') break;
    }
    expect(seen).toEqual(['before', 'marker']);
    expect(buffers).toBe(0); // a message's data is a plain Uint8Array, as its type says (not a Buffer view)
    raw.close();
    await watcher.close();
  });

  it('reports a client process that died without closing as procdown', async () => {
    const fakePid = 999_999;
    const victim = new RawClient(join(tmp.dir, 'victim.sock'), path);
    expect((await victim.request({ type: 'hello', id: 1, pid: fakePid })).status).toBe(0);
    expect((await victim.request({ type: 'bind', id: 2, group: 'p', selfDelivery: true })).status).toBe(0);
    const watcher = await ClusterSocket.open({ path });
    await watcher.bind('p');
    const it = watcher[Symbol.asyncIterator]();
    await until('watcher sees the victim', async () => (await watcher.members()).some((m) => m.pid === fakePid));
    dead.add(fakePid);
    for (;;) {
      const { value } = await it.next();
      if (value?.type === 'membership' && value.left.length > 0) {
        expect(value.left).toEqual([{ member: { nodeId: 1, pid: fakePid, port: 1 }, reason: 'procdown' }]);
        break;
      }
    }
    expect(bridge.stats().procdowns).toBeGreaterThan(0);
    victim.close();
    await watcher.close();
  });
  it('refuses a HELLO that claims another live process (EACCES, counted); a retried HELLO keeps the identity', async () => {
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    const liar = new RawClient(join(tmp.dir, 'liar.sock'), path);
    try {
      const before = bridge.stats();
      expect((await liar.request({ type: 'hello', id: 1, pid: other.pid! })).status).toBe(ERROR_NUMBERS.EACCES);
      expect((await liar.request({ type: 'hello', id: 2, pid: 0x7ffffff0 })).status).toBe(ERROR_NUMBERS.ESRCH);
      const after = bridge.stats();
      expect(after.identityRefused - before.identityRefused).toBe(1);
      expect(after.helloRefused - before.helloRefused).toBe(2);
      const first = await liar.request({ type: 'hello', id: 3, pid: process.pid });
      const again = await liar.request({ type: 'hello', id: 4, pid: process.pid });
      expect(first.status).toBe(0);
      expect(again.result).toEqual(first.result);
    } finally {
      other.kill('SIGKILL');
      liar.close();
    }
  });

  it('drops a socket that was closed without CLOSE when sending to it fails (others see procdown)', async () => {
    const gone = new RawClient(join(tmp.dir, 'gone.sock'), path);
    expect((await gone.request({ type: 'hello', id: 1, pid: process.pid })).status).toBe(0);
    expect((await gone.request({ type: 'bind', id: 2, group: 'gg', selfDelivery: true })).status).toBe(0);
    const who = (await gone.reply(1)).result;
    const w = await ClusterSocket.open({ path });
    await w.bind('gg');
    await until('both members', async () => (await w.members()).length === 2);
    gone.close(true); // the file stays: only a failed send shows the socket is gone
    await w.send('anyone there?');
    for await (const ev of w) {
      if (ev.type === 'membership' && ev.left.length) {
        expect(ev.left).toEqual([{ member: who.type === 'hello' ? { nodeId: 1, pid: who.hello.pid, port: who.hello.port } : undefined, reason: 'procdown' }]);
        break;
      }
    }
    await w.close();
  });

  it('send waits while the daemon answers EAGAIN, unless wait:false; AbortSignal cancels the wait', async () => {
    const a = await ClusterSocket.open({ path });
    await a.bind('bp');
    await until('bound', async () => (await a.members()).length === 1);
    node.ctl.blocked = true;
    await expect(a.send('now', { wait: false })).rejects.toMatchObject({ code: 'EAGAIN' });
    const ac = new AbortController();
    const aborted = a.send('never', { signal: ac.signal });
    ac.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ECANCELED' });
    let done = false;
    const waiting = a.send('later').then(() => { done = true; });
    await new Promise((r) => setTimeout(r, 100));
    expect(done).toBe(false);
    node.ctl.blocked = false;
    await waiting;
    const it = a[Symbol.asyncIterator]();
    for (;;) {
      const { value } = await it.next();
      if (value?.type === 'message') { expect(new TextDecoder().decode(value.data)).toBe('later'); break; }
    }
    await a.close();
  });

  it('listen() and send\'s callback form: every event in order, each send answered once (versions 1 and 5; across EAGAIN from version 2 on)', async () => {
    for (const maxVersion of [1, 5]) {
      const group = `cb${maxVersion}`;
      const a = await ClusterSocket.open({ path, maxVersion });
      const b = await ClusterSocket.open({ path, maxVersion });
      await a.bind(group);
      await b.bind(group);
      await until('two members', async () => (await a.members()).length === 2);
      // What b holds (its own join and a's) comes first, before listen returns.
      const seen: SocketEvent[] = [];
      b.listen((ev) => seen.push(ev));
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((ev) => ev.type === 'membership')).toBe(true);
      await expect(b[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'EINVAL' });
      // Failures go to the callback, never before send returns.
      const early: (Error | null)[] = [];
      a.send(new Uint8Array(limits.messageSizeMax + 1), {}, (e) => early.push(e));
      a.send('x', { signal: {} as AbortSignal }, (e) => early.push(e));
      expect(early).toEqual([]);
      await until('failures called back', () => early.length === 2);
      expect(early.map((e) => (e as ClusterError).code)).toEqual(['EMSGSIZE', 'EINVAL']);
      const n = 60;
      const answers = Array.from({ length: n }, () => [] as (Error | null)[]);
      if (maxVersion === 1) {
        // One at a time, each sent from the last one's callback: a version-1 socket's sends each
        // wait on their own and may pass one another (callback or promise alike).
        const next = (i: number): void => a.send(`m${i}`, { order: 'agreed' }, (e) => { answers[i].push(e); if (i + 1 < n) next(i + 1); });
        next(0);
      } else {
        // All at once; the loopback takes 30, then answers EAGAIN until writable(): the sends wait
        // and go on, in order.
        node.ctl.budget = 30;
        for (let i = 0; i < n; i++) a.send(`m${i}`, { order: 'agreed' }, (e) => answers[i].push(e));
        await until('refused', () => node.ctl.budget === 0 && node.ctl.refused > 0);
        node.ctl.budget = Infinity;
        node.svc.writable();
      }
      await until('every send answered', () => answers.every((x) => x.length > 0));
      expect(answers.every((x) => x.length === 1 && x[0] === null)).toBe(true);
      const texts = (evs: SocketEvent[]) => evs.flatMap((ev) => (ev.type === 'message' ? [new TextDecoder().decode(ev.data)] : []));
      await until('b has every message', () => texts(seen).length === n);
      expect(texts(seen)).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
      // Back to for await: what comes next is held for the reader.
      b.listen(undefined);
      await a.send('after');
      const it = b[Symbol.asyncIterator]();
      for (;;) {
        const { value } = await it.next();
        if (value?.type === 'message') { expect(new TextDecoder().decode(value.data)).toBe('after'); break; }
      }
      await a.close();
      const closed: (Error | null)[] = [];
      a.send('late', {}, (e) => closed.push(e));
      await until('closed called back', () => closed.length === 1);
      expect(closed[0]).toMatchObject({ code: 'ENOTCONN' });
      await b.close();
    }
  });

  it('pipelined sends of a version-2 socket arrive in order across EAGAIN and WRITABLE, bursts in containers', async () => {
    const a = await ClusterSocket.open({ path, eventQueueMax: 100_000 });
    await a.bind('pipe');
    await until('bound', async () => (await a.members()).length === 1);
    const before = bridge.stats();
    node.ctl.budget = 50; // the loopback takes 50, then answers EAGAIN until writable()
    const n = 40; // under limits.recvQueueMax per burst: this test is not about overruns
    const sends: Promise<void>[] = [];
    for (let round = 0; round < 5; round++) for (let i = 0; i < n; i++) sends.push(a.send(`m${round * n + i}`));
    await until('refused', () => bridge.stats().writableSent === before.writableSent && node.ctl.budget === 0);
    await until('fenced sends answered', () => bridge.stats().requestsIn - before.requestsIn >= 5 * n);
    node.ctl.budget = Infinity;
    node.svc.writable();
    await Promise.all(sends);
    const got: string[] = [];
    const it = a[Symbol.asyncIterator]();
    while (got.length < 5 * n) {
      const { value } = await it.next();
      if (value?.type === 'message') got.push(new TextDecoder().decode(value.data));
    }
    expect(got).toEqual(Array.from({ length: 5 * n }, (_, i) => `m${i}`));
    const after = bridge.stats();
    expect(after.writableSent).toBeGreaterThan(before.writableSent);
    expect(after.batchesIn).toBeGreaterThan(before.batchesIn);
    expect(after.requestsIn - before.requestsIn).toBeGreaterThan(after.datagramsIn - before.datagramsIn);
    await a.close();
  });

  it('a refused large message of a version-2 socket is retried first part only until WRITABLE, then delivered once', async () => {
    const a = await ClusterSocket.open({ path, maxVersion: 4 });
    await a.bind('bigwait');
    await until('bound', async () => (await a.members()).length === 1);
    const before = bridge.stats();
    const refusedBefore = node.ctl.refused;
    node.ctl.budget = 0;
    const payload = new Uint8Array(100_000).map((_, i) => i % 251);
    const sent = a.send(payload);
    await until('gathered and refused', () => node.ctl.refused === refusedBefore + 1);
    const seen = bridge.stats().requestsIn;
    await until('retried', () => bridge.stats().requestsIn >= seen + 3);
    expect(node.ctl.refused).toBe(refusedBefore + 1); // retries were refused at the first part, not gathered again
    node.ctl.budget = Infinity;
    node.svc.writable();
    await sent;
    const it = a[Symbol.asyncIterator]();
    for (;;) {
      const { value } = await it.next();
      if (value?.type === 'message') { expect(value.data).toEqual(payload); break; }
    }
    expect(bridge.stats().writableSent).toBeGreaterThan(before.writableSent);
    await a.close();
  });

  it.each([4, 5])('a version-%i socket streams large messages (parts pipelined) mixed with small ones, in call order across EAGAIN and WRITABLE', async (maxVersion) => {
    const a = await ClusterSocket.open({ path, eventQueueMax: 100_000, maxVersion });
    await a.bind('stream');
    await until('bound', async () => (await a.members()).length === 1);
    const before = bridge.stats();
    node.ctl.budget = 7; // some messages are taken, then the loopback refuses until writable()
    const sizes = [100_000, 10, 140_000, 65_536, 5, 200_000, 70_000, 3, 131_000, 20];
    const payload = (i: number) => new Uint8Array(sizes[i % sizes.length]).map((_, k) => (k * 7 + i) % 251);
    const n = 20;
    const sends = Array.from({ length: n }, (_, i) => a.send(payload(i)));
    await until('refused', () => node.ctl.budget === 0 && node.ctl.refused > 0);
    node.ctl.budget = Infinity;
    node.svc.writable();
    await Promise.all(sends);
    const got: Uint8Array[] = [];
    const it = a[Symbol.asyncIterator]();
    while (got.length < n) {
      const { value } = await it.next();
      if (value?.type === 'message') got.push(value.data);
    }
    expect(got.map((d) => d.length)).toEqual(Array.from({ length: n }, (_, i) => payload(i).length));
    got.forEach((d, i) => expect(new Uint8Array(d)).toEqual(payload(i)));
    const after = bridge.stats();
    expect(after.writableSent).toBeGreaterThan(before.writableSent);
    expect(after.partials).toBe(0);
    await a.close();
  });

  it.each([4, 5])('a version-%i socket: a large message not yet begun when an earlier one is refused goes after WRITABLE, not lost', async (maxVersion) => {
    const a = await ClusterSocket.open({ path, eventQueueMax: 100_000, maxVersion });
    await a.bind('unbegun');
    await until('bound', async () => (await a.members()).length === 1);
    const got: number[] = [];
    const it = a[Symbol.asyncIterator]();
    const reading = (async () => {
      while (got.length < 16) {
        const { value } = await it.next();
        if (value?.type === 'message') got.push(value.data[0]);
      }
    })();
    // Sixteen messages of 290,000 bytes: the last ones cannot begin while 4 MiB of parts are
    // unanswered (STREAM_BYTES_MAX). The loopback takes one message, then refuses the next: the
    // socket is fenced, and those not begun must be sent once the daemon says WRITABLE.
    node.ctl.budget = 1;
    const payload = (i: number) => new Uint8Array(290_000).fill(i + 1);
    const sends = Array.from({ length: 16 }, (_, i) => a.send(payload(i)));
    await until('refused', () => node.ctl.budget === 0 && node.ctl.refused > 0);
    node.ctl.budget = Infinity;
    node.svc.writable();
    await Promise.all(sends);
    await reading;
    expect(got).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    await a.close();
  }, 20_000);

  it('version 4: a refused part fences the socket (later first parts and SENDs refused until RESUME); RESUME on a part is refused before version 4', async () => {
    const raw = new RawClient(join(tmp.dir, 'v4.sock'), path);
    const old = new RawClient(join(tmp.dir, 'v3.sock'), path);
    try {
      expect((await raw.request({ type: 'hello', id: 1, pid: process.pid, version: 4 })).status).toBe(0);
      expect((await raw.request({ type: 'bind', id: 2, group: 'fence4', selfDelivery: false })).status).toBe(0);
      const part = (id: number, msgId: number, offset: number, resume = false) => raw.request({
        type: 'sendPart', id, order: 'agreed', msgId, total: 20, offset, data: new Uint8Array(10), resume,
      });
      node.ctl.budget = 0;
      expect((await part(10, 1, 0)).status).toBe(0);
      expect((await part(11, 1, 10)).status).toBe(ERROR_NUMBERS.EAGAIN); // the last part: refused, message dropped
      node.ctl.budget = Infinity;
      expect((await part(12, 2, 0)).status).toBe(ERROR_NUMBERS.EAGAIN); // fenced
      expect((await raw.request({ type: 'send', id: 13, order: 'agreed', data: new Uint8Array(3) })).status).toBe(ERROR_NUMBERS.EAGAIN);
      node.svc.writable();
      expect((await part(14, 1, 0, true)).status).toBe(0); // RESUME opens the fence
      expect((await part(15, 1, 10)).status).toBe(0);
      expect((await raw.request({ type: 'send', id: 16, order: 'agreed', data: new Uint8Array(3) })).status).toBe(0);
      expect((await old.request({ type: 'hello', id: 1, pid: process.pid, version: 3 })).status).toBe(0);
      expect((await old.request({ type: 'bind', id: 2, group: 'fence4', selfDelivery: false })).status).toBe(0);
      expect((await old.request({ type: 'sendPart', id: 3, order: 'agreed', msgId: 1, total: 20, offset: 0, data: new Uint8Array(10), resume: true })).status)
        .toBe(ERROR_NUMBERS.EINVAL);
    } finally {
      raw.close();
      old.close();
    }
  });

  it('drops half-sent messages that get no more parts (abandoned sends), so they stop counting against the limit', async () => {
    const raw = new RawClient(join(tmp.dir, 'half.sock'), path);
    try {
      expect((await raw.request({ type: 'hello', id: 1, pid: process.pid })).status).toBe(0);
      expect((await raw.request({ type: 'bind', id: 2, group: 'half', selfDelivery: false })).status).toBe(0);
      const firstPart = (id: number, msgId: number) => raw.request({
        type: 'sendPart', id, order: 'agreed', msgId, total: 100_000, offset: 0, data: new Uint8Array(10),
      });
      for (let m = 1; m <= PARTIALS_PER_SOCKET_MAX; m++) expect((await firstPart(10 + m, m)).status).toBe(0);
      expect((await firstPart(100, 100)).status).toBe(ERROR_NUMBERS.EAGAIN); // too many half-sent
      let statsId = 200;
      const expired = async (): Promise<number> => {
        const r = await raw.request({ type: 'stats', id: statsId++ });
        return r.result.type === 'stats' ? Number(r.result.stats['bridge.partialsExpired']) : NaN;
      };
      await until('the abandoned messages expire', async () => (await expired()) >= PARTIALS_PER_SOCKET_MAX);
      expect((await firstPart(101, 101)).status).toBe(0); // room again
    } finally {
      raw.close();
    }
  });

  it('refuses sockets past sockets_max with EMFILE, and times out on a daemon that does not answer', async () => {
    await until('earlier sockets gone', () => bridge.stats().sockets === 0);
    const open: ClusterSocket[] = [];
    try {
      for (;;) open.push(await ClusterSocket.open({ path }));
    } catch (e) {
      expect(e).toMatchObject({ code: 'EMFILE' });
    }
    expect(open.length).toBe(limits.socketsMax);
    await Promise.all(open.map((s) => s.close()));
    const mute = new RawClient(join(tmp.dir, 'mute.sock'), '/nonexistent');
    await expect(ClusterSocket.open({ path: mute.path, timeoutMs: 200 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    mute.close();
    await expect(ClusterSocket.open({ path: join(tmp.dir, 'nobody.sock') })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('ends the stream with ECONNREFUSED when a restarted daemon no longer knows the socket (keepalive)', async () => {
    // A fake daemon: answers HELLO, then answers everything EPROTO, as a restarted daemon would.
    const fakePath = join(tmp.dir, 'fake.sock');
    const fake = createUnixSocket();
    fake.on('message', (buf, rinfo) => {
      const d = decodeClientDatagram(buf);
      if (d.type !== 'request' || !rinfo.path) return;
      const r = d.request;
      const reply = r.type === 'hello'
        ? encodeReply({ type: 'reply', op: OP.hello | REPLY_BIT, id: r.id, status: 0, result: { type: 'hello', hello: { nodeId: 9, pid: r.pid, port: 1, messageSizeMax: 100, driver: 'fake' } } })
        : encodeReply({ type: 'reply', op: OP[r.type] | REPLY_BIT, id: r.id, status: ERROR_NUMBERS.EPROTO, result: { type: 'none' } });
      fake.send(Buffer.from(reply), 0, reply.length, rinfo.path, () => {});
    });
    bindUnix(fake, fakePath);
    const s = await ClusterSocket.open({ path: fakePath, keepaliveMs: 50 });
    const events: SocketEvent[] = [];
    for await (const ev of s) events.push(ev);
    expect(events).toEqual([expect.objectContaining({ type: 'error', code: 'ECONNREFUSED' })]);
    fake.close();
  });

  it('the client drops a MESSAGE_PART that runs past its message\'s total (counted), and puts the next message together whole', async () => {
    const fakePath = join(tmp.dir, 'fake-parts.sock');
    const fake = createUnixSocket();
    const sender = { nodeId: 9, pid: 5, port: 2 };
    const part = (msgId: number, total: number, offset: number, text: string) =>
      encodeMessagePart({ group: 'g', sender, order: 'agreed', msgId, total, offset, data: new TextEncoder().encode(text) });
    fake.on('message', (buf, rinfo) => {
      const d = decodeClientDatagram(buf);
      if (d.type !== 'request' || !rinfo.path || d.request.type !== 'hello') return;
      const hello = encodeReply({ type: 'reply', op: OP.hello | REPLY_BIT, id: d.request.id, status: 0, result: { type: 'hello', hello: { nodeId: 9, pid: d.request.pid, port: 1, messageSizeMax: 100, driver: 'fake' } } });
      // 8 bytes announced, 6 + 5 sent: the second part would write past the end. Then "hello" whole.
      for (const b of [hello, part(1, 8, 0, 'abcdef'), part(1, 8, 6, 'ghijk'), part(2, 5, 0, 'hel'), part(2, 5, 3, 'lo')]) {
        fake.send(Buffer.from(b), 0, b.length, rinfo.path, () => {});
      }
    });
    bindUnix(fake, fakePath);
    const s = await ClusterSocket.open({ path: fakePath, keepaliveMs: 0, timeoutMs: 300 });
    try {
      const it = s[Symbol.asyncIterator]();
      const ev = (await it.next()).value as SocketEvent;
      expect(ev).toMatchObject({ type: 'message', group: 'g', sender, order: 'agreed' });
      expect(new TextDecoder().decode((ev as { data: Uint8Array }).data)).toBe('hello');
      expect(s.badDatagrams).toBe(1);
    } finally {
      await s.close(); // the fake answers nothing else: close gives up after its timeout
      fake.close();
    }
  });

  it('keeps at most sendWindow sends unanswered, and refuses a window out of range', async () => {
    const window = 3, total = 10;
    const fakePath = join(tmp.dir, 'fake-window.sock');
    const fake = createUnixSocket();
    const pending: number[] = [];
    const arrived: number[] = [];
    let maxUnanswered = 0;
    const answer = (to: string, op: number, id: number) => {
      const b = encodeReply({ type: 'reply', op: op | REPLY_BIT, id, status: 0, result: { type: 'none' } });
      fake.send(Buffer.from(b), 0, b.length, to, () => {});
    };
    fake.on('message', (buf, rinfo) => {
      const to = rinfo.path;
      if (!to) return;
      const d = decodeClientDatagram(buf);
      const requests = d.type === 'request' ? [d.request] : d.type === 'batch' ? d.items.map((b) => decodeClientDatagram(b)).flatMap((x) => (x.type === 'request' ? [x.request] : [])) : [];
      for (const r of requests) {
        if (r.type === 'hello') {
          const b = encodeReply({ type: 'reply', op: OP.hello | REPLY_BIT, id: r.id, status: 0, result: { type: 'hello', hello: { nodeId: 9, pid: r.pid, port: 1, messageSizeMax: 1000, driver: 'fake' } } });
          fake.send(Buffer.from(b), 0, b.length, to, () => {});
        } else if (r.type === 'send') { pending.push(r.id); arrived.push(r.data[0]); } else answer(to, OP[r.type], r.id);
      }
      maxUnanswered = Math.max(maxUnanswered, pending.length);
      // The oldest answered once the window is full, so that the next may come; all at the end.
      while (pending.length > 0 && (pending.length >= window || arrived.length === total)) answer(to, OP.send, pending.shift() as number);
    });
    bindUnix(fake, fakePath);
    for (const bad of [0, 1025, 1.5]) {
      await expect(ClusterSocket.open({ path: fakePath, sendWindow: bad })).rejects.toMatchObject({ code: 'EINVAL' });
    }
    const s = await ClusterSocket.open({ path: fakePath, keepaliveMs: 0, timeoutMs: 2000, sendWindow: window });
    try {
      expect(s.protocolVersion).toBeGreaterThanOrEqual(2); // pipelined sends
      await Promise.all(Array.from({ length: total }, (_, i) => s.send(Uint8Array.of(i))));
      expect(arrived).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(maxUnanswered).toBe(window); // the window filled, and never more
    } finally {
      await s.close();
      fake.close();
    }
  });

  it('a send whose reply never comes fails with ETIMEDOUT; the sends after it, answered out of order, resolve; later sends, and a large message after one whose parts were never answered, go on', async () => {
    const fakePath = join(tmp.dir, 'fake-lost.sock');
    const fake = createUnixSocket();
    const answered: number[] = [];
    let lostMsgId: number | undefined, partsLost = 0, partsAnswered = 0;
    fake.on('message', (buf, rinfo) => {
      const to = rinfo.path;
      if (!to) return;
      const d = decodeClientDatagram(buf, LARGE_DATAGRAM_MAX); // version 5's parts are larger than DATAGRAM_MAX
      const requests = d.type === 'request' ? [d.request] : d.type === 'batch' ? d.items.map((b) => decodeClientDatagram(b)).flatMap((x) => (x.type === 'request' ? [x.request] : [])) : [];
      const replies: Uint8Array[] = [];
      for (const r of requests) {
        if (r.type === 'hello') {
          replies.push(encodeReply({ type: 'reply', op: OP.hello | REPLY_BIT, id: r.id, status: 0, result: { type: 'hello', hello: { nodeId: 9, pid: r.pid, port: 1, messageSizeMax: 1_000_000, driver: 'fake' } } }));
        } else if (r.type === 'send') {
          if (r.data[0] === 0) continue; // its reply is lost
          answered.push(r.data[0]);
          replies.push(encodeReply({ type: 'reply', op: OP.send | REPLY_BIT, id: r.id, status: 0, result: { type: 'none' } }));
        } else if (r.type === 'sendPart') {
          lostMsgId ??= r.msgId;
          if (r.msgId === lostMsgId) { partsLost++; continue; } // the first large message's part replies are lost
          partsAnswered++;
          replies.push(encodeReply({ type: 'reply', op: OP.sendPart | REPLY_BIT, id: r.id, status: 0, result: { type: 'none' } }));
        } else replies.push(encodeReply({ type: 'reply', op: OP[r.type] | REPLY_BIT, id: r.id, status: 0, result: { type: 'none' } }));
      }
      if (replies.length === 0) return;
      // The newest answered first, in one container (one datagram each could overflow the client's queue).
      const b = replies.length === 1 ? replies[0] : encodeBatch(replies.reverse());
      fake.send(Buffer.from(b), 0, b.length, to, () => {});
    });
    bindUnix(fake, fakePath);
    const s = await ClusterSocket.open({ path: fakePath, keepaliveMs: 0, timeoutMs: 300 });
    try {
      expect(s.protocolVersion).toBeGreaterThanOrEqual(2); // pipelined sends
      const first = Array.from({ length: 8 }, (_, i) => s.send(Uint8Array.of(i)).then(() => 'ok', (e: ClusterError) => e.code));
      expect(await Promise.all(first)).toEqual(['ETIMEDOUT', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
      await Promise.all(Array.from({ length: 600 }, (_, i) => s.send(Uint8Array.of(1 + (i % 250))))); // past the ring's first room, with the window's turns
      expect(answered.length).toBe(7 + 600);
      if (s.protocolVersion >= 4) {
        // A large message streams in parts, each in flight under an id of its own: their replies
        // lost, it fails with ETIMEDOUT, and what comes after it (another large one) goes.
        const big = new Uint8Array(300_000).fill(1);
        expect(await s.send(big).then(() => 'ok', (e: ClusterError) => e.code)).toBe('ETIMEDOUT');
        expect(partsLost).toBeGreaterThanOrEqual(2);
        await s.send(big);
        await s.send(Uint8Array.of(1));
        expect(partsAnswered).toBeGreaterThanOrEqual(2);
      }
    } finally {
      await s.close();
      fake.close();
    }
  });

  it('a daemon on unix-dgram sockets (no native helper) answers HELLO 5 EPROTO; the client says 4 and large messages go in parts', async () => {
    const before = process.env.AFCLUSTER_UNIX_SOCKETS;
    process.env.AFCLUSTER_UNIX_SOCKETS = 'unix-dgram';
    const fallback = (() => {
      try { return loopbackNode(join(tmp.dir, 'fallback.sock'), dead); } finally {
        if (before === undefined) delete process.env.AFCLUSTER_UNIX_SOCKETS; else process.env.AFCLUSTER_UNIX_SOCKETS = before;
      }
    })();
    try {
      const s = await ClusterSocket.open({ path: join(tmp.dir, 'fallback.sock'), keepaliveMs: 0 });
      const fresh = await ClusterSocket.open({ path }); // the native daemon of the other tests
      expect(s.protocolVersion).toBe(4);
      expect(fresh.protocolVersion).toBe(5);
      expect(fallback.bridge.stats().badRequests).toBe(1); // the HELLO 5
      await s.bind('fb');
      const payload = new Uint8Array(150_000).map((_, i) => (i * 3) % 256);
      await s.send(payload);
      for await (const ev of s) if (ev.type === 'message') { expect(new Uint8Array(ev.data)).toEqual(payload); break; }
      expect(fallback.bridge.stats().requestsIn).toBeGreaterThanOrEqual(1 + 1 + 3); // hellos, bind, 3 parts
      await s.close();
      await fresh.close();
    } finally {
      fallback.bridge.close();
    }
  });

  it('send callbacks and a listener that close the socket when the daemon goes away: each callback once, one error event, nothing thrown', async () => {
    const other = loopbackNode(join(tmp.dir, 'gone.sock'), dead);
    const a = await ClusterSocket.open({ path: join(tmp.dir, 'gone.sock'), keepaliveMs: 0 });
    const b = await ClusterSocket.open({ path: join(tmp.dir, 'gone.sock'), keepaliveMs: 0 });
    await a.bind('gone');
    await b.bind('gone');
    const events: SocketEvent[] = [];
    b.listen((ev) => { events.push(ev); if (ev.type === 'error') void b.close(); });
    other.bridge.close();
    // Three sends in one tick go out in one container that fails; each callback closes the
    // socket (a request of its own, made while the failed container's sends are being settled).
    const answers: (Error | null)[][] = [[], [], []];
    for (let i = 0; i < 3; i++) a.send(`m${i}`, {}, (e) => { answers[i].push(e); if (e) void a.close(); });
    await until('every send answered', () => answers.every((x) => x.length > 0));
    await b.members().catch(() => undefined); // b finds the daemon gone
    await until('b ended', () => events.some((ev) => ev.type === 'error'));
    await new Promise((r) => setTimeout(r, 50));
    expect(answers.map((x) => x.map((e) => (e as ClusterError | null)?.code))).toEqual([['ECONNREFUSED'], ['ECONNREFUSED'], ['ECONNREFUSED']]);
    expect(events.filter((ev) => ev.type === 'error')).toEqual([expect.objectContaining({ code: 'ECONNREFUSED' })]);
  });

  it('ends the stream with ECONNREFUSED when the daemon goes away', async () => {
    const other = loopbackNode(join(tmp.dir, 'other.sock'), dead);
    const s = await ClusterSocket.open({ path: join(tmp.dir, 'other.sock'), keepaliveMs: 0 });
    await s.bind('x');
    other.bridge.close();
    const events: SocketEvent[] = [];
    for await (const ev of s) events.push(ev);
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'ECONNREFUSED' });
  });
});
