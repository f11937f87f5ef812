// Scaling in the simulator (sim/): the same driver objects on a virtual clock over a
// modelled 1 Gbit LAN (per-sender NIC serialization, unicast fan-out), where CPU is not the
// limit. Shows how each protocol's cost grows with N: datagrams on the wire per delivered
// message, virtual-time throughput, and idle self-delivery latency.
import type { DriverEntry } from '../../core/driver/types.ts';
import { Simulation } from '../../sim/sim.ts';
import type { LogEvent } from '../../sim/log.ts';
import type { SimScalingRow } from './results.ts';
import { summarizeLatency } from './stats.ts';

/** 1 Gbit/s in bytes per millisecond. */
export const GBIT_BYTES_PER_MS = 125_000;

export interface SimScalingOptions {
  readonly driver: DriverEntry<unknown>;
  readonly driverOptions?: Record<string, unknown>;
  readonly nodes: number;
  readonly size: number;
  /** Largest datagram the driver may send (as the daemon computes it from the path MTU). */
  readonly mtu: number;
  /** Virtual measurement window (after warm-up). */
  readonly windowMs: number;
  readonly seed: number;
  /** Idle round trips to time (send at node 1, until node 1 delivers it). */
  readonly pings: number;
  /** 'udpu': a send to all costs N-1 copies on the sender's NIC; 'multicast': one. */
  readonly transport: 'udpu' | 'multicast';
  /** Drop probability per datagram copy once the ring has formed (bench --loss; default 0). */
  readonly loss?: number;
}

/** Messages each node offers per refill, and the refill period: enough to keep any queue full. */
const BURST = 64;
const REFILL_MS = 0.05;
const FORM_MAX_MS = 30_000;

export function simScaling(o: SimScalingOptions): SimScalingRow {
  const sim = new Simulation({
    seed: o.seed, nodes: o.nodes, driver: o.driver, driverOptions: o.driverOptions, mtu: o.mtu,
    checkInvariants: false, onDriverLog: () => {},
    network: { latencyMs: 0.05, jitterMs: 0.01, bandwidthBytesPerMs: GBIT_BYTES_PER_MS, transport: o.transport },
  });
  sim.start();
  if (!sim.runUntil(() => formed(sim, o.nodes), FORM_MAX_MS)) {
    throw new Error(`sim: ${o.driver.name} with ${o.nodes} nodes formed no configuration of all nodes within ${FORM_MAX_MS} ms`);
  }
  sim.runFor(50);
  if (o.loss) sim.setNetwork({ loss: o.loss });
  const latencies = pingLatencies(sim, o.size, o.pings);
  const tp = saturate(sim, o.size, o.windowMs);
  return {
    driver: o.driver.name, transport: o.transport, nodes: o.nodes, size: o.size, ...(o.loss ? { loss: o.loss } : {}), tpPerSec: tp.tpPerSec, mbPerSec: (tp.tpPerSec * o.size) / 1e6,
    datagramsPerMessage: tp.datagramsPerMessage, latencyMedianUs: summarizeLatency(latencies).medianUs,
  };
}

/** Every node's last configuration event lists all nodes. */
function formed(sim: Simulation, n: number): boolean {
  return sim.logs().every((l) => {
    for (let i = l.events.length - 1; i >= 0; i--) {
      const e = l.events[i];
      if (e.type === 'conf') return e.kind === 'regular' && e.members.length === n;
    }
    return false;
  });
}

/** One message at a time from node 1, until node 1 delivers it: virtual microseconds each. */
function pingLatencies(sim: Simulation, size: number, count: number): number[] {
  const order = sim.defaultOrders()[0];
  const first = sim.nodes[0];
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const trace = sim.events();
    const from = trace.length;
    const t0 = sim.now;
    if (sim.send(first, order, size) !== 'ok') continue;
    const sent = trace[from] as LogEvent;
    const id = sent.type === 'send' ? sent.id : '';
    const isBack = (e: LogEvent) => e.type === 'deliver' && e.node === first && e.id === id;
    let seen = from;
    const ok = sim.runUntil(() => {
      for (; seen < trace.length; seen++) if (isBack(trace[seen])) return true;
      return false;
    }, 1000);
    if (ok) out.push((sim.now - t0) * 1000);
    sim.runFor(1);
  }
  return out;
}

/** Every node keeps its send queue full; throughput and wire cost over the window. */
function saturate(sim: Simulation, size: number, windowMs: number): { tpPerSec: number; datagramsPerMessage: number } {
  const order = sim.defaultOrders()[0];
  let on = true;
  const refill = () => {
    if (!on) return;
    for (const id of sim.nodes) {
      for (let k = 0; k < BURST; k++) if (sim.send(id, order, size) !== 'ok') break;
    }
    sim.after(REFILL_MS, refill);
  };
  refill();
  sim.runFor(Math.max(20, windowMs / 5));
  const a = sim.stats();
  sim.runFor(windowMs);
  const b = sim.stats();
  on = false;
  const n = sim.nodes.length;
  const perNode = (b.deliveries - a.deliveries) / n;
  return {
    tpPerSec: perNode / (windowMs / 1000),
    datagramsPerMessage: perNode > 0 ? (b.datagrams - a.datagrams) / perNode : NaN,
  };
}
