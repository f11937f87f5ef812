// Proves flow control and packing: a full send queue refuses with EAGAIN and reports writable() later; messages of 64 KiB to 1 MiB are fragmented and reassembled under loss; Accelerated Ring keeps every property.
import { describe, expect, test } from 'vitest';
import { makeSim, formed, expectClean, delivered, sent } from './harness.ts';
import { totemDriver } from '../../drivers/totem/index.ts';
import { frameWindow, totemOptionsSchema } from '../../drivers/totem/options.ts';
import { Simulation } from '../../sim/sim.ts';
import type { DriverEntry, DriverHost } from '../../core/driver/types.ts';
import { PROFILE } from './harness.ts';
import type { Packer } from '../../core/driver/packing.ts';

describe('totem flow control and fragmentation', () => {
  test('a full send queue throws EAGAIN, then writable() and room again', () => {
    let writable = 0;
    const entry: DriverEntry<unknown> = {
      ...(totemDriver as DriverEntry<unknown>),
      create(common, options, host) {
        const h: DriverHost = {
          nodeId: host.nodeId, state: host.state, now: () => host.now(), rng: () => host.rng(),
          transmit: (to, b) => host.transmit(to, b), log: (l, m, f) => host.log(l, m, f),
          deliver: (s, p, o) => host.deliver(s, p, o), configuration: (c) => host.configuration(c),
          writable: () => { writable++; },
        };
        return totemDriver.create(common, options as never, h);
      },
    };
    const sim = new Simulation({ seed: 61, nodes: 3, driver: entry, driverOptions: { ...PROFILE, send_queue_max: 8 } });
    sim.start();
    // Before the ring forms nothing drains: the ninth message is refused.
    const results = Array.from({ length: 9 }, () => sim.send(1));
    expect(results.slice(0, 8)).toEqual(Array(8).fill('ok'));
    expect(results[8]).toBe('EAGAIN');
    expect(sim.runUntil(() => formed(sim, [1, 2, 3]), 5000)).toBe(true);
    sim.runFor(100);
    expect(writable).toBeGreaterThan(0);
    expect(sim.send(1)).toBe('ok');
    sim.runFor(200);
    expect(delivered(sim, 2)).toEqual(sent(sim, 1));
    expectClean(sim);
  });

  test('the window bounds what one visit sends; a busy ring still delivers everything', () => {
    const sim = makeSim({ seed: 62, nodes: 4, driverOptions: { window_size: 8, max_messages: 3, outstanding_max: 16 } });
    sim.start();
    expect(sim.runUntil(() => formed(sim, [1, 2, 3, 4]), 5000)).toBe(true);
    for (let i = 0; i < 400; i++) sim.send(1 + (i % 4), 'agreed', 200);
    sim.runFor(2000);
    for (const n of [1, 2, 3, 4]) expect(delivered(sim, n)).toHaveLength(400);
    for (const n of [2, 3, 4]) expect(delivered(sim, n)).toEqual(delivered(sim, 1));
    expectClean(sim);
  });

  test('with 64 KiB frames a visit sends at most the byte window (window_bytes)', () => {
    expect(frameWindow(totemOptionsSchema.parse({}), 1400)).toEqual({ windowSize: 50, maxMessages: 17 });
    expect(frameWindow(totemOptionsSchema.parse({}), 65_000)).toEqual({ windowSize: 16, maxMessages: 16 });
    expect(frameWindow(totemOptionsSchema.parse({ window_bytes: 65_536 }), 65_000)).toEqual({ windowSize: 1, maxMessages: 1 });
    // Node 1's runs of multicasts between two of its tokens: each run is one visit's frames.
    const runs: number[] = [];
    let run = 0;
    const entry: DriverEntry<unknown> = {
      ...(totemDriver as DriverEntry<unknown>),
      create(common, options, host) {
        if (common.nodeId !== 1) return totemDriver.create(common, options as never, host);
        const h: DriverHost = { ...host, now: () => host.now(), rng: () => host.rng(),
          log: (l, m, f) => host.log(l, m, f), deliver: (s, p, o) => host.deliver(s, p, o),
          configuration: (c) => host.configuration(c), writable: () => host.writable?.(),
          transmit: (to, b) => {
            if (to === 'all' && b.length > 60_000) run++;
            else if (to !== 'all' && run > 0) { runs.push(run); run = 0; }
            host.transmit(to, b);
          } };
        return totemDriver.create(common, options as never, h);
      },
    };
    const sim = new Simulation({ seed: 67, nodes: 3, driver: entry, mtu: 65_000, driverOptions: PROFILE });
    sim.start();
    expect(sim.runUntil(() => formed(sim, [1, 2, 3]), 5000)).toBe(true);
    for (let i = 0; i < 4; i++) expect(sim.send(1, 'agreed', 1024 * 1024)).toBe('ok');
    expect(sim.runUntil(() => [1, 2, 3].every((n) => delivered(sim, n).length === 4), 30_000)).toBe(true);
    expect(Math.max(...runs)).toBe(16);
    expect(runs.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(64);
    expectClean(sim);
  });

  test('64 KiB and 1 MiB messages under 10% loss', () => {
    const sim = makeSim({ seed: 63, nodes: 3, network: { loss: 0.1, jitterMs: 0.3 } });
    sim.start();
    expect(sim.runUntil(() => formed(sim, [1, 2, 3]), 10_000)).toBe(true);
    expect(sim.send(1, 'agreed', 64 * 1024)).toBe('ok');
    expect(sim.send(2, 'safe', 1024 * 1024)).toBe('ok');
    expect(sim.send(3, 'agreed', 100)).toBe('ok');
    expect(sim.runUntil(() => [1, 2, 3].every((n) => delivered(sim, n).length === 3), 30_000)).toBe(true);
    for (const n of [2, 3]) expect(delivered(sim, n)).toEqual(delivered(sim, 1));
    expectClean(sim);
  });

  test('a large message cut by a configuration change is delivered whole, once, in one configuration', () => {
    const sim = makeSim({ seed: 64, nodes: 4, network: { jitterMs: 0.2 } });
    sim.start();
    expect(sim.runUntil(() => formed(sim, [1, 2, 3, 4]), 5000)).toBe(true);
    expect(sim.send(1, 'agreed', 512 * 1024)).toBe('ok');
    sim.runFor(2);
    sim.crash(4);
    expect(sim.runUntil(() => formed(sim, [1, 2, 3]), 5000)).toBe(true);
    expect(sim.runUntil(() => [1, 2, 3].every((n) => delivered(sim, n).length === 1), 10_000)).toBe(true);
    expectClean(sim);
  });

  test('Accelerated Ring: same order and properties under loss', () => {
    for (const seed of [65, 66]) {
      const ids = [1, 2, 3, 4, 5];
      const sim = makeSim({ seed, nodes: 5, network: { loss: 0.15, duplicate: 0.05, jitterMs: 0.3 },
        driverOptions: { accelerated_window: 4 } });
      sim.start();
      expect(sim.runUntil(() => formed(sim, ids), 10_000)).toBe(true);
      sim.workload({ ratePerSec: 200, sizes: [16, 300, 3000] });
      sim.runFor(1500);
      sim.workload(null);
      sim.setNetwork({ loss: 0, duplicate: 0 });
      const healed = sim.now;
      expect(sim.runUntil(() => formed(sim, ids), 10_000)).toBe(true);
      sim.runFor(500);
      expectClean(sim, healed);
    }
  });

  test('a node lets its free frame buffers go once the ring is idle after a load', () => {
    // Two frames a visit: the queue drains slowly, so frames wait in it and are staged.
    const sim = makeSim({ seed: 63, nodes: 3, driverOptions: { window_size: 2, max_messages: 2 } });
    sim.start();
    expect(sim.runUntil(() => formed(sim, [1, 2, 3]), 5000)).toBe(true);
    const free = (): number => (sim.host(1).driver as unknown as { sendQueue: Packer }).sendQueue.stagingFree;
    sim.workload({ ratePerSec: 20_000, sizes: [900], nodes: [1] });
    let most = 0;
    for (let t = 0; t < 300; t++) { sim.runFor(1); most = Math.max(most, free()); }
    sim.workload(null);
    expect(most).toBeGreaterThan(1); // frames waited, were filled in buffers of the queue's own, used again
    sim.runFor(300);
    expect(free()).toBeGreaterThan(1); // an idle ring keeps them for a while
    sim.runFor(3000);
    expect(free()).toBe(0);
    expectClean(sim);
  });
});
