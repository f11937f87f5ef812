// Proves the runtime runs a driver over real UDP on 127.0.0.1/127.0.0.2, with and without a key: delivery, timers re-armed, received datagrams let go once read, durable state, guarded datagram handling, wrong-key isolation, and a clean leave.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { loadConfig } from '../config/parse.ts';
import { writeLocalCluster } from '../config/local.ts';
import { writeKeyFile } from '../crypto/keyfile.ts';
import { DriverRegistry } from '../driver/registry.ts';
import type { Configuration, Driver, DriverCommon, DriverEntry, DriverHost, Order } from '../driver/types.ts';
import { ClusterError, isClusterError } from '../api/errors.ts';
import { freeUdpPort, waitFor } from '../transport/testing.ts';
import { resolveMtu } from '../transport/mtu.ts';
import { NATIVE_AEAD_MIN_BYTES } from '../crypto/sealer.ts';
import { loadNative } from '../native/index.ts';
import { leaseCounters, poisonRelease, setReleaser } from '../wire/lease.ts';
import type { Transport } from '../transport/types.ts';
import { FileStateStore, createCryptoRng } from './host.ts';
import { startRuntime, type Runtime } from './runtime.ts';

// A tiny driver: unordered best-effort multicast sent from handleTimeout with self-delivery, a heartbeat on a timer,
// a boot counter in the state store, and a datagram type that makes it throw.
const MSG = 0x4d; // 'M'
const BEAT = 0x42; // 'B'
const LEAVE = 0x4c; // 'L'
const BOOM = 0x58; // 'X'

interface EchoOptions { beat_ms: number }

class EchoDriver implements Driver {
  readonly name = 'echo';
  readonly guarantees = { fifo: false, agreed: false, safe: false, virtualSynchrony: false };
  beatsFrom = new Map<number, number>();
  boots = 0;
  private next = Infinity;
  private readonly outbox: Uint8Array[] = [];
  private quiet = false;
  constructor(readonly common: DriverCommon, private readonly opts: EchoOptions, private readonly host: DriverHost) {}

  start(): void {
    this.boots = (this.host.state.load('boots')?.[0] ?? 0) + 1;
    this.host.state.save('boots', Uint8Array.of(this.boots));
    this.next = this.host.now() + this.opts.beat_ms;
  }
  handleDatagram(from: number, bytes: Uint8Array): void {
    switch (bytes[0]) {
      case MSG: this.host.deliver(from, bytes.subarray(1), 'fifo'); break;
      case BEAT: this.beatsFrom.set(from, (this.beatsFrom.get(from) ?? 0) + 1); break;
      case LEAVE: this.host.configuration({ kind: 'regular', ringId: { rep: this.host.nodeId, seq: 1 },
        members: [this.host.nodeId], left: [from], joined: [] }); break;
      case BOOM: throw new Error('boom');
      default: break;
    }
  }
  handleTimeout(): void {
    if (this.quiet) return;
    for (const frame of this.outbox.splice(0)) {
      this.host.transmit('all', frame);
      this.host.deliver(this.host.nodeId, frame.subarray(1), 'fifo');
    }
    if (this.host.now() < this.next) return;
    this.host.transmit('all', Uint8Array.of(BEAT));
    this.next = this.host.now() + this.opts.beat_ms;
  }
  nextDeadline(): number {
    if (this.quiet) return Infinity;
    // Like real drivers: queued work is due "now", read from the host clock at the call.
    return this.outbox.length > 0 ? this.host.now() : this.next;
  }
  multicast(payload: Uint8Array, order: Order): void {
    if (order !== 'fifo') throw new ClusterError('EOPNOTSUPP', 'echo gives no order');
    if (payload.length > this.common.messageSizeMax || payload.length + 1 > this.common.mtu) throw new ClusterError('EMSGSIZE', 'too big');
    if (this.outbox.length >= 64) throw new ClusterError('EAGAIN', 'outbox full');
    const frame = new Uint8Array(payload.length + 1);
    frame[0] = MSG;
    frame.set(payload, 1);
    this.outbox.push(frame); // sent from handleTimeout, as soon as the host calls it
  }
  leave(): void {
    this.host.transmit('all', Uint8Array.of(LEAVE));
    this.quiet = true;
  }
  stats() {
    return { boots: this.boots, beats: [...this.beatsFrom.values()].reduce((a, b) => a + b, 0) };
  }
  checkInvariants(): void {}
}

const echoEntry: DriverEntry<EchoOptions> = {
  name: 'echo', summary: 'test driver', guarantees: { fifo: false, agreed: false, safe: false, virtualSynchrony: false },
  optionsSchema: z.strictObject({ beat_ms: z.int().min(1).default(20) }),
  create: (common, options, host) => new EchoDriver(common, options, host),
};
const registry = new DriverRegistry();
registry.register(echoEntry);

interface Node {
  rt: Runtime;
  delivered: Array<[number, string]>;
  confs: Configuration[];
  logs: string[];
}

const root = mkdtempSync(join(tmpdir(), 'afc-runtime-'));
let running: Runtime[] = [];
afterEach(async () => {
  await Promise.all(running.map((r) => r.stop()));
  running = [];
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function startNode(configPath: string): Promise<Node> {
  const node: Node = { rt: undefined as unknown as Runtime, delivered: [], confs: [], logs: [] };
  node.rt = await startRuntime({
    config: loadConfig(configPath, registry), registry,
    upcalls: { deliver: (s, p) => node.delivered.push([s, Buffer.from(p).toString()]), configuration: (c) => node.confs.push(c) },
    log: (level, msg) => node.logs.push(`${level}: ${msg}`),
  });
  running.push(node.rt);
  return node;
}

async function cluster(name: string, crypto: boolean): Promise<{ configs: string[]; nodes: Node[] }> {
  const out = writeLocalCluster({ dir: join(root, name), nodes: 2, driver: 'echo', basePort: await freeUdpPort(), crypto,
    clusterName: name });
  return { configs: out.configs, nodes: [await startNode(out.configs[0]), await startNode(out.configs[1])] };
}

const echoOf = (n: Node) => n.rt.driver as EchoDriver;

/** A 2-node cluster with a key in `name` whose node 2 restarted with another key (`started`: just before). */
async function twoKeys(name: string): Promise<{ a: Node; b: Node; started: number }> {
  const { configs, nodes: [a] } = await cluster(name, true);
  await running[1].stop();
  running = running.slice(0, 1);
  const other = join(root, name, 'other.key');
  writeKeyFile(other);
  // Same config as node 2, other key.
  const path2 = configs[1].replace('node2.toml', 'node2-otherkey.toml');
  writeFileSync(path2, readFileSync(configs[1], 'utf8').replace(/key_file = ".*"/, `key_file = ${JSON.stringify(other)}`));
  const started = performance.now();
  return { a, b: await startNode(path2), started };
}

describe.each([['without a key', false], ['with a key', true]] as const)('runtime %s', (_label, crypto) => {
  it('delivers multicasts both ways, runs the driver\'s timer, and seals every datagram', async () => {
    const { nodes: [a, b] } = await cluster(crypto ? 'sealed' : 'plain', crypto);
    a.rt.multicast(Buffer.from('hello from 1'), 'fifo');
    b.rt.multicast(Buffer.from('hello from 2'), 'fifo');
    await waitFor(() => a.delivered.length === 2 && b.delivered.length === 2, 'both messages at both nodes');
    expect(a.delivered.sort()).toEqual([[1, 'hello from 1'], [2, 'hello from 2']]);
    expect(b.delivered.sort()).toEqual([[1, 'hello from 1'], [2, 'hello from 2']]);
    await waitFor(() => (echoOf(b).beatsFrom.get(1) ?? 0) >= 3 && (echoOf(a).beatsFrom.get(2) ?? 0) >= 3, 'three heartbeats each way');
    const st = a.rt.stats() as { crypto: { encrypted: boolean; sealed: number; opened: number }; runtime: { timeouts: number } };
    expect(st.crypto.encrypted).toBe(crypto);
    expect(st.crypto.sealed).toBeGreaterThanOrEqual(4);
    expect(st.crypto.opened).toBeGreaterThanOrEqual(4);
    expect(st.runtime.timeouts).toBeGreaterThanOrEqual(3);
    // cluster.mtu = "auto": loopback's MTU, less the IP and UDP headers and the seal's.
    const net = resolveMtu('auto', '127.0.0.1').mtu;
    expect(echoOf(a).common).toEqual({ nodeId: 1, nodes: [1, 2], mtu: net - 28 - (crypto ? 68 : 28), messageSizeMax: 1024 * 1024,
      headroom: crypto ? 0 : 28 });
    expect(a.logs.some((l) => l.startsWith('warn: no [crypto] key_file'))).toBe(!crypto);
  });

  it('carries a datagram large enough for OpenSSL\'s seal (sent as gathered parts with a key) over real UDP', async () => {
    const { nodes: [a, b] } = await cluster(crypto ? 'sealed-large' : 'plain-large', crypto);
    const big = 'x'.repeat(NATIVE_AEAD_MIN_BYTES + 5000);
    a.rt.multicast(Buffer.from(big), 'fifo');
    await waitFor(() => b.delivered.length === 1, 'the large datagram at node 2');
    expect(b.delivered).toEqual([[1, big]]);
    expect((b.rt.stats() as { crypto: { opened: number } }).crypto.opened).toBeGreaterThanOrEqual(1);
  });

  // The daemon's UDP datagrams are the native helper's (core/transport/udp.ts owns them); without it nothing is owned.
  it.runIf(loadNative() !== undefined)('lets a received datagram go once read and a sealed one once sent: with a key its ciphertext at once, the plaintext intact; without, the driver decides', async () => {
    setReleaser((m) => poisonRelease(m)); // a view read after its release reads 0xdb
    try {
      const { nodes: [a, b] } = await cluster(crypto ? 'release-sealed' : 'release-plain', crypto);
      const big = 'y'.repeat(NATIVE_AEAD_MIN_BYTES + 5000); // libsodium's seal below it, OpenSSL's above
      for (const text of ['a small one', big, 'another']) a.rt.multicast(Buffer.from(text), 'fifo');
      await waitFor(() => b.delivered.length === 3 && (echoOf(b).beatsFrom.get(1) ?? 0) >= 2, 'three messages and two heartbeats at node 2');
      expect(b.delivered).toEqual([[1, 'a small one'], [1, big], [1, 'another']]);
      const counts = [a, b].map((x) => (x.rt.stats() as { crypto: { opened: number; sealed: number } }).crypto);
      const opened = counts.reduce((n, c) => n + c.opened, 0);
      const sealed = counts.reduce((n, c) => n + c.sealed, 0);
      expect(opened).toBeGreaterThanOrEqual(5);
      // With a key every opened datagram's ciphertext went back in the call that opened it, and every
      // datagram sealed once sent, small ones (libsodium's) included; the echo driver anchors
      // nothing, so without a key nothing did.
      if (crypto) expect(leaseCounters.released).toBeGreaterThanOrEqual(opened + sealed);
      else expect(leaseCounters.released).toBe(0);
      expect(leaseCounters.unbalanced).toBe(0);
    } finally {
      setReleaser(undefined);
    }
  });

  it('runs work the driver says is due now in this turn of the event loop, not a timer tick later', async () => {
    const { nodes: [a] } = await cluster(crypto ? 'now-sealed' : 'now-plain', crypto);
    a.rt.multicast(Buffer.from('at once'), 'fifo');
    expect(a.delivered).toEqual([]); // deferred to handleTimeout, as drivers do
    // Immediates run in the order queued: the runtime's (queued by multicast) comes before this one.
    // A setTimeout(0), which Node makes 1 ms, would still be pending here.
    await new Promise((r) => setImmediate(r));
    expect(a.delivered).toEqual([[1, 'at once']]);
  });

  it('runs work due now at once even while a timeout armed for an earlier deadline has not fired yet', async () => {
    const { nodes: [a] } = await cluster(crypto ? 'overdue-sealed' : 'overdue-plain', crypto);
    const echo = echoOf(a);
    const host = (echo as unknown as { host: DriverHost }).host;
    // The next time nothing is due now, the driver asks for a deadline 0.3 ms away: the runtime
    // arms a timeout, which Node fires a millisecond or more after it is armed.
    let soon: number | undefined;
    const own = echo.nextDeadline.bind(echo);
    echo.nextDeadline = () => {
      const d = own();
      if (d <= host.now()) return d;
      soon ??= host.now() + 0.3;
      return Math.min(d, soon);
    };
    a.rt.multicast(Buffer.from('first'), 'fifo');
    await new Promise((r) => setImmediate(r));
    expect(a.delivered).toEqual([[1, 'first']]);
    expect(soon).toBeDefined(); // armed after the first message went
    while (host.now() <= soon!) { /* that deadline passes; its timeout cannot fire meanwhile */ }
    a.rt.multicast(Buffer.from('second'), 'fifo');
    await new Promise((r) => setImmediate(r));
    expect(a.delivered).toEqual([[1, 'first'], [1, 'second']]);
  });
});

describe('runtime', () => {
  it('survives a datagram the driver throws on: logged, counted, still delivering', async () => {
    const { nodes: [a, b] } = await cluster('boom', true);
    // Node 1's driver host sends the poison byte, sealed like any datagram.
    (a.rt.driver as unknown as { host: DriverHost }).host.transmit(2, Uint8Array.of(BOOM));
    await waitFor(() => (b.rt.stats() as { runtime: { handleDatagramErrors: number } }).runtime.handleDatagramErrors === 1, 'error counted');
    expect(b.logs).toContain('error: driver failed on a datagram; dropped it');
    a.rt.multicast(Buffer.from('after'), 'fifo');
    await waitFor(() => b.delivered.length === 1, 'delivery after the error');
    expect(b.delivered).toEqual([[1, 'after']]);
  });

  it('a node with another key hears nothing: datagrams dropped as unauthenticated, and said so once per source', async () => {
    const { a, b, started } = await twoKeys('twokeys');
    a.rt.multicast(Buffer.from('secret'), 'fifo');
    await waitFor(() => (b.rt.stats() as { crypto: { droppedAuth: number } }).crypto.droppedAuth >= 2, 'forged datagrams dropped');
    expect(b.delivered).toEqual([]);
    expect(echoOf(b).beatsFrom.size).toBe(0);
    // Every such drop is either a line (at most one per source per 10 s) or counted as suppressed;
    // the line names the source address and hints at the cause. Stats and logs read in one tick.
    const st = (b.rt.stats() as { crypto: { droppedAuth: number; dropLogsSuppressed: number } }).crypto;
    const warned = b.logs.filter((l) => l.includes('failed authentication'));
    expect(warned.length + st.dropLogsSuppressed).toBe(st.droppedAuth);
    expect(warned.length).toBeLessThanOrEqual(1 + Math.floor((performance.now() - started) / 10_000));
    expect(warned[0]).toMatch(/^warn: datagram from 127\.0\.0\.1:\d+ \(node 1\) failed authentication: a different key, or a different cluster name\?/);
  });

  it.runIf(loadNative() !== undefined)('lets a refused datagram go once its drop is reported, the report intact', async () => {
    setReleaser((m) => poisonRelease(m)); // a view read after its release reads 0xdb
    try {
      const { a, b } = await twoKeys('twokeys-release');
      a.rt.multicast(Buffer.from('secret'), 'fifo');
      const dropped = () => [a, b].reduce((n, x) => n + (x.rt.stats() as { crypto: { droppedAuth: number } }).crypto.droppedAuth, 0);
      await waitFor(() => dropped() >= 4, 'forged datagrams dropped at both nodes');
      expect(b.delivered).toEqual([]);
      expect(leaseCounters.released).toBeGreaterThanOrEqual(dropped());
      expect(leaseCounters.unbalanced).toBe(0);
      expect(b.logs.find((l) => l.includes('failed authentication'))).toMatch(/^warn: datagram from 127\.0\.0\.1:\d+ \(node 1\) failed authentication/);
    } finally {
      setReleaser(undefined);
    }
  });

  it('stop({leave: true}) sends the driver\'s goodbye before closing', async () => {
    const { nodes: [a, b] } = await cluster('leave', false);
    await a.rt.stop({ leave: true });
    await waitFor(() => b.confs.length === 1, 'the other node sees the leave');
    expect(b.confs[0]).toMatchObject({ left: [1] });
    expect(() => a.rt.multicast(Buffer.from('x'), 'fifo')).toThrow(/ENOTCONN/);
  });

  it('keeps durable state across restarts in node.state_dir', async () => {
    const { configs, nodes: [a] } = await cluster('state', false);
    expect(echoOf(a).boots).toBe(1);
    await a.rt.stop();
    const again = await startNode(configs[0]);
    expect(echoOf(again).boots).toBe(2);
    expect(readdirSync(join(root, 'state', 'node1-state')).sort()).toEqual(['boots', 'incarnation', 'replay-marks']);
  });

  it('refuses to start with a key file others can read, and passes driver errors to the caller', async () => {
    const { configs, nodes: [a] } = await cluster('perms', true);
    expect(() => a.rt.multicast(Buffer.from('x'), 'agreed')).toThrow(/EOPNOTSUPP/);
    await Promise.all(running.map((r) => r.stop()));
    running = [];
    chmodSync(join(root, 'perms', 'authkey'), 0o644);
    const err = await startNode(configs[0]).catch((e: unknown) => e);
    expect(isClusterError(err, 'EACCES')).toBe(true);
    expect((err as Error).message).toMatch(/chmod 600 .*authkey/);
  });
});

describe('host pieces', () => {
  it('FileStateStore saves atomically (no temp file left) and refuses keys that are not file names', () => {
    const dir = join(root, 'store');
    const s = FileStateStore.open(dir);
    expect(s.load('ring')).toBeUndefined();
    s.save('ring', Uint8Array.of(1, 2, 3));
    s.save('ring', Uint8Array.of(4, 5));
    expect([...s.load('ring')!]).toEqual([4, 5]);
    expect(readdirSync(dir)).toEqual(['ring']);
    expect(() => s.save('../escape', Uint8Array.of(1))).toThrow(/assertion failed/);
  });

  it('createCryptoRng yields values in [0, 1)', () => {
    const rng = createCryptoRng();
    const xs = Array.from({ length: 5000 }, rng);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(xs).size).toBe(5000);
  });
});

describe('runtime: the UDP receive buffer against the MTU', () => {
  it('warns at start when the receive buffer holds fewer than 16 datagrams of the MTU, and not otherwise', async () => {
    const out = writeLocalCluster({ dir: join(root, 'rcvbuf'), nodes: 2, driver: 'echo', basePort: await freeUdpPort(), crypto: false, mtu: 65535 });
    const logsWith = async (recvBufferBytes: number): Promise<string[]> => {
      const logs: string[] = [];
      const transport: Transport = {
        send: () => undefined, broadcast: () => undefined, onDatagram: () => undefined,
        close: async () => undefined, stats: () => ({ recvBufferBytes }),
      };
      const rt = await startRuntime({
        config: loadConfig(out.configs[0], registry), registry, transport,
        upcalls: { deliver: () => undefined, configuration: () => undefined },
        log: (level, msg) => logs.push(`${level}: ${msg}`),
      });
      await rt.stop();
      return logs;
    };
    const warned = (logs: string[]) => logs.some((l) => l.startsWith('warn: the UDP receive buffer is'));
    expect(warned(await logsWith(425_984))).toBe(true); // the kernel's answer under the default rmem_max
    expect(warned(await logsWith(8 * 1024 * 1024))).toBe(false); // 4 MiB granted
  });
});
