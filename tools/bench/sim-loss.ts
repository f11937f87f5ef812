// Loss in the simulator: one sender in a group, the same driver objects on a virtual clock over
// the modelled 1 Gbit LAN of sim-scaling.ts, with every datagram copy dropped at random with a
// given probability (as iptables `statistic` on each node's INPUT does). Per loss rate:
// throughput, latency of a lone message, datagrams on the wire per delivered message, and the
// configuration changes the loss caused. Virtual time, so the figures do not depend on the
// machine; a seed replays a row exactly.
import type { DriverEntry, Order } from '../../core/driver/types.ts';
import { Simulation, type SimNode } from '../../sim/sim.ts';
import { GBIT_BYTES_PER_MS } from './sim-scaling.ts';
import { summarizeLatency } from './stats.ts';

export interface SimLossOptions {
  readonly driver: DriverEntry<unknown>;
  readonly driverOptions?: Record<string, unknown>;
  readonly nodes: number;
  readonly size: number;
  /** Drop probability per datagram copy (0..1). */
  readonly loss: number;
  readonly mtu: number;
  /** Virtual measurement window of the throughput phase (after a warm-up of a fifth of it). */
  readonly windowMs: number;
  /** Lone messages timed after the throughput phase, one at a time. */
  readonly pings: number;
  readonly seed: number;
}

export interface SimLossRow {
  readonly driver: string;
  readonly nodes: number;
  readonly size: number;
  readonly loss: number;
  /** Messages of the one sender delivered per virtual second, averaged over the nodes. */
  readonly tpPerSec: number;
  readonly mbPerSec: number;
  /** Datagram copies put on the wire (lost ones included) per message delivered at every node. */
  readonly datagramsPerMessage: number;
  /** A lone message, from send to delivery at the last node: median and 99th percentile. */
  readonly latencyMedianUs: number;
  readonly latencyP99Us: number;
  /** Lone messages not delivered everywhere within PING_MAX_MS. */
  readonly pingsLost: number;
  /** Regular configurations reported after the loss began (0: the loss changed no membership). */
  readonly confChanges: number;
}

const FORM_MAX_MS = 30_000;
const PING_MAX_MS = 10_000;
/** Refill period of the sender while it is saturated (it also refills when the driver says writable). */
const REFILL_MS = 0.2;
const STAMP_BYTES = 16;
/** Between two lone messages: long enough for an idle ring's representative to hold the token,
 *  so each one is timed as a message that wakes an idle ring (and under loss, may have to re-send
 *  the hold cancel). */
const PING_GAP_MS = 20;

/** What runs above each driver: counts deliveries, times stamped messages, keeps the sender fed. */
class LossNode implements SimNode {
  delivered = 0;
  regular = 0;
  /** Stamp (ping number) -> virtual time delivered here. */
  readonly arrivals = new Map<number, number>();
  onWritable: (() => void) | undefined;
  constructor(private readonly sim: () => Simulation) {}
  deliver(_sender: number, payload: Uint8Array): void {
    this.delivered++;
    const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const ping = payload.byteLength >= STAMP_BYTES ? v.getFloat64(8) : 0;
    if (ping > 0) this.arrivals.set(ping, this.sim().now);
  }
  configuration(c: { kind: string }): void {
    if (c.kind === 'regular') this.regular++;
  }
  writable(): void {
    this.onWritable?.();
  }
}

export function simLoss(o: SimLossOptions): SimLossRow {
  const nodes = new Map<number, LossNode>();
  const senders = new Map<number, (p: Uint8Array, order: Order) => void>();
  const sim: Simulation = new Simulation({
    seed: o.seed, nodes: o.nodes, driver: o.driver, driverOptions: o.driverOptions, mtu: o.mtu,
    checkInvariants: false, onDriverLog: () => {},
    network: { latencyMs: 0.05, jitterMs: 0.01, bandwidthBytesPerMs: GBIT_BYTES_PER_MS, transport: 'udpu' },
    node: (ctx) => {
      const n = new LossNode(() => sim);
      nodes.set(ctx.nodeId, n);
      senders.set(ctx.nodeId, ctx.multicast);
      return n;
    },
  });
  sim.start();
  const all = () => [...nodes.values()];
  if (!sim.runUntil(() => all().every((n) => n.regular > 0) && formedAll(sim, o.nodes), FORM_MAX_MS)) {
    throw new Error(`sim: ${o.driver.name} with ${o.nodes} nodes formed no configuration of all nodes within ${FORM_MAX_MS} ms`);
  }
  sim.runFor(50);
  const regularBefore = all().reduce((a, n) => a + n.regular, 0);
  sim.setNetwork({ loss: o.loss });
  const order = orderOf(o.driver);
  const send = senders.get(1);
  if (!send) throw new Error('sim: node 1 has no multicast');
  const tp = saturate(sim, o, all, send, nodes.get(1) as LossNode, order);
  const lat = pings(sim, o, all, send, order);
  const confChanges = all().reduce((a, n) => a + n.regular, 0) - regularBefore;
  return {
    driver: o.driver.name, nodes: o.nodes, size: o.size, loss: o.loss, tpPerSec: tp.tpPerSec, mbPerSec: tp.tpPerSec * o.size / 1e6,
    datagramsPerMessage: tp.datagramsPerMessage, latencyMedianUs: lat.medianUs, latencyP99Us: lat.p99Us, pingsLost: lat.lost, confChanges,
  };
}

function orderOf(d: DriverEntry<unknown>): Order {
  return d.guarantees.agreed ? 'agreed' : 'fifo';
}

function formedAll(sim: Simulation, n: number): boolean {
  return sim.logs().every((l) => {
    for (let i = l.events.length - 1; i >= 0; i--) {
      const e = l.events[i];
      if (e.type === 'conf') return e.kind === 'regular' && e.members.length === n;
    }
    return false;
  });
}

function payload(size: number, ping: number): Uint8Array {
  const b = new Uint8Array(Math.max(size, STAMP_BYTES));
  new DataView(b.buffer).setFloat64(8, ping);
  return size >= STAMP_BYTES ? b : b.subarray(0, size);
}

/** Node 1 keeps its send queue full for the window; the others only receive. */
function saturate(sim: Simulation, o: SimLossOptions, all: () => LossNode[], send: (p: Uint8Array, order: Order) => void,
  first: LossNode, order: Order): { tpPerSec: number; datagramsPerMessage: number } {
  const bytes = payload(o.size, 0);
  let on = true;
  let sent = 0;
  const fill = () => {
    for (let k = 0; on && k < 4096; k++) {
      try {
        send(bytes, order);
        sent++;
      } catch {
        return;
      }
    }
  };
  const tick = () => {
    if (!on) return;
    fill();
    sim.after(REFILL_MS, tick);
  };
  first.onWritable = fill;
  tick();
  sim.runFor(Math.max(20, o.windowMs / 5));
  const d0 = all().reduce((a, n) => a + n.delivered, 0);
  const w0 = sim.stats().datagrams;
  sim.runFor(o.windowMs);
  const d1 = all().reduce((a, n) => a + n.delivered, 0);
  const w1 = sim.stats().datagrams;
  on = false;
  first.onWritable = undefined;
  const perNode = (d1 - d0) / o.nodes;
  // The lone messages are timed on an empty queue.
  sim.runUntil(() => all().every((n) => n.delivered >= sent), PING_MAX_MS * 6);
  sim.runFor(5);
  return { tpPerSec: perNode / (o.windowMs / 1000), datagramsPerMessage: perNode > 0 ? (w1 - w0) / perNode : NaN };
}

/** One stamped message at a time from node 1: time until every node delivered it. */
function pings(sim: Simulation, o: SimLossOptions, all: () => LossNode[], send: (p: Uint8Array, order: Order) => void,
  order: Order): { medianUs: number; p99Us: number; lost: number } {
  const out: number[] = [];
  let lost = 0;
  for (let i = 1; i <= o.pings; i++) {
    const t0 = sim.now;
    try {
      send(payload(o.size, i), order);
    } catch {
      lost++;
      sim.runFor(10);
      continue;
    }
    if (sim.runUntil(() => all().every((n) => n.arrivals.has(i)), PING_MAX_MS)) {
      out.push((Math.max(...all().map((n) => n.arrivals.get(i) as number)) - t0) * 1000);
    } else {
      lost++;
    }
    sim.runFor(PING_GAP_MS);
  }
  const s = summarizeLatency(out);
  return { medianUs: s.medianUs, p99Us: s.p99Us, lost };
}

export interface LossCurveOptions {
  readonly drivers: readonly DriverEntry<unknown>[];
  readonly driverOptions: Record<string, unknown>;
  readonly losses: readonly number[];
  readonly sizes: readonly number[];
  readonly nodes: number;
  readonly windowMs: number;
  readonly pings: number;
  readonly seed: number;
  readonly mtu: number;
}

/** Every driver x size x loss rate; a row is printed as soon as it is measured. */
export function lossCurve(o: LossCurveOptions, onRow: (r: SimLossRow, lossless: SimLossRow | undefined) => void): SimLossRow[] {
  const rows: SimLossRow[] = [];
  for (const driver of o.drivers) {
    // Options for another driver are left out: each section belongs to its driver.
    const opts = driver.optionsSchema.safeParse(o.driverOptions).success ? o.driverOptions : undefined;
    for (const size of o.sizes) {
      let lossless: SimLossRow | undefined;
      for (const loss of o.losses) {
        const r = simLoss({ driver, driverOptions: opts, nodes: o.nodes, size, loss, mtu: o.mtu, windowMs: o.windowMs, pings: o.pings, seed: o.seed });
        if (loss === 0) lossless = r;
        rows.push(r);
        onRow(r, lossless);
      }
    }
  }
  return rows;
}

export const LOSS_CURVE_HEADER = '| driver | size | loss | msg/s | MB/s | of lossless | dgrams/msg | latency p50 | latency p99 | conf changes |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|';

const us = (v: number) => (Number.isFinite(v) ? (v >= 10_000 ? `${(v / 1000).toFixed(0)} ms` : v >= 1000 ? `${(v / 1000).toFixed(1)} ms` : `${v.toFixed(0)} us`) : '-');

/** One markdown table row (docs/BENCH.md takes them as printed). */
export function formatLossRow(r: SimLossRow, lossless: SimLossRow | undefined): string {
  const of = lossless && lossless.tpPerSec > 0 ? `${((r.tpPerSec / lossless.tpPerSec) * 100).toFixed(1)}%` : '-';
  const lost = r.pingsLost > 0 ? ` (${r.pingsLost} lost)` : '';
  return `| ${r.driver} | ${r.size} | ${(r.loss * 100).toFixed(0)}% | ${r.tpPerSec.toFixed(0)} | ${r.mbPerSec.toFixed(2)} | ${of} | ${Number.isFinite(r.datagramsPerMessage) ? r.datagramsPerMessage.toFixed(2) : '-'} | ${us(r.latencyMedianUs)} | ${us(r.latencyP99Us)}${lost} | ${r.confChanges} |`;
}
