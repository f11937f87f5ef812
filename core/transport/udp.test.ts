// Proves the UDP transport maps sources to node ids, fans out (udpu) or multicasts to every other node, drops and counts unknown sources, and counts send errors instead of throwing.
import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { parseConfig } from '../config/parse.ts';
import type { NodeConfig } from '../config/types.ts';
import { DriverRegistry } from '../driver/registry.ts';
import { z } from 'zod';
import { isClusterError } from '../api/errors.ts';
import { openUdpTransport } from './udp.ts';
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

async function start(cs: NodeConfig[]): Promise<{ ts: Transport[]; got: Array<Array<[number, string]>> }> {
  const ts = await Promise.all(cs.map((config) => openUdpTransport({ config })));
  open.push(...ts);
  const got = ts.map((t) => {
    const list: Array<[number, string]> = [];
    t.onDatagram((from, bytes) => list.push([from, bytes.toString()]));
    return list;
  });
  return { ts, got };
}

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
    const t = await openUdpTransport({ config: configs(1, port)[0], log: (_level, msg, fields) => logs.push([msg, fields]) });
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
    const err = await openUdpTransport({ config: cs[0] }).catch((e: unknown) => e);
    expect(isClusterError(err, 'EADDRINUSE')).toBe(true);
    expect((err as Error).message).toMatch(`cannot listen on 127.0.0.1:${port}: address in use`);
  });

  it('close() lets queued datagrams leave first', async () => {
    const port = await freeUdpPort();
    const { ts, got } = await start(configs(2, port));
    for (let i = 0; i < 50; i++) ts[0].send(2, Buffer.from(`m${i}`));
    await ts[0].close();
    expect(ts[0].stats().sendsInFlight).toBe(0);
    await waitFor(() => got[1].length === 50, 'all 50 datagrams');
  });
});
