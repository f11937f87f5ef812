// Proves the simulator's network model and host lifecycle do what sim.ts says: loss, duplication,
// partitions, asymmetric cuts, clogs, swizzle-clog, pause/resume, crash/restart, bandwidth, and
// that the fault timeline records them.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Simulation, type SimNodeContext } from '../../sim/sim.ts';
import { assert } from '../../core/api/errors.ts';
import type { Driver, DriverEntry, DriverHost } from '../../core/driver/types.ts';
import { Rng } from '../../sim/rng.ts';
import { ProbeDriver, probeDriver } from '../../sim/testdrivers/probe.ts';
import { floodDriver } from '../../sim/testdrivers/flood.ts';
import { parsePayloadId, makePayload, hashBytes, formatFault } from '../../sim/log.ts';

function probeSim(nodes = 3, extra: Partial<ConstructorParameters<typeof Simulation>[0]> = {}) {
  const sim = new Simulation({ seed: 7, nodes, driver: probeDriver, ...extra });
  sim.start();
  const probe = (id: number) => sim.driver(id) as ProbeDriver;
  return { sim, probe };
}

describe('rng', () => {
  it('replays from a seed, and forks independent of position', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(new Rng(43).next()).not.toBe(xs[0]);
    expect(a.fork('x').next()).toBe(new Rng(42).fork('x').next());
    expect(a.fork('x').next()).not.toBe(a.fork('y').next());
    for (let i = 0; i < 1000; i++) {
      const v = a.int(3, 5);
      expect(v >= 3 && v <= 5).toBe(true);
    }
  });
});

describe('network model', () => {
  it('delivers with latency, to every other node for "all"', () => {
    const { sim, probe } = probeSim(3);
    probe(1).ping('all', 9);
    expect(probe(2).received).toEqual([]);
    sim.runFor(1);
    expect(probe(2).received.map((r) => r.slice(0, 2))).toEqual([[1, 9]]);
    expect(probe(3).received.length).toBe(1);
    expect(probe(1).received.length).toBe(0);
    expect(probe(2).received[0][2]).toBeGreaterThanOrEqual(0.1);
  });

  it('drops at the configured loss rate, per link too', () => {
    const { sim, probe } = probeSim(2, { network: { loss: 0.3, jitterMs: 0 } });
    for (let i = 0; i < 2000; i++) probe(1).ping(2, 1);
    sim.runFor(1);
    const got = probe(2).received.length;
    expect(got).toBeGreaterThan(1250);
    expect(got).toBeLessThan(1550);
    sim.setLinkLoss(1, 2, 1);
    sim.setLinkLoss(2, 1, 0);
    for (let i = 0; i < 100; i++) { probe(1).ping(2, 2); probe(2).ping(1, 2); }
    sim.runFor(1);
    expect(probe(2).received.length).toBe(got);
    expect(probe(1).received.length).toBe(100);
  });

  it('duplicates and reorders', () => {
    const { sim, probe } = probeSim(2, { network: { duplicate: 0.5, jitterMs: 1 } });
    for (let i = 0; i < 200; i++) probe(1).ping(2, i);
    sim.runFor(5);
    const tags = probe(2).received.map((r) => r[1]);
    expect(tags.length).toBeGreaterThan(250);
    expect(tags).not.toEqual([...tags].sort((a, b) => a - b));
    expect(sim.stats().duplicated).toBe(tags.length - 200);
  });

  it('partitions symmetrically and heals', () => {
    const { sim, probe } = probeSim(4);
    sim.partition([[1, 2], [3]]);
    for (const id of [1, 2, 3, 4]) probe(id).ping('all', id);
    sim.runFor(1);
    expect(probe(1).received.map((r) => r[0])).toEqual([2]);
    expect(probe(2).received.map((r) => r[0])).toEqual([1]);
    expect(probe(3).received).toEqual([]);
    expect(probe(4).received).toEqual([]); // unlisted: isolated
    sim.heal();
    probe(3).ping('all', 3);
    sim.runFor(1);
    expect(probe(4).received.map((r) => r[0])).toEqual([3]);
  });

  it('cuts one direction only', () => {
    const { sim, probe } = probeSim(2);
    sim.cutLink(1, 2);
    probe(1).ping(2, 1);
    probe(2).ping(1, 2);
    sim.runFor(1);
    expect(probe(2).received).toEqual([]);
    expect(probe(1).received.length).toBe(1);
    sim.restoreLink(1, 2);
    probe(1).ping(2, 1);
    sim.runFor(1);
    expect(probe(2).received.length).toBe(1);
  });

  it('clog holds datagrams and unclog releases them', () => {
    const { sim, probe } = probeSim(2);
    sim.clog(1, 2);
    probe(1).ping(2, 1);
    probe(1).ping(2, 2);
    sim.runFor(50);
    expect(probe(2).received).toEqual([]);
    expect(sim.stats().held).toBe(2);
    sim.unclog(1, 2);
    sim.runFor(1);
    expect(probe(2).received.map((r) => r[1]).sort()).toEqual([1, 2]);
    expect(probe(2).received[0][2]).toBeGreaterThanOrEqual(50);
    expect(sim.stats().held).toBe(0);
  });

  it('swizzle-clog clogs links one by one and restores them all', () => {
    const { sim, probe } = probeSim(4);
    sim.swizzleClog({ links: 12, stepMs: 10, holdMs: 100 });
    sim.runFor(115); // all 12 clogged by t=110
    for (const id of [1, 2, 3, 4]) probe(id).ping('all', id);
    sim.runFor(1);
    expect([1, 2, 3, 4].map((id) => probe(id).received.length)).toEqual([0, 0, 0, 0]);
    sim.runFor(150); // unclogs run from t=210 to t=320, one every 10 ms
    expect(sim.stats().held).toBeGreaterThan(0);
    sim.runFor(100);
    expect([1, 2, 3, 4].map((id) => probe(id).received.length)).toEqual([3, 3, 3, 3]);
    expect(sim.stats().held).toBe(0);
  });

  it('pause stops timers and queues datagrams; resume delivers them', () => {
    const { sim, probe } = probeSim(2, { driverOptions: { tick_ms: 10 } });
    sim.runFor(35);
    expect(probe(2).ticks).toBe(3);
    sim.pause(2);
    probe(1).ping(2, 5);
    sim.runFor(100);
    expect(probe(2).ticks).toBe(3);
    expect(probe(2).received).toEqual([]);
    expect(sim.send(2)).toBe('EAGAIN');
    sim.resume(2);
    sim.runFor(0);
    expect(probe(2).received.map((r) => r[1])).toEqual([5]);
    expect(probe(2).ticks).toBeGreaterThan(3);
  });

  it('crash loses in-flight datagrams; restart keeps the state store', () => {
    const { sim, probe } = probeSim(2, { network: { latencyMs: 5 } });
    expect(probe(2).boots).toBe(1);
    probe(1).ping(2, 1);
    sim.crash(2);
    expect(sim.host(2).alive).toBe(false);
    sim.restart(2);
    sim.runFor(10);
    expect(probe(2).received).toEqual([]);
    expect(probe(2).boots).toBe(2);
    expect(sim.host(2).incarnation).toBe(2);
    const kinds = sim.logs()[1].events.map((e) => e.type);
    expect(kinds).toEqual(['crash', 'restart']);
  });

  it('leave logs LEAVE, and the node then refuses sends', () => {
    const sim = new Simulation({ seed: 3, nodes: 2, driver: floodDriver });
    sim.start();
    sim.leave(2);
    expect(sim.host(2).left).toBe(true);
    expect(sim.send(2)).toBe('ENOTCONN');
    expect(sim.logs()[1].events.map((e) => e.type)).toEqual(['conf', 'leave']);
  });

  it('bandwidth serializes each sender; udpu pays per copy, multicast once', () => {
    const arrival = (transport: 'udpu' | 'multicast') => {
      const { sim, probe } = probeSim(5, { network: { bandwidthBytesPerMs: 1, jitterMs: 0, latencyMs: 0, transport } });
      for (let i = 0; i < 10; i++) probe(1).ping('all', i);
      sim.runFor(100);
      return Math.max(...probe(5).received.map((r) => r[2]));
    };
    expect(arrival('multicast')).toBeCloseTo(10);
    expect(arrival('udpu')).toBeCloseTo(40);
  });

  it('a full NIC queue drops instead of queueing forever', () => {
    const { sim, probe } = probeSim(2, { network: { bandwidthBytesPerMs: 1, nicQueueBytes: 5, jitterMs: 0 } });
    for (let i = 0; i < 10; i++) probe(1).ping(2, i);
    sim.runFor(100);
    expect(probe(2).received.map((r) => r[1])).toEqual([0, 1, 2, 3, 4]);
    expect(sim.stats().droppedOverflow).toBe(5);
  });

  it('a filter drops what it refuses', () => {
    const { sim, probe } = probeSim(2);
    sim.setFilter((_from, _to, bytes) => bytes[0] !== 7);
    probe(1).ping(2, 7);
    probe(1).ping(2, 8);
    sim.runFor(1);
    expect(probe(2).received.map((r) => r[1])).toEqual([8]);
    expect(sim.stats().droppedFilter).toBe(1);
  });
});

describe('fault timeline', () => {
  it('records host faults and every change of the network state, once', () => {
    const { sim } = probeSim(3, { network: { loss: 0.1 } });
    sim.runFor(1);
    sim.setNetwork({ loss: 0 });
    sim.pause(2);
    sim.pause(2);
    sim.runFor(1);
    sim.resume(2);
    sim.partition([[1], [2, 3]]);
    sim.runFor(1);
    sim.partition([[1, 2, 3]]);
    sim.heal();
    sim.crash(3);
    sim.restart(3);
    sim.cutLink(1, 2);
    sim.heal();
    sim.setFilter(() => true);
    sim.setFilter(null);
    sim.leave(1);
    expect(sim.faults().map(formatFault)).toEqual([
      '0.000 NET groups [1,2,3], loss 0.1',
      '1.000 NET groups [1,2,3], loss 0',
      '1.000 n2 FAULT pause',
      '2.000 n2 FAULT resume',
      '2.000 NET groups [1] [2,3], loss 0',
      '3.000 NET groups [1,2,3], loss 0',
      '3.000 n3 FAULT crash',
      '3.000 n3 FAULT restart',
      '3.000 NET groups [1,2,3], loss 0, link faults',
      '3.000 NET groups [1,2,3], loss 0',
      '3.000 NET groups [1,2,3], loss 0, filter',
      '3.000 NET groups [1,2,3], loss 0',
      '3.000 n1 FAULT leave',
    ]);
  });
});

describe('application layer', () => {
  it('generates unique, verifiable payloads and logs SEND only on success', () => {
    const sim = new Simulation({ seed: 1, nodes: 2, driver: floodDriver });
    sim.start();
    expect(sim.send(1, 'fifo', 100)).toBe('ok');
    expect(sim.send(1, 'fifo', 5000)).toBe('EMSGSIZE');
    sim.runFor(1);
    const [log1, log2] = sim.logs();
    const sends = log1.events.filter((e) => e.type === 'send');
    expect(sends.length).toBe(1);
    const d = log2.events.find((e) => e.type === 'deliver');
    expect(d && d.type === 'deliver' && sends[0].type === 'send' && d.id === sends[0].id
      && d.payloadHash === sends[0].payloadHash).toBe(true);
    const p = makePayload({ node: 3, incarnation: 2, counter: 9 }, 300);
    expect(parsePayloadId(p)).toEqual({ node: 3, incarnation: 2, counter: 9 });
    expect(hashBytes(p)).toBe(hashBytes(makePayload({ node: 3, incarnation: 2, counter: 9 }, 300)));
    expect(hashBytes(p)).not.toBe(hashBytes(makePayload({ node: 3, incarnation: 2, counter: 10 }, 300)));
  });

  it('replays a seed exactly: same trace hash; another seed differs', () => {
    const run = (seed: number) => {
      const sim = new Simulation({ seed, nodes: 4, driver: floodDriver, driverOptions: { heartbeat_ms: 5 },
        network: { loss: 0.1, duplicate: 0.1, jitterMs: 0.5 } });
      sim.start();
      sim.workload({ ratePerSec: 300, sizes: [16, 200] });
      sim.after(100, () => sim.crash(3));
      sim.after(150, () => sim.restart(3));
      sim.runFor(300);
      return sim.traceHash();
    };
    expect(run(11)).toBe(run(11));
    expect(run(11)).not.toBe(run(12));
  });
});

/** Delivers each datagram it receives while an invariant is broken (as cman's receive stream
 *  hands a frame up with the next one still buffered), and counts the multicasts it takes. */
class MidCallDriver implements Driver {
  readonly name = 'midcall';
  readonly guarantees = { fifo: true, agreed: false, safe: false, virtualSynchrony: false };
  taken = 0;
  private delivering = false;
  constructor(readonly host: DriverHost) {}
  start(): void {}
  handleDatagram(from: number, bytes: Uint8Array): void {
    this.delivering = true;
    this.host.deliver(from, bytes, 'fifo');
    this.delivering = false;
  }
  handleTimeout(): void {}
  nextDeadline(): number { return Infinity; }
  multicast(): void { this.taken++; }
  leave(): void {}
  stats() { return { taken: this.taken }; }
  checkInvariants(): void { assert(!this.delivering, 'at rest'); }
}

const midCallDriver: DriverEntry<Record<string, never>> = {
  name: 'midcall', guarantees: { fifo: true, agreed: false, safe: false, virtualSynchrony: false },
  summary: 'test only', optionsSchema: z.object({}).strict(), create: (_common, _opts, host) => new MidCallDriver(host),
};

describe('whole-node layers', () => {
  it('a multicast from inside an upcall is taken; the invariants wait for the call that made the upcall', () => {
    const errors: string[] = [];
    const sim = new Simulation({
      seed: 1, nodes: 2, driver: midCallDriver as DriverEntry<unknown>,
      // The group layer, delivering, evicts a reader and multicasts its leave at once.
      node: (ctx: SimNodeContext) => ({
        deliver: () => { try { ctx.multicast(Uint8Array.of(1), 'fifo'); } catch (e) { errors.push(String(e)); } },
        configuration: () => undefined, writable: () => undefined,
      }),
    });
    sim.start();
    (sim.driver(1) as MidCallDriver).host.transmit(2, Uint8Array.of(9));
    sim.runFor(1);
    expect(errors).toEqual([]);
    expect((sim.driver(2) as MidCallDriver).taken).toBe(1);
    expect(sim.failure).toBeNull();
  });
});
