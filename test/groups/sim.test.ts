// GroupService over the real totem and cman drivers in the deterministic simulator: same sequences through loss, a partition and its merge (totem), and convergence (cman).
import { describe, expect, it } from 'vitest';
import type { Driver, DriverEntry, DriverHost, DriverUpcalls } from '../../core/driver/types.ts';
import { isClusterError } from '../../core/api/errors.ts';
import { GroupService } from '../../core/groups/service.ts';
import { cmanDriver } from '../../drivers/cman/index.ts';
import { FAST_PROFILE, totemDriver } from '../../drivers/totem/index.ts';
import { Simulation } from '../../sim/sim.ts';
import { Recorder, TEST_LIMITS, expectSameSequences, fmtMember, type TestSocket } from '../support/groups.ts';

/** Wraps a driver entry so that every driver incarnation also reports to a GroupService. */
function withGroups(entry: DriverEntry<unknown>, attach: (nodeId: number, driver: Driver) => DriverUpcalls): DriverEntry<unknown> {
  return {
    ...entry,
    create(common, options, host) {
      const ref: { up?: DriverUpcalls } = {};
      const tee: DriverHost = {
        nodeId: host.nodeId, state: host.state,
        now: () => host.now(), rng: () => host.rng(), transmit: (to, b) => host.transmit(to, b),
        log: (l, m, f) => host.log(l, m, f),
        deliver: (s, p, o) => { host.deliver(s, p, o); ref.up?.deliver(s, p, o); },
        configuration: (c) => { host.configuration(c); ref.up?.configuration(c); },
        writable: () => { host.writable?.(); ref.up?.writable?.(); },
      };
      const d = entry.create(common, options, tee);
      ref.up = attach(common.nodeId, d);
      return d;
    },
  };
}

class SimGroups {
  readonly sim: Simulation;
  readonly svcs = new Map<number, GroupService>();
  readonly sockets: TestSocket[] = [];
  constructor(entry: DriverEntry<unknown>, seed: number, driverOptions: Record<string, unknown>, loss = 0) {
    const wrapped = withGroups(entry, (nodeId, driver) => {
      const svc = new GroupService({
        nodeId, limits: TEST_LIMITS, guarantees: entry.guarantees, driverName: entry.name, log: () => {},
        multicast: (p, o) => driver.multicast(p, o),
      });
      this.svcs.set(nodeId, svc);
      return svc;
    });
    this.sim = new Simulation({ seed, nodes: 3, driver: wrapped, driverOptions, network: { loss } });
    this.sim.start();
  }
  open(node: number, port: number): TestSocket {
    const svc = this.svcs.get(node)!;
    const rec = new Recorder(Infinity, { stamp: () => '', ring: () => { const r = svc.localNode().ringId; return `${r.rep}.${r.seq}`; } });
    const s = { node, svc, rec, ep: svc.open({ pid: 7, port }, rec) };
    this.sockets.push(s);
    return s;
  }
  view(node: number, group: string): string[] { return this.svcs.get(node)!.groupMembers(group).map(fmtMember); }
  until(what: string, pred: () => boolean, ms = 20_000): void {
    if (!this.sim.runUntil(pred, ms)) throw new Error(`seed ${this.sim.seed}: timed out waiting for ${what}`);
  }
  /** Sends, retrying EAGAIN after letting the simulation run. */
  send(s: TestSocket, text: string, order: 'agreed' | 'fifo' | 'safe'): void {
    for (let i = 0; i < 1000; i++) {
      try { s.ep.send(new TextEncoder().encode(text), order); return; } catch (e) {
        if (!isClusterError(e, 'EAGAIN')) throw e;
        this.sim.runFor(5);
      }
    }
    throw new Error('send stayed EAGAIN');
  }
}

const msgCount = (s: TestSocket): number => s.rec.events.filter((e) => e.type === 'message').length;

describe('GroupService in the simulator', () => {
  it('totem: same sequences on every endpoint through loss, a partition and the merge', () => {
    const seed = Number(process.env.GROUPS_SIM_SEED ?? 4242);
    console.log(`groups-over-totem seed ${seed} (GROUPS_SIM_SEED=${seed} to replay)`);
    const g = new SimGroups(totemDriver, seed, { ...FAST_PROFILE }, 0.02);
    g.until('ring of 3', () => [1, 2, 3].every((n) => g.svcs.get(n)?.localNode().members.length === 3));
    const s = [1, 2, 3, 1, 2, 3].map((n, i) => g.open(n, i + 1));
    s.forEach((x, i) => x.ep.bind(i < 3 ? 'red' : 'blue'));
    g.until('groups full', () => [1, 2, 3].every((n) => g.view(n, 'red').length === 3 && g.view(n, 'blue').length === 3));
    for (let i = 0; i < 20; i++) g.send(s[i % 6], `a${i}`, i % 3 === 0 ? 'safe' : 'agreed');
    g.until('first batch', () => s.every((x) => msgCount(x) === (x.ep.group() === 'red' ? 11 : 9)));

    g.sim.partition([[1, 2], [3]]);
    g.until('split', () => g.view(1, 'red').length === 2 && g.view(3, 'red').length === 1);
    g.send(s[0], 'left-side', 'agreed');
    g.send(s[2], 'right-side', 'agreed');
    g.sim.heal();
    g.until('merged', () => [1, 2, 3].every((n) => g.svcs.get(n)!.localNode().members.length === 3
      && g.view(n, 'red').length === 3 && g.view(n, 'blue').length === 3), 30_000);
    for (let i = 0; i < 10; i++) g.send(s[i % 6], `b${i}`, 'agreed');
    g.until('second batch', () => s.every((x) => x.rec.log.some((l) => l.endsWith(x.ep.group() === 'red' ? ' b8' : ' b9'))));

    expect(expectSameSequences(g.sockets, 'red')).toBeGreaterThan(20);
    expect(expectSameSequences(g.sockets, 'blue')).toBeGreaterThan(20);
    // The merge was learned through the state exchange, with reason join.
    expect(s[2].rec.log.some((l) => /^regular red .*\+\[1\/7\/1:join 2\/7\/2:join\]/.test(l))).toBe(true);
    expect(s[0].rec.log.some((l) => /^transitional red .*-\[3\/7\/3:nodedown\]/.test(l))).toBe(true);
    for (const n of [2, 3]) expect(g.view(n, 'red')).toEqual(g.view(1, 'red'));
    expect(g.svcs.get(1)!.stats().malformed ?? 0).toBe(0);

    // Node 3 crashes and restarts with an empty GroupService: the exchange teaches it the groups.
    g.sim.crash(3);
    g.until('crash seen', () => g.view(1, 'red').length === 2 && g.view(2, 'blue').length === 2, 30_000);
    g.sim.restart(3);
    g.until('rejoined', () => [1, 2, 3].every((n) => g.svcs.get(n)!.localNode().members.length === 3), 30_000);
    g.until('learned', () => g.view(3, 'red').length === 2 && g.view(3, 'blue').length === 2, 30_000);
    const fresh = g.open(3, 9);
    fresh.ep.bind('red');
    g.until('fresh joined', () => [1, 2, 3].every((n) => g.view(n, 'red').length === 3));
    expect(fresh.rec.log[0]).toMatch(/^regular red .* \[1\/7\/1 2\/7\/2 3\/7\/9\] \+\[3\/7\/9:join\]/);
    g.send(s[1], 'welcome', 'agreed');
    g.until('welcome', () => fresh.rec.log.at(-1) === 'msg red from 2/7/2 agreed welcome');
  });

  it('cman: groups converge and each sender stays fifo', () => {
    const g = new SimGroups(cmanDriver, 99, {}, 0.02);
    g.until('3 nodes', () => [1, 2, 3].every((n) => g.svcs.get(n)?.localNode().members.length === 3));
    const s = [1, 2, 3].map((n) => g.open(n, n));
    s.forEach((x) => x.ep.bind('g'));
    g.until('group full', () => [1, 2, 3].every((n) => g.view(n, 'g').length === 3));
    for (let i = 0; i < 10; i++) for (const x of s) g.send(x, `${x.node}:${i}`, 'fifo');
    g.until('all messages', () => s.every((x) => msgCount(x) === 30));
    for (const x of s) {
      for (const n of [1, 2, 3]) {
        const got = x.rec.log.filter((l) => l.startsWith(`msg g from ${n}/`)).map((l) => l.split(' ').at(-1));
        expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `${n}:${i}`));
      }
    }
    g.sim.crash(3);
    g.until('nodedown', () => [1, 2].every((n) => g.view(n, 'g').length === 2), 30_000);
    expect(s[0].rec.log.at(-1)).toMatch(/-\[3\/7\/3:nodedown\]$/);
  });
});
