// Proves runSeed replays a seed exactly, passes correct drivers, catches broken ones on
// simulator-made logs, and that `afcluster sim` reports, replays and exits as documented.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import type { Driver, DriverEntry } from '../../core/driver/types.ts';
import { assert } from '../../core/api/errors.ts';
import { ALL_PROPERTIES, propertiesFor } from '../../sim/checker.ts';
import { runSeed } from '../../sim/scenario.ts';
import { floodDriver } from '../../sim/testdrivers/flood.ts';
import { sequencerDriver } from '../../sim/testdrivers/sequencer.ts';
import { nullDriver } from '../../sim/testdrivers/null.ts';
import { totemDriver } from '../../drivers/totem/index.ts';
import { command, parseSeeds } from '../../tools/cmd-sim.ts';

describe('runSeed', () => {
  it('replays a seed exactly and another seed differs', () => {
    const run = (seed: number) => runSeed({ driver: sequencerDriver, seed, swarm: true, faults: 'all', properties: ALL_PROPERTIES });
    const a = run(5);
    expect(run(5).traceHash).toBe(a.traceHash);
    expect(run(6).traceHash).not.toBe(a.traceHash);
  });

  it('a correct driver on a perfect network has no violation of what it declares', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const r = runSeed({ driver: sequencerDriver, seed, nodes: 4, faults: 'none', properties: propertiesFor(sequencerDriver.guarantees) });
      expect(r.violations, `seed ${seed}`).toEqual([]);
      expect(r.stats.deliveries).toBeGreaterThan(0);
      expect(r.convergedAt).not.toBeNull();
    }
  });

  it('catches a driver without recovery under loss, and a driver without order under evs', () => {
    const lossy = runSeed({ driver: sequencerDriver, seed: 3, nodes: 3, faults: 'loss', properties: propertiesFor(sequencerDriver.guarantees) });
    expect(lossy.violations.length).toBeGreaterThan(0);
    let agreed = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const r = runSeed({ driver: floodDriver, seed, nodes: 4, faults: 'loss', properties: ALL_PROPERTIES });
      agreed += r.violations.filter((v) => v.property === 'agreed').length;
    }
    expect(agreed).toBeGreaterThan(0);
  });

  it('a driver that delivers nothing fails liveness', () => {
    const r = runSeed({ driver: nullDriver, seed: 2, nodes: 3, faults: 'none', properties: ['liveness'] });
    expect(r.violations.map((v) => v.property)).toEqual(['liveness']);
    expect(r.convergedAt).toBeNull();
  });

  it('swarm draws cluster sizes from 2 to 12 and all fault mixes', () => {
    const sizes = new Set<number>();
    const mixes = new Set<string>();
    for (let seed = 0; seed < 60; seed++) {
      const r = runSeed({ driver: floodDriver, seed, swarm: true, properties: [], safetyMs: 20, livenessMs: 20 });
      sizes.add(r.nodes);
      mixes.add(r.faults);
    }
    expect(Math.min(...sizes)).toBe(2);
    expect(Math.max(...sizes)).toBe(12);
    expect([...mixes].sort()).toEqual(['all', 'loss', 'none', 'pause']);
  });
});

/** A driver that echoes every datagram to everyone (a storm), or asserts on its 3rd datagram. */
function badDriver(kind: 'storm' | 'assert'): DriverEntry<unknown> {
  return {
    name: kind, summary: 'test only', guarantees: { fifo: false, agreed: false, safe: false, virtualSynchrony: false },
    optionsSchema: z.object({}).strict(),
    create(_common, _opts, host): Driver {
      let got = 0;
      return {
        name: kind, guarantees: { fifo: false, agreed: false, safe: false, virtualSynchrony: false },
        start: () => host.transmit('all', Uint8Array.of(1)),
        handleDatagram: () => {
          assert(kind !== 'assert' || ++got < 3, 'bad driver: third datagram');
          host.transmit('all', Uint8Array.of(1));
        },
        handleTimeout() {}, nextDeadline: () => Infinity, multicast() {}, leave() {}, stats: () => ({}), checkInvariants() {},
      };
    },
  };
}

describe('the pause mix', () => {
  it('applies one clean fault at a time on a loss-free network: pauses of 1.0-1.6x token + consensus on every node', () => {
    const detect = 1000 + 1200; // totem defaults: token_ms + consensus_ms
    const paused = new Set<number>();
    const kinds = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) {
      const r = runSeed({ driver: totemDriver as DriverEntry<unknown>, seed, nodes: 4, faults: 'pause', properties: [] });
      expect(r.faults).toBe('pause');
      const faults = r.sim.faults();
      let open: { what: string; node: number; t: number } | null = null;
      for (const f of faults) {
        if (f.type === 'net') {
          expect([f.loss, f.linkFaults, f.filter, f.finiteNic], `seed ${seed}`).toEqual([0, false, false, false]);
          if (f.groups.length > 1) { expect(open, `seed ${seed}: one fault at a time`).toBeNull(); open = { what: 'partition', node: 0, t: f.t }; kinds.add('partition'); }
          else if (open?.what === 'partition') open = null;
          continue;
        }
        if (f.what === 'pause' || f.what === 'crash') {
          expect(open, `seed ${seed}: one fault at a time`).toBeNull();
          open = { what: f.what, node: f.node, t: f.t };
          kinds.add(f.what);
          if (f.what === 'pause') paused.add(f.node);
        } else {
          expect(open?.node).toBe(f.node);
          const lasted = (f.t - open!.t) / detect;
          expect(lasted >= 1 && lasted <= 1.6, `seed ${seed}: ${open!.what} lasted ${lasted}x`).toBe(true);
          open = null;
        }
      }
      expect(open, `seed ${seed}: every fault undone before the liveness phase`).toBeNull();
    }
    expect([...paused].sort()).toEqual([1, 2, 3, 4]);
    expect([...kinds].sort()).toEqual(['crash', 'partition', 'pause']);
  }, 60_000);
});

describe('runSeed failures', () => {
  it('turns a driver assertion into an invariants violation naming the node', () => {
    const r = runSeed({ driver: badDriver('assert'), seed: 1, nodes: 3, faults: 'none', properties: [] });
    expect(r.violations[0].property).toBe('invariants');
    expect(r.violations[0].nodes.length).toBe(1);
    expect(r.violations[0].message).toMatch(/third datagram/);
  });

  it('stops a datagram storm at the event budget and reports liveness', () => {
    const r = runSeed({ driver: badDriver('storm'), seed: 1, nodes: 3, faults: 'none', properties: [], maxEvents: 20_000 });
    expect(r.violations[0].property).toBe('liveness');
    expect(r.violations[0].message).toMatch(/budget of 20000 exceeded/);
  });
});

describe('afcluster sim', () => {
  let out: string[] = [];
  const capture = () => {
    out = [];
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
  };
  afterEach(() => vi.restoreAllMocks());

  it('parses seed ranges', () => {
    expect(parseSeeds('3-7')).toEqual([3, 7]);
    expect(parseSeeds('42')).toEqual([42, 42]);
    expect(() => parseSeeds('7-3')).toThrow(/A <= B/);
    expect(() => parseSeeds('x')).toThrow(/expected/);
  });

  it('prints the summary line and exits 0 when every seed passes', async () => {
    capture();
    expect(await command.run(['--driver', 'sequencer', '--seeds', '1-3', '--faults', 'none'])).toBe(0);
    expect(out).toEqual(['3 seeds, 0 violations']);
  });

  it('prints one line per failing seed with a replay command, and exits 1', async () => {
    capture();
    expect(await command.run(['--driver', 'null', '--seeds', '4-5', '--faults', 'none'])).toBe(1);
    expect(out.length).toBe(3);
    expect(out[0]).toMatch(/^seed 4: [a-z-]+: .* replay: afcluster sim --driver null --seeds 4-4 --nodes 3 --faults none --verbose$/);
    expect(out[2]).toMatch(/^2 seeds, \d+ violations$/);
  });

  it('--jobs N splits the seeds among processes and prints what one process would', async () => {
    capture();
    expect(await command.run(['--driver', 'null', '--seeds', '1-45', '--faults', 'none', '--jobs', '1'])).toBe(1);
    const alone = [...out];
    out.length = 0;
    expect(await command.run(['--driver', 'null', '--seeds', '1-45', '--faults', 'none', '--jobs', '2'])).toBe(1);
    expect(out.at(-1)).toBe(alone.at(-1));
    expect(out.at(-1)).toMatch(/^45 seeds, [1-9]\d* violations$/);
    expect([...out].sort()).toEqual([...alone].sort());
  }, 60_000);

  it('--check takes declared, evs or a list of properties, and refuses others', async () => {
    capture();
    expect(await command.run(['--driver', 'sequencer', '--seeds', '1-2', '--faults', 'none', '--check', 'basic,availability'])).toBe(0);
    expect(out).toEqual(['2 seeds, 0 violations']);
    await expect(command.run(['--driver', 'sequencer', '--seeds', '1', '--check', 'basic,nope'])).rejects.toThrow(/nope is not a property/);
  });

  it('a swarm of totem runs whole nodes unless told --driver-only; the two flags exclude each other', async () => {
    capture();
    expect(await command.run(['--driver', 'totem', '--swarm', '--seeds', '2', '--verbose'])).toBe(0);
    // Only a whole-node run reports its simulated clients.
    expect(out.some((l) => /^# \d+ clients, \d+ messages, virtual /.test(l))).toBe(true);
    capture();
    expect(await command.run(['--driver', 'totem', '--swarm', '--seeds', '2', '--verbose', '--driver-only'])).toBe(0);
    expect(out.some((l) => /^# \d+ clients, /.test(l))).toBe(false);
    expect(out.at(-1)).toBe('1 seeds, 0 violations');
    await expect(command.run(['--driver', 'totem', '--whole-node', '--driver-only'])).rejects.toThrow(/exclude each other/);
    await expect(command.run(['--driver', 'totem', '--whole-node', '--check', 'agreed'])).rejects.toThrow(/--driver-only/);
  }, 60_000);

  it('refuses an unknown driver, listing the registered ones', async () => {
    await expect(command.run(['--driver', 'nope', '--seeds', '1'])).rejects.toThrow(/registered drivers: .*flood/);
  });
});
