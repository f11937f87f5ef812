// The embedded node over real UDP on 127.0.0.1..3: same sequence on every socket, overrun → ENOBUFS, a leaving node → nodedown, errors, both drivers.
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, writeLocalCluster } from '../../core/config/index.ts';
import { builtinRegistry } from '../../drivers/builtin.ts';
import { isClusterError } from '../../core/api/errors.ts';
import { createNode, type EmbeddedNode, type EmbeddedSocket } from '../../sockapi/node.ts';
import { FAST_PROFILE } from '../../drivers/totem/options.ts';
import type { SendOptions, SocketEvent } from '../../core/api/types.ts';
import { tempDir, testPort, until } from '../integration/bridge-helpers.ts';
import { fmtEvent, fmtMember } from '../support/groups.ts';

interface Reader { readonly sock: EmbeddedSocket; readonly events: SocketEvent[]; readonly done: Promise<void>; readonly listening: boolean }

/** Reads every event of `sock` with `for await`, or with listen(). */
function read(sock: EmbeddedSocket, listening = false): Reader {
  const events: SocketEvent[] = [];
  if (listening) {
    sock.listen((ev) => events.push(ev));
    return { sock, events, done: Promise.resolve(), listening };
  }
  const done = (async () => { for await (const ev of sock) events.push(ev); })();
  return { sock, events, done, listening };
}

/** A reader's socket sends: a listening one with send's callback form, the others awaiting its promise. */
function sendBy(r: Reader, data: string, options: SendOptions): Promise<void> {
  if (!r.listening) return r.sock.send(data, options);
  return new Promise((resolve, reject) => r.sock.send(data, options, (e) => (e ? reject(e) : resolve())));
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function cluster(driver: 'totem' | 'cman', limits: Record<string, number> = {}): Promise<EmbeddedNode[]> {
  const registry = builtinRegistry();
  const tmp = tempDir('afc-embedded-');
  cleanups.push(() => tmp.cleanup());
  // This file's port range (test/integration's per-file scheme): 52000 + a per-run slot.
  const basePort = testPort(52000) + (driver === 'totem' ? 0 : 1);
  const { configs } = writeLocalCluster({
    dir: tmp.dir, nodes: 3, driver, basePort, crypto: false, limits,
    // Fast rings, but failure detection slow enough that a loaded machine does not split them.
    driverSections: driver === 'totem' ? { totem: { ...FAST_PROFILE, token_ms: 1000, consensus_ms: 1200 } }
      : { cman: { dead_after_missed: 20 } },
  });
  const nodes: EmbeddedNode[] = [];
  for (const path of configs) {
    const node = await createNode({ config: loadConfig(path, registry), registry });
    nodes.push(node);
    cleanups.push(() => node.close());
  }
  await until('a ring of 3', () => nodes.every((n) => n.localNode().members.length === 3));
  return nodes;
}

const messages = (r: Reader): string[] => r.events.filter((e) => e.type === 'message').map(fmtEvent);

/** Events of a reader from the first one that shows all `n` members (the steady state). */
function fromFull(r: Reader, n: number): string[] {
  const i = r.events.findIndex((e) => e.type === 'membership' && e.members.length === n);
  return r.events.slice(i).map(fmtEvent);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try { await p; return 'ok'; } catch (e) { return isClusterError(e) ? e.code : String(e); }
}

describe('embedded node over UDP', () => {
  it('totem: every socket of a group sees the same sequence (read with for await, or with listen() and sending with callbacks); overrun, nodedown and errors', async () => {
    const nodes = await cluster('totem', { message_size_max: 100_000 });
    const red: Reader[] = []; const blue: Reader[] = [];
    for (const n of nodes) {
      const a = await n.socket(); const b = await n.socket();
      await a.bind('red'); await b.bind('blue');
      red.push(read(a)); blue.push(read(b, true));
    }
    await until('full groups', async () => (await Promise.all([...red, ...blue].map((r) => r.sock.members()))).every((m) => m.length === 3));
    for (let i = 0; i < 5; i++) {
      for (const [k, r] of [...red, ...blue].entries()) await sendBy(r, `m${i}-${k}`, { order: i % 2 ? 'safe' : 'agreed' });
    }
    await until('all messages', () => [...red, ...blue].every((r) => messages(r).length === 15));
    for (const g of [red, blue]) {
      const ref = fromFull(g[0], 3);
      expect(ref.length).toBeGreaterThanOrEqual(16);
      for (const r of g) expect(fromFull(r, 3)).toEqual(ref);
    }

    // A message of exactly limits.message_size_max goes through: the driver's limit has room for the groups header.
    await red[0].sock.send(new Uint8Array(nodes[0].config.limits.messageSizeMax).fill(7));
    await until('full-size message', () => red[1].events.some((e) => e.type === 'message' && e.data.length === 100_000));

    // A socket that never reads overflows its queue: removed with ENOBUFS, others see overrun.
    const slow = await nodes[0].socket({ eventQueueMax: 2 });
    await slow.bind('red');
    await until('slow joined', async () => (await red[1].sock.members()).length === 4);
    for (let i = 0; i < 4; i++) await red[1].sock.send(`flood${i}`);
    await until('overrun seen', () => red[2].events.some((e) => e.type === 'membership' && e.left.some((c) => c.reason === 'overrun')));
    const slowEvents: SocketEvent[] = [];
    const slowReader = (async () => { for await (const ev of slow) { slowEvents.push(ev); if (ev.type === 'error') break; } })();
    await slowReader;
    expect(slowEvents.at(-1)).toMatchObject({ type: 'error', code: 'ENOBUFS' });
    expect(await codeOf(slow.send('x'))).toBe('ENOTCONN');

    // Errors with codes, and AbortSignal.
    expect(await codeOf(red[0].sock.bind('again'))).toBe('EADDRINUSE');
    expect(await codeOf(red[0].sock.send(new Uint8Array(nodes[0].config.limits.messageSizeMax + 1)))).toBe('EMSGSIZE');
    expect(await codeOf(red[0].sock.send('x', { signal: AbortSignal.abort() }))).toBe('ECANCELED');
    expect(await codeOf(red[0].sock.send('x', { signal: {} as AbortSignal }))).toBe('EINVAL'); // not a signal
    expect(await codeOf(red[0].sock.members({ signal: 'soon' as unknown as AbortSignal }))).toBe('EINVAL');

    // Node 3 leaves: the others see its members go with reason nodedown.
    const gone = fmtMember(red[2].sock.self);
    await nodes[2].close();
    await until('nodedown', () => [red[0], red[1]].every((r) => r.events.some((e) => e.type === 'membership'
      && e.left.some((c) => c.reason === 'nodedown' && fmtMember(c.member) === gone))));
    await until('regular after nodedown', () => [red[0], red[1]].every((r) => {
      const last = r.events.at(-1);
      return last?.type === 'membership' && last.kind === 'regular' && last.members.length === 2;
    }));
    const tail = (r: Reader): string[] => r.events.map(fmtEvent).slice(-3);
    expect(tail(red[0])).toEqual(tail(red[1]));
    expect(tail(red[0])[0]).toMatch(/:overrun\]$/);
    await red[0].sock.send('after');
    await until('after', () => messages(red[1]).at(-1)?.endsWith('after'));
    expect((await red[0].sock.localNode()).members).toEqual([1, 2]);
  });

  it('cman: fifo per sender, agreed refused with EOPNOTSUPP, groups converge', async () => {
    const nodes = await cluster('cman');
    const rs: Reader[] = [];
    for (const n of nodes) { const s = await n.socket(); await s.bind('g'); rs.push(read(s)); }
    await until('full group', async () => (await Promise.all(rs.map((r) => r.sock.members()))).every((m) => m.length === 3));
    expect(await codeOf(rs[0].sock.send('x', { order: 'agreed' }))).toBe('EOPNOTSUPP');
    for (let i = 0; i < 10; i++) for (const [k, r] of rs.entries()) await r.sock.send(`${k}:${i}`, { order: 'fifo' });
    await until('all messages', () => rs.every((r) => messages(r).length === 30));
    for (const r of rs) {
      for (const k of [0, 1, 2]) {
        const seq = r.events.flatMap((e) => e.type === 'message' ? [new TextDecoder().decode(e.data)] : []).filter((s) => s.startsWith(`${k}:`));
        expect(seq).toEqual(Array.from({ length: 10 }, (_, i) => `${k}:${i}`));
      }
    }
    const views = await Promise.all(rs.map((r) => r.sock.members()));
    for (const v of views) expect(v).toEqual(views[0]);
  });
});
