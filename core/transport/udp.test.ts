// Proves the UDP transport maps sources to node ids, fans out (udpu) or multicasts to every other node, drops and counts unknown sources, and counts send errors instead of throwing; on the native helper's sockets and on Node's dgram alike. The native sockets' queue behind a full send buffer is driven through a stand-in for the helper.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { parseConfig } from '../config/parse.ts';
import type { NodeConfig } from '../config/types.ts';
import { DriverRegistry } from '../driver/registry.ts';
import { z } from 'zod';
import { isClusterError } from '../api/errors.ts';
import { openUdpTransport, SEND_QUEUE_BYTES_MAX, type UdpTransportOptions } from './udp.ts';
import { loadNative, type NativeUdpSockets } from '../native/index.ts';
import type { Transport } from './types.ts';
import { freeUdpPort, waitFor } from './testing.ts';

const registry = new DriverRegistry();
registry.register({
  name: 'none', summary: 'config only', optionsSchema: z.strictObject({}),
  guarantees: { fifo: false, agreed: false, safe: false, virtualSynchrony: false },
  create() { throw new Error('unused'); },
});

function configs(n: number, port: number, extra = ''): NodeConfig[] {
  const nodes = Array.from({ length: n }, (_, k) => `{ id = ${k + 1}, addr = "127.0.0.${k + 1}:${port}" }`).join(', ');
  return Array.from({ length: n }, (_, k) => parseConfig(
    `[node]\nid = ${k + 1}\n[cluster]\ndriver = "none"\nnodes = [ ${nodes} ]\n${extra}`, `node${k + 1}.toml`, registry));
}

let open: Transport[] = [];
afterEach(async () => {
  await Promise.all(open.map((t) => t.close()));
  open = [];
});

/** The sockets under test: the native helper's where it was built (else its tests are skipped), and dgram's. */
const SOCKETS = ['native', 'dgram'] as const;
let sockets: UdpTransportOptions['sockets'] = 'dgram';
const skipNative = (ctx: { skip: (note?: string) => void }): void => {
  if (sockets === 'native' && !loadNative()) ctx.skip('the native helper is not built');
};

async function start(cs: NodeConfig[]): Promise<{ ts: Transport[]; got: Array<Array<[number, string]>> }> {
  const ts = await Promise.all(cs.map((config) => openUdpTransport({ config, sockets })));
  open.push(...ts);
  const got = ts.map((t) => {
    const list: Array<[number, string]> = [];
    t.onDatagram((from, bytes) => list.push([from, bytes.toString()]));
    return list;
  });
  return { ts, got };
}

describe.each(SOCKETS)('%s sockets', (kind) => {
beforeEach((ctx) => {
  sockets = kind;
  skipNative(ctx);
});

describe.each(['udpu', 'multicast'] as const)('%s transport', (mode) => {
  it('sends to one node and broadcasts to every other node, never to itself', async () => {
    const port = await freeUdpPort();
    const group = `239.192.${(port >> 8) & 0xff}.${port & 0xff}:${port}`;
    const extra = mode === 'multicast' ? `transport = "multicast"\nmulticast_addr = "${group}"\n` : '';
    const { ts, got } = await start(configs(3, port, extra));
    ts[0].send(3, Buffer.from('to-three'));
    ts[1].broadcast(Buffer.from('from-two'));
    await waitFor(() => got[2].length === 2 && got[0].length === 1, 'datagrams');
    expect(got[2].sort()).toEqual([[1, 'to-three'], [2, 'from-two']]);
    expect(got[0]).toEqual([[2, 'from-two']]);
    expect(got[1]).toEqual([]);
    expect(ts[1].stats().sentDatagrams).toBe(mode === 'multicast' ? 1 : 2);
    if (mode === 'multicast') await waitFor(() => ts[1].stats().droppedSelf === 1, 'own multicast looped back and dropped');
    expect(ts[2].stats().recvDatagrams).toBe(2);
    expect(ts[2].stats().nativeSockets).toBe(kind === 'native' ? 1 : 0);
  });
});

describe('udp transport', () => {
  it('drops and counts datagrams from unknown sources, including a known address on another port', async () => {
    const port = await freeUdpPort();
    const { ts, got } = await start(configs(2, port));
    const stranger = dgram.createSocket('udp4');
    await new Promise<void>((r) => stranger.bind(0, '127.0.0.3', r));
    stranger.send('hello', port, '127.0.0.1');
    const wrongPort = dgram.createSocket('udp4');
    await new Promise<void>((r) => wrongPort.bind(0, '127.0.0.2', r));
    wrongPort.send('hello', port, '127.0.0.1');
    await waitFor(() => ts[0].stats().droppedUnknownSource === 2, 'two unknown-source drops');
    stranger.close();
    wrongPort.close();
    expect(got[0]).toEqual([]);
  });

  it('logs unknown sources at most once per 10 s for all of them, naming the first', async () => {
    const port = await freeUdpPort();
    const logs: Array<[string, Record<string, unknown> | undefined]> = [];
    const t = await openUdpTransport({ config: configs(1, port)[0], sockets, log: (_level, msg, fields) => logs.push([msg, fields]) });
    open.push(t);
    const stranger = dgram.createSocket('udp4');
    await new Promise<void>((r) => stranger.bind(0, '127.0.0.3', r));
    const started = performance.now();
    for (let i = 0; i < 20; i++) stranger.send('hello', port, '127.0.0.1');
    await waitFor(() => t.stats().droppedUnknownSource === 20, 'twenty unknown-source drops');
    stranger.close();
    expect(logs.length).toBeGreaterThanOrEqual(1);
    expect(logs.length).toBeLessThanOrEqual(1 + Math.floor((performance.now() - started) / 10_000));
    expect(logs[0][0]).toMatch(/^dropped a datagram from 127\.0\.0\.3:\d+, which is no configured node's address and port \(cluster\.nodes\)/);
    expect(logs[0][1]).toMatchObject({ suppressed: 0, bytes: 5 });
  });

  it('counts send errors and sends to unknown nodes without throwing', async () => {
    const port = await freeUdpPort();
    const { ts, got } = await start(configs(2, port));
    ts[0].send(99, Buffer.from('x'));
    ts[0].send(1, Buffer.from('self'));
    ts[0].send(2, Buffer.alloc(70_000)); // larger than any UDP datagram: EMSGSIZE from the kernel
    await waitFor(() => ts[0].stats().sendErrors === 1, 'send error counted');
    expect(ts[0].stats()).toMatchObject({ sendUnknownNode: 2, sendErrors: 1, sendError_EMSGSIZE: 1 });
    await ts[0].close();
    ts[0].send(2, Buffer.from('after close'));
    expect(ts[0].stats().sendErrors).toBe(2);
    expect(got[1]).toEqual([]);
  });

  it('takes IPv6 nodes, an address written two ways being one source', async () => {
    const port = await freeUdpPort();
    const nodes = `nodes = [ { id = 1, addr = "[::1]:${port}" }, { id = 2, addr = "[0:0::1]:${port + 1}" } ]`;
    const cs = [1, 2].map((id) => parseConfig(`[node]\nid = ${id}\n[cluster]\ndriver = "none"\n${nodes}\n`, `node${id}.toml`, registry));
    const { ts, got } = await start(cs);
    ts[0].broadcast(Buffer.from('six'));
    ts[1].send(1, Buffer.from('back'));
    await waitFor(() => got[0].length + got[1].length + ts[0].stats().droppedUnknownSource + ts[1].stats().droppedUnknownSource === 2, 'two datagrams');
    expect(got[1]).toEqual([[1, 'six']]);
    expect(got[0]).toEqual([[2, 'back']]);
  });

  it('takes IPv4 nodes written as IPv6, however the IPv6 is written (::ffff:a.b.c.d, 0:0:0:0:0:FFFF:7f00:2)', async () => {
    const port = await freeUdpPort();
    const nodes = `nodes = [ { id = 1, addr = "[::ffff:127.0.0.1]:${port}" }, { id = 2, addr = "[0:0:0:0:0:FFFF:7f00:2]:${port}" } ]`;
    const cs = [1, 2].map((id) => parseConfig(`[node]\nid = ${id}\n[cluster]\ndriver = "none"\n${nodes}\n`, `node${id}.toml`, registry));
    const { ts, got } = await start(cs);
    ts[0].send(2, Buffer.from('four'));
    ts[1].broadcast(Buffer.from('in six'));
    await waitFor(() => got[0].length + got[1].length + ts[0].stats().droppedUnknownSource + ts[1].stats().droppedUnknownSource === 2, 'two datagrams');
    expect(got).toEqual([[[2, 'in six']], [[1, 'four']]]);
  });

  it('asks for large socket buffers and reports what the kernel gave', async () => {
    const port = await freeUdpPort();
    const { ts } = await start(configs(1, port));
    expect(ts[0].stats().recvBufferBytes).toBeGreaterThan(0);
    expect(ts[0].stats().sendBufferBytes).toBeGreaterThan(0);
  });

  it('refuses a port already in use with EADDRINUSE', async () => {
    const port = await freeUdpPort();
    const cs = configs(1, port);
    await start(cs);
    const err = await openUdpTransport({ config: cs[0], sockets }).catch((e: unknown) => e);
    expect(isClusterError(err, 'EADDRINUSE')).toBe(true);
    expect((err as Error).message).toMatch(`cannot listen on 127.0.0.1:${port}: address in use`);
  });

  it('close() lets queued datagrams leave first', async () => {
    const port = await freeUdpPort();
    const { ts, got } = await start(configs(2, port));
    for (let i = 0; i < 50; i++) ts[0].send(2, Buffer.from(`m${i}`));
    await ts[0].close();
    await waitFor(() => got[1].length === 50, 'all 50 datagrams');
    expect(ts[0].stats()).toMatchObject({ sentDatagrams: 50, sendErrors: 0 });
  });
});
});

/** A stand-in for the helper's UDP sockets whose send buffer is full while `full` is set. */
function fullBuffer(): { native: NativeUdpSockets; sent: string[]; state: { full: boolean; fail?: number; writable?: () => void } } {
  const sent: string[] = [];
  const state: { full: boolean; fail?: number; writable?: () => void } = { full: false };
  const native: NativeUdpSockets = {
    open: (_family, _onMessage, onWritable) => { state.writable = onWritable; return {}; },
    bind: () => 0,
    multicast: () => 0,
    sockaddr: (host, port) => Buffer.from(`${host}:${port}`),
    sourceKey: (host, port) => `${host} ${port}`,
    send: (_h, bytes, to) => {
      if (state.full) return -11; // EAGAIN
      if (state.fail !== undefined) return state.fail;
      sent.push(`${to.toString()} ${Buffer.concat(Array.isArray(bytes) ? bytes : [bytes]).toString()}`);
      return 0;
    },
    recvBuffer: () => 1, sendBuffer: () => 1, port: () => 1, fd: () => 3, close: () => 0,
  };
  return { native, sent, state };
}

describe('native sockets behind a full send buffer', () => {
  it('queue in order, send when there is room, and drop and count past their bound', async () => {
    const fake = fullBuffer();
    const t = await openUdpTransport({ config: configs(3, 5405)[0], sockets: { native: fake.native } });
    open.push(t);
    expect(t.stats().nativeSockets).toBe(1);
    t.send(2, Buffer.from('a'));
    fake.state.full = true;
    t.broadcast([Buffer.from('b'), Buffer.from('c')]);
    fake.state.full = false;
    t.send(3, Buffer.from('d')); // behind the queue, not before it
    expect(fake.sent).toEqual(['127.0.0.2:5405 a']);
    expect(t.stats()).toMatchObject({ sendsInFlight: 3, sentDatagrams: 4, sendErrors: 0 });
    fake.state.writable?.();
    expect(fake.sent).toEqual(['127.0.0.2:5405 a', '127.0.0.2:5405 bc', '127.0.0.3:5405 bc', '127.0.0.3:5405 d']);
    expect(t.stats().sendsInFlight).toBe(0);

    fake.state.full = true;
    const big = Buffer.alloc(SEND_QUEUE_BYTES_MAX / 2);
    t.send(2, big);
    t.send(2, big);
    t.send(2, Buffer.from('one byte over'));
    expect(t.stats()).toMatchObject({ sendsInFlight: 2, sendErrors: 1, sendError_EAGAIN: 1 });
    fake.state.full = false;
    fake.state.fail = -90; // EMSGSIZE, found when the queue drains
    fake.state.writable?.();
    expect(t.stats()).toMatchObject({ sendsInFlight: 0, sendErrors: 3, sendError_EMSGSIZE: 2 });
  });

  it('close() waits for the queue, then closes', async () => {
    const fake = fullBuffer();
    const t = await openUdpTransport({ config: configs(2, 5405)[0], sockets: { native: fake.native } });
    fake.state.full = true;
    t.send(2, Buffer.from('late'));
    expect(t.stats().sendsInFlight).toBe(1);
    const closing = t.close();
    fake.state.full = false;
    setTimeout(() => fake.state.writable?.(), 10);
    await closing;
    expect(fake.sent).toEqual(['127.0.0.2:5405 late']);
    expect(t.stats()).toMatchObject({ sendErrors: 0 });
  });

  it('close() gives up on a queue that does not drain within its bound, and counts what it dropped', async () => {
    const fake = fullBuffer();
    const t = await openUdpTransport({ config: configs(2, 5405)[0], sockets: { native: fake.native } });
    fake.state.full = true;
    t.send(2, Buffer.from('never'));
    t.send(2, Buffer.from('nor this'));
    await t.close();
    expect(fake.sent).toEqual([]);
    expect(t.stats()).toMatchObject({ sendErrors: 2, sendError_ECANCELED: 2 });
  });

  it('a queue that never empties keeps its memory bounded', async () => {
    const fake = fullBuffer();
    const t = await openUdpTransport({ config: configs(2, 5405)[0], sockets: { native: fake.native } });
    open.push(t);
    fake.state.full = true;
    t.send(2, Buffer.from('first'));
    // Each wake sends one datagram before the buffer is full again, and one more arrives.
    let sends = 0;
    const send = fake.native.send;
    fake.native.send = (h, bytes, to) => (sends++ % 2 === 0 ? (fake.state.full = false, send(h, bytes, to)) : (fake.state.full = true, -11));
    for (let i = 0; i < 5000; i++) {
      t.send(2, Buffer.from(`m${i}`));
      fake.state.writable?.();
    }
    expect(t.stats().sendsInFlight).toBe(1);
    expect(fake.sent).toHaveLength(5000);
    const queue = (t as unknown as { sock: { queue: unknown[] } }).sock.queue;
    expect(queue.length).toBeLessThanOrEqual(2048);
    fake.native.send = send;
    fake.state.full = false;
    fake.state.writable?.();
    expect(t.stats().sendsInFlight).toBe(0);
  });
});

describe('native UDP addresses', () => {
  it('name an IPv6 scope by interface or index, and refuse one that names none', (ctx) => {
    const n = loadNative()?.udpSocket;
    if (!n) return ctx.skip('the native helper is not built');
    expect(n.sourceKey('fe80::1%1', 7)).toBe('fe80::1%1 7');
    expect(n.sourceKey('fe80::1%lo', 7)).toBe('fe80::1%1 7');
    expect(n.sockaddr('fe80::1%no-such-if', 7)).toBe(-19); // ENODEV
    expect(n.sockaddr('fe80::1%-1', 7)).toBe(-19);
    expect(n.sockaddr('fe80::1%99999999999', 7)).toBe(-19);
    expect(n.sockaddr('127.0.0.1', 65536)).toBe(-22); // EINVAL
    expect(n.sockaddr('not an address', 1)).toBe(-22);
    expect(n.sourceKey('10.1.2.3', 5405)).toBe(((10 * 256 + 1) * 256 + 2) * 256 * 65536 + 3 * 65536 + 5405);
  });
});
