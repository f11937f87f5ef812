// The security tests' cluster: totem nodes run in this process by core/runtime over real UDP on
// 127.0.0.1..N, each through a tap transport that records the sealed datagrams it receives and
// can send raw bytes from the node's own socket (so a replay comes from the sender's real address,
// as an attacker who can spoof source addresses would send it).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, writeLocalCluster } from '../../core/config/index.ts';
import type { NodeConfig } from '../../core/config/types.ts';
import { createSealer, cryptoReady, type Sealer } from '../../core/crypto/sealer.ts';
import type { Configuration } from '../../core/driver/types.ts';
import { startRuntime, type Runtime } from '../../core/runtime/runtime.ts';
import { freeUdpPort, waitFor } from '../../core/transport/testing.ts';
import type { DatagramBytes, Transport } from '../../core/transport/types.ts';
import { openUdpTransport } from '../../core/transport/udp.ts';
import { builtinRegistry } from '../../drivers/builtin.ts';
import { FAST_PROFILE } from '../../drivers/totem/options.ts';
import { decode, type TotemMsg } from '../../drivers/totem/codec.ts';

export interface Captured {
  /** The node that received it. */
  readonly to: number;
  /** The node its source address belongs to. */
  readonly from: number;
  readonly bytes: Buffer;
}

/** A transport that records what arrives (while `sink` is set) and can send raw bytes. */
export class TapTransport implements Transport {
  sink: Captured[] | undefined;
  constructor(private readonly inner: Transport, private readonly nodeId: number) {}
  send(to: number, bytes: DatagramBytes): void { this.inner.send(to, bytes); }
  broadcast(bytes: DatagramBytes): void { this.inner.broadcast(bytes); }
  onDatagram(cb: (from: number, bytes: Buffer) => void): void {
    this.inner.onDatagram((from, bytes) => {
      this.sink?.push({ to: this.nodeId, from, bytes: Buffer.from(bytes) });
      cb(from, bytes);
    });
  }
  close(): Promise<void> { return this.inner.close(); }
  stats(): Record<string, number> { return this.inner.stats(); }
  /** Bytes as they are, from this node's socket to node `to`. */
  raw(to: number, bytes: Uint8Array): void { this.inner.send(to, bytes); }
}

export interface SecNode {
  readonly id: number;
  readonly config: NodeConfig;
  readonly rt: Runtime;
  readonly tap: TapTransport;
  readonly confs: Configuration[];
  readonly delivered: string[];
  readonly logs: string[];
}

export type Stats = {
  runtime: Record<string, number>;
  driver: Record<string, number | string>;
  transport: Record<string, number>;
  crypto: Record<string, number>;
};

export const statsOf = (n: SecNode): Stats => n.rt.stats() as unknown as Stats;

export class SecCluster {
  readonly nodes: (SecNode | undefined)[] = [];
  private readonly registry = builtinRegistry();

  /** Every configured node's config, node 1 first. */
  readonly configs: NodeConfig[];

  private constructor(readonly dir: string, paths: string[], readonly keyFile: string) {
    this.configs = paths.map((p) => loadConfig(p, this.registry));
  }

  /** Writes the configs of `configured` nodes (one key, cluster `name`); starts none. */
  static async create(name: string, configured: number): Promise<SecCluster> {
    await cryptoReady();
    const dir = mkdtempSync(join(tmpdir(), 'afc-sec-'));
    const out = writeLocalCluster({
      dir, nodes: configured, driver: 'totem', basePort: await freeUdpPort(), crypto: true, clusterName: name,
      // Fast rings, but failure detection slow enough that a loaded machine does not split them.
      driverSections: { totem: { ...FAST_PROFILE, token_ms: 1000, consensus_ms: 1200 } },
    });
    return new SecCluster(dir, out.configs, out.keyFile!);
  }

  get key(): Uint8Array { return readFileSync(this.keyFile); }

  node(id: number): SecNode {
    const n = this.nodes[id - 1];
    if (!n) throw new Error(`node ${id} is not running`);
    return n;
  }

  running(): SecNode[] { return this.nodes.filter((n): n is SecNode => n !== undefined); }

  async start(id: number, sink?: Captured[]): Promise<SecNode> {
    const config = this.configs[id - 1];
    const confs: Configuration[] = [];
    const delivered: string[] = [];
    const logs: string[] = [];
    const tap = new TapTransport(await openUdpTransport({ config, log: (level, msg) => logs.push(`${level}: ${msg}`) }), id);
    tap.sink = sink;
    const rt = await startRuntime({
      config, registry: this.registry, transport: tap,
      upcalls: {
        deliver: (sender, payload) => delivered.push(`${sender}:${Buffer.from(payload).toString()}`),
        configuration: (c) => confs.push(c),
      },
      log: (level, msg) => logs.push(`${level}: ${msg}`),
    });
    const node = { id, config, rt, tap, confs, delivered, logs };
    this.nodes[id - 1] = node;
    return node;
  }

  async stop(id: number, leave = true): Promise<void> {
    await this.node(id).rt.stop({ leave });
    this.nodes[id - 1] = undefined;
  }

  /** Waits until every running node's newest regular configuration has exactly `members`, with one ring id. */
  async settled(members: number[], what: string): Promise<string> {
    const want = members.join(',');
    await waitFor(() => {
      const rings = this.running().map((n) => {
        const last = n.confs.filter((c) => c.kind === 'regular').at(-1);
        return last && last.members.join(',') === want && statsOf(n).driver.state === 'operational'
          ? `${last.ringId.rep}.${last.ringId.seq}` : undefined;
      });
      return rings.every((r) => r !== undefined && r === rings[0]);
    }, what, 60_000);
    return String(statsOf(this.running()[0]).driver.ring);
  }

  /** A sealer that opens datagrams as node `as` would, with fresh windows (for decoding captures). */
  inspector(as: number): Sealer {
    const c = this.configs[as - 1];
    return createSealer({ clusterName: c.cluster.name, key: this.key, nodeId: as, nodes: c.cluster.nodes.map((n) => n.id), incarnation: 0 });
  }

  async close(): Promise<void> {
    await Promise.all(this.running().map((n) => n.rt.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The totem message in a captured datagram, opened with the cluster key. */
export function decodeCaptured(cluster: SecCluster, c: Captured): TotemMsg | undefined {
  const plain = cluster.inspector(c.to).open(c.bytes, c.from);
  if (!plain) return undefined;
  const d = decode(plain, { rtrMax: 1000, membersMax: 1024 });
  return 'msg' in d ? d.msg : undefined;
}
