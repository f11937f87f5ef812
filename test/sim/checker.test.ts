// Proves the EVS checker catches each property's violation in hand-made logs, naming the right
// property, raises no false alarm on logs that keep them all, fails a driver that delivers nothing,
// and judges availability against a fault timeline only where the network dropped nothing itself.
import { describe, expect, it } from 'vitest';
import type { Order } from '../../core/driver/types.ts';
import { ALL_PROPERTIES, check, propertiesFor, type Property } from '../../sim/checker.ts';
import type { FaultEvent, HostFaultEvent, LogEvent, NodeLog } from '../../sim/log.ts';
import { CONFIGURATIONS_PER_EPISODE_MAX } from '../../sim/availability.ts';
import { runSeed } from '../../sim/scenario.ts';
import { nullDriver } from '../../sim/testdrivers/null.ts';
import { sequencerDriver } from '../../sim/testdrivers/sequencer.ts';
import { cmanDriver } from '../../drivers/cman/index.ts';

/** Writes per-node logs by hand; left/joined follow from the node's previous configuration. */
class Logs {
  private t = 0;
  private readonly logs = new Map<number, LogEvent[]>();
  private readonly lastMembers = new Map<number, number[]>();
  private readonly order = new Map<string, Order>();
  private readonly views = new Map<number, number>();

  private push(node: number, e: LogEvent): this {
    let l = this.logs.get(node);
    if (!l) this.logs.set(node, (l = []));
    l.push(e);
    return this;
  }
  get now(): number {
    return this.t;
  }
  conf(nodes: number[], kind: 'regular' | 'transitional', seq: number, members: number[], rep = 1): this {
    for (const node of nodes) {
      const prev = this.lastMembers.get(node);
      const left = prev ? prev.filter((x) => !members.includes(x)) : [];
      const joined = prev ? members.filter((x) => !prev.includes(x)) : [...members];
      this.lastMembers.set(node, members);
      this.push(node, { type: 'conf', t: ++this.t, node, kind, ringId: { rep, seq }, members, left, joined });
    }
    return this;
  }
  send(node: number, id: string, order: Order = 'agreed'): this {
    this.order.set(id, order);
    return this.push(node, { type: 'send', t: ++this.t, node, id, order, payloadHash: `h-${id}`, size: 10 });
  }
  deliver(nodes: number[], id: string, over: { sender?: number; hash?: string; order?: Order } = {}): this {
    const sender = over.sender ?? Number(id.split('.')[0]);
    for (const node of nodes) {
      this.push(node, {
        type: 'deliver', t: ++this.t, node, id, sender, order: over.order ?? this.order.get(id) ?? 'agreed',
        payloadHash: over.hash ?? `h-${id}`, size: 10,
      });
    }
    return this;
  }
  crash(node: number): this {
    this.lastMembers.delete(node);
    return this.push(node, { type: 'crash', t: ++this.t, node });
  }
  restart(node: number): this {
    return this.push(node, { type: 'restart', t: ++this.t, node, incarnation: 2 });
  }
  leave(node: number): this {
    return this.push(node, { type: 'leave', t: ++this.t, node });
  }
  /** A FIFO-only driver's view change: each node names it itself (rep = the node, seq = its count). */
  view(nodes: number[], members: number[]): this {
    for (const node of nodes) this.conf([node], 'regular', (this.views.get(node) ?? 0) + 1, members, node);
    for (const node of nodes) this.views.set(node, (this.views.get(node) ?? 0) + 1);
    return this;
  }
  /** Advance the clock (nothing logged). */
  wait(ms: number): this {
    this.t += ms;
    return this;
  }
  build(): NodeLog[] {
    return [...this.logs.keys()].sort((a, b) => a - b).map((node) => ({ node, events: this.logs.get(node)! }));
  }
}

/** A history that keeps every property: a crash, a transitional configuration, a restart and a merge. */
function goodHistory(): { logs: Logs; liveFrom: number } {
  const L = new Logs()
    .conf([1, 2, 3], 'regular', 4, [1, 2, 3])
    .send(1, '1.1.1').send(2, '2.1.1', 'safe').send(3, '3.1.1', 'fifo')
    .deliver([1, 2, 3], '1.1.1').deliver([1, 2, 3], '2.1.1').deliver([3, 1, 2], '3.1.1')
    .send(3, '3.1.2')
    .crash(3)
    .send(1, '1.1.2').deliver([1, 2], '1.1.2')
    // 2 sends while the ring is changing; its message goes out in the new ring.
    .send(2, '2.1.2')
    .conf([1, 2], 'transitional', 8, [1, 2])
    .send(1, '1.1.3').deliver([1, 2], '1.1.3')
    .conf([1, 2], 'regular', 8, [1, 2])
    .deliver([2, 1], '2.1.2');
  L.restart(3);
  const liveFrom = L.now;
  L.conf([1, 2, 3], 'regular', 12, [1, 2, 3], 1)
    .send(3, '3.2.1').send(1, '1.1.4', 'safe')
    .deliver([1, 2, 3], '3.2.1').deliver([1, 2, 3], '1.1.4');
  return { logs: L, liveFrom };
}

/** `with`: properties that change what `property` means (basic checks configurations only with them). */
function caught(logs: NodeLog[], property: Property, liveFrom = 0, withProps: Property[] = []): void {
  const alone = check(logs, { properties: [property, ...withProps], seed: 9, liveFrom })
    .filter((v) => v.property === property);
  expect(alone.length, `${property} not caught`).toBeGreaterThan(0);
  if (withProps.length === 0) expect(check(logs, { properties: [property] }).every((v) => v.property === property)).toBe(true);
  expect(alone[0].seed).toBe(9);
  expect(alone[0].nodes.length).toBeGreaterThan(0);
  expect(alone[0].events.length).toBeGreaterThan(0);
  const all = check(logs, { properties: ALL_PROPERTIES, liveFrom });
  expect(all.map((v) => v.property)).toContain(property);
}

describe('checker: no false alarm', () => {
  it('accepts a history with crash, transitional configuration, restart and merge', () => {
    const { logs, liveFrom } = goodHistory();
    expect(check(logs.build(), { properties: ALL_PROPERTIES, liveFrom })).toEqual([]);
  });

  it('accepts a transitional configuration with an allowed gap (only a departed node had it)', () => {
    const L = new Logs().conf([1, 2, 3], 'regular', 1, [1, 2, 3])
      .send(3, '3.1.1').send(1, '1.1.1').deliver([3], '3.1.1').deliver([3], '1.1.1').crash(3)
      .conf([1, 2], 'transitional', 2, [1, 2]).deliver([1, 2], '1.1.1')
      .conf([1, 2], 'regular', 2, [1, 2]);
    expect(check(L.build(), { properties: ALL_PROPERTIES.filter((p) => p !== 'liveness') })).toEqual([]);
  });

  it('accepts a safe delivery in a transitional configuration a named member never installed', () => {
    // 2 lost the new ring during recovery and went on from the old one (docs/TOTEM.md property 7 is
    // about regular configurations).
    const L = new Logs().conf([1, 2, 3], 'regular', 1, [1, 2, 3]).send(1, '1.1.1', 'safe').crash(3)
      .conf([1], 'transitional', 2, [1, 2]).deliver([1], '1.1.1').conf([1], 'regular', 2, [1, 2]);
    expect(check(L.build(), { properties: ['safe'] })).toEqual([]);
  });

  it('maps declared guarantees to properties', () => {
    expect(propertiesFor({ fifo: true, agreed: false, safe: false, virtualSynchrony: false }))
      .toEqual(['basic', 'fifo', 'stable-no-loss']);
    expect(propertiesFor({ fifo: true, agreed: true, safe: true, virtualSynchrony: true }).sort())
      .toEqual([...ALL_PROPERTIES].sort());
  });
});

describe('checker: each property caught', () => {
  const base = () => new Logs().conf([1, 2, 3], 'regular', 1, [1, 2, 3]);

  it('basic: a delivery nobody sent', () => caught(base().deliver([2], '1.1.9').build(), 'basic'));
  it('basic: a duplicate', () => caught(base().send(1, '1.1.1').deliver([1, 2, 3], '1.1.1').deliver([2], '1.1.1').build(), 'basic'));
  it('basic: a changed payload', () =>
    caught(base().send(1, '1.1.1').deliver([1, 3], '1.1.1').deliver([2], '1.1.1', { hash: 'other' }).build(), 'basic'));
  it('basic: a wrong sender', () =>
    caught(base().send(1, '1.1.1').deliver([1, 3], '1.1.1').deliver([2], '1.1.1', { sender: 3 }).build(), 'basic'));
  it('basic: delivered in two different configurations', () => {
    const L = base().send(1, '1.1.1').deliver([1], '1.1.1').conf([1, 2], 'regular', 2, [1, 2]).deliver([2], '1.1.1');
    caught(L.build(), 'basic', 0, ['configurations']);
    // Without virtual synchrony, configurations are advisory: the same log is no basic violation.
    expect(check(L.build(), { properties: ['basic'] })).toEqual([]);
  });
  it('basic: delivered in a configuration the sender never was in', () => {
    const L = base().send(3, '3.1.1').crash(3).conf([1, 2], 'regular', 2, [1, 2]).deliver([1, 2], '3.1.1');
    caught(L.build(), 'basic', 0, ['configurations']);
  });

  it('configurations: a node outside the configuration it installs', () => caught(
    new Logs().conf([1, 2], 'regular', 1, [1]).build(), 'configurations'));
  it('configurations: different members for one ring id', () => {
    const L = new Logs().conf([1, 2], 'regular', 1, [1, 2]).conf([3], 'regular', 1, [1, 2, 3]);
    caught(L.build(), 'configurations');
  });
  it('configurations: ring seq going backwards', () => caught(
    base().conf([1, 2, 3], 'regular', 1, [1, 2, 3], 2).build(), 'configurations'));
  it('configurations: a delivery before the first configuration', () => caught(
    new Logs().send(1, '1.1.1').deliver([1], '1.1.1').conf([1], 'regular', 1, [1]).build(), 'configurations'));
  it('configurations: a transitional configuration larger than its regular one', () => caught(
    new Logs().conf([1, 2], 'regular', 1, [1, 2]).conf([1, 2], 'transitional', 2, [1, 2, 3]).build(), 'configurations'));

  it('self-delivery: a live sender never delivers its own message', () => caught(
    base().send(1, '1.1.1').deliver([2, 3], '1.1.1').build(), 'self-delivery'));

  it('failure-atomicity: two nodes enter the same next configuration with different sets', () => {
    const L = base().send(1, '1.1.1').deliver([1, 2, 3], '1.1.1').send(1, '1.1.2').deliver([1], '1.1.2').crash(3)
      .conf([1, 2], 'transitional', 2, [1, 2]).conf([1, 2], 'regular', 2, [1, 2]);
    caught(L.build(), 'failure-atomicity');
  });

  it('causal: a reply delivered before the message it answers', () => {
    const L = base().send(1, '1.1.1').deliver([1, 2], '1.1.1').send(2, '2.1.1').crash(2)
      .deliver([3], '2.1.1').deliver([3], '1.1.1');
    caught(L.build(), 'causal');
  });

  it('agreed: two nodes deliver in different orders (a cycle)', () => {
    const L = base().send(1, '1.1.1').send(2, '2.1.1')
      .deliver([1, 3], '1.1.1').deliver([2], '2.1.1').deliver([1, 3], '2.1.1').deliver([2], '1.1.1');
    caught(L.build(), 'agreed');
  });
  it('agreed: the cycle reported is a real one, not a message downstream of it', () => {
    const logs = base().send(1, '1.1.1').send(2, '2.1.1').send(3, '3.1.1')
      .deliver([1], '3.1.1').deliver([2], '1.1.1').deliver([2, 3], '2.1.1').deliver([2], '3.1.1').deliver([3], '1.1.1').build();
    const v = check(logs, { properties: ['agreed'] });
    expect(v[0].message).toMatch(/cycle msg (1\.1\.1 -> msg 2\.1\.1 -> msg 1\.1\.1|2\.1\.1 -> msg 1\.1\.1 -> msg 2\.1\.1)$/);
    expect(v[0].nodes).toEqual([2, 3]);
  });
  it('agreed: a configuration change in different places (a cycle through a configuration)', () => {
    const L = base().send(1, '1.1.1').deliver([1, 2], '1.1.1').conf([1, 2, 3], 'regular', 2, [1, 2, 3])
      .deliver([3], '1.1.1');
    caught(L.build(), 'agreed');
  });
  it('agreed: a gap in a regular configuration', () => {
    const L = base().send(1, '1.1.1').send(1, '1.1.2').deliver([1, 2], '1.1.1').deliver([1, 2, 3], '1.1.2');
    caught(L.build(), 'agreed');
  });
  it('agreed: a gap in a transitional configuration for a message a member delivered', () => {
    const L = base().send(1, '1.1.1').send(1, '1.1.2').crash(3)
      .conf([1, 2], 'transitional', 2, [1, 2]).deliver([2], '1.1.1').deliver([2, 1], '1.1.2').crash(2);
    caught(L.build(), 'agreed');
  });

  it('safe: a member that stays never delivers a safe message', () => caught(
    base().send(1, '1.1.1', 'safe').deliver([1, 3], '1.1.1').build(), 'safe'));

  it('fifo: one sender\'s messages delivered out of order', () => caught(
    base().send(1, '1.1.1', 'fifo').send(1, '1.1.2', 'fifo').deliver([1, 3], '1.1.1').deliver([1, 2, 3], '1.1.2')
      .deliver([2], '1.1.1').build(), 'fifo'));

  it('stable-no-loss: a message lost while membership is stable', () => caught(
    base().send(1, '1.1.1', 'fifo').deliver([1, 2], '1.1.1').build(), 'stable-no-loss'));

  it('liveness: live nodes end in different configurations', () => {
    const L = base().conf([1, 2], 'regular', 2, [1, 2]).conf([3], 'regular', 3, [3], 3);
    caught(L.build(), 'liveness');
  });
  it('liveness: a message sent after the heal is not delivered everywhere', () => {
    const L = base();
    const liveFrom = L.now;
    L.send(2, '2.1.1').deliver([2, 3], '2.1.1');
    caught(L.build(), 'liveness', liveFrom);
  });
  it('liveness: a driver that delivers nothing fails', () => {
    const res = runSeed({ driver: nullDriver, seed: 1, nodes: 3, faults: 'none', properties: ALL_PROPERTIES });
    expect(res.violations.map((v) => v.property)).toContain('liveness');
  });
});

describe('checker: mutations of a real run are caught', () => {
  /** Logs of a clean sequencer run (agreed order, one configuration) to break one way at a time. */
  function realLogs(): NodeLog[] {
    const r = runSeed({ driver: sequencerDriver, seed: 4, nodes: 4, faults: 'none', properties: ALL_PROPERTIES });
    expect(r.violations).toEqual([]);
    return r.sim.logs().map((l) => ({ node: l.node, events: [...l.events] }));
  }
  /** Positions of the agreed-order deliveries in a node's log. */
  const delivers = (l: NodeLog) => l.events.flatMap((e, i) => (e.type === 'deliver' && e.order === 'agreed' ? [i] : []));
  const props: Property[] = ['basic', 'fifo', 'stable-no-loss', 'causal', 'agreed'];

  it('swapping two deliveries at one node breaks agreed order', () => {
    const logs = realLogs();
    const ev = logs[1].events as LogEvent[];
    const d = delivers(logs[1]);
    const i = d.findIndex((x, k) => k > 0 && (ev[x] as { sender: number }).sender !== (ev[d[k - 1]] as { sender: number }).sender);
    [ev[d[i - 1]], ev[d[i]]] = [ev[d[i]], ev[d[i - 1]]];
    expect(check(logs, { properties: props }).map((v) => v.property)).toContain('agreed');
  });

  it('dropping one delivery breaks stable-no-loss and the no-gap rule', () => {
    const logs = realLogs();
    const ev = logs[2].events as LogEvent[];
    ev.splice(delivers(logs[2])[3], 1);
    const found = check(logs, { properties: props }).map((v) => v.property);
    expect(found).toContain('stable-no-loss');
    expect(found).toContain('agreed');
  });

  it('delivering one message twice breaks basic delivery', () => {
    const logs = realLogs();
    const ev = logs[0].events as LogEvent[];
    ev.push(ev[delivers(logs[0])[2]]);
    expect(check(logs, { properties: props }).map((v) => v.property)).toContain('basic');
  });
});

describe('checker: a FIFO-only driver whose nodes name their views themselves (cman)', () => {
  /** Three nodes that each installed {1,2,3} under a ring id of their own. */
  const stable = () => new Logs().view([1], [1]).view([2], [2]).view([3], [3]).view([1, 2, 3], [1, 2, 3]);
  const fifoProps: Property[] = ['basic', 'fifo', 'stable-no-loss'];

  it('stable-no-loss: a message lost between two nodes whose views are stable and contain each other', () => {
    const logs = stable().send(1, '1.1.1', 'fifo').deliver([1, 3], '1.1.1').send(1, '1.1.2', 'fifo').deliver([1, 2, 3], '1.1.2').build();
    for (const views of [false, true]) {
      const v = check(logs, { properties: fifoProps, views });
      expect(v.map((x) => x.property), `views ${views}`).toEqual(['stable-no-loss']);
      expect(v[0]).toMatchObject({ nodes: [1, 2] });
      expect(v[0].message).toMatch(/node 2 delivered 1\.1\.1 0 times/);
    }
  });
  it('stable-no-loss: a duplicate while views are stable', () => {
    const logs = stable().send(2, '2.1.1', 'fifo').deliver([1, 2, 3], '2.1.1').deliver([3], '2.1.1').build();
    expect(check(logs, { properties: ['stable-no-loss'] }).map((x) => x.nodes)).toEqual([[2, 3]]);
  });
  it('not a violation: the same loss where the receiver\'s view dropped the sender afterwards', () => {
    const logs = stable().send(1, '1.1.1', 'fifo').deliver([1, 3], '1.1.1').view([2], [2, 3]).build();
    expect(check(logs, { properties: fifoProps, views: true })).toEqual([]);
    expect(check(logs, { properties: fifoProps })).toEqual([]);
  });
  it('not a violation: the receiver\'s view did not yet contain the sender when it sent', () => {
    const logs = new Logs().view([1], [1]).view([2], [2]).view([3], [3]).view([1, 3], [1, 2, 3]).send(1, '1.1.1', 'fifo')
      .view([2], [1, 2, 3]).deliver([1, 3], '1.1.1').build();
    expect(check(logs, { properties: fifoProps, views: true })).toEqual([]);
  });
  it('not a violation: the sender\'s view dropped the receiver, or the receiver crashed', () => {
    const dropped = stable().send(1, '1.1.1', 'fifo').deliver([1, 3], '1.1.1').view([1], [1, 3]).build();
    expect(check(dropped, { properties: fifoProps, views: true })).toEqual([]);
    const crashed = stable().send(1, '1.1.1', 'fifo').deliver([1, 3], '1.1.1').crash(2).build();
    expect(check(crashed, { properties: fifoProps, views: true })).toEqual([]);
  });
  it('a message sent within the grace period before the end may still be in flight', () => {
    const logs = stable().send(1, '1.1.1', 'fifo').deliver([1, 3], '1.1.1').build();
    expect(check(logs, { properties: fifoProps, stableGraceMs: 100 })).toEqual([]);
    expect(check(logs, { properties: fifoProps, stableGraceMs: 100, endT: logs[0].events.at(-1)!.t + 100 }))
      .toHaveLength(1);
  });
  it('agreed: judged by the order the sender asked for, not the fifo label of the delivery', () => {
    const fifo = { order: 'fifo' as const };
    const L = (asked: Order) => stable().send(1, '1.1.1', asked).send(2, '2.1.1', asked)
      .deliver([1], '1.1.1', fifo).deliver([1], '2.1.1', fifo).deliver([2, 3], '2.1.1', fifo).deliver([2, 3], '1.1.1', fifo).build();
    const v = check(L('agreed'), { properties: ['agreed', 'causal', ...fifoProps], views: true });
    expect(v.map((x) => x.property)).toEqual(['agreed']);
    expect(v[0].message).toMatch(/cycle/);
    expect(check(L('fifo'), { properties: ['agreed', 'causal', ...fifoProps], views: true })).toEqual([]);
  });
  it('views: failure atomicity and the sending configuration compare nodes with the same view history', () => {
    const logs = stable().send(1, '1.1.1', 'fifo').deliver([1, 2], '1.1.1').crash(1).view([2, 3], [2, 3]).build();
    expect(check(logs, { properties: ['failure-atomicity'] })).toEqual([]); // ring ids: nothing shared
    const v = check(logs, { properties: ['failure-atomicity'], views: true });
    expect(v).toHaveLength(1);
    expect(v[0]).toMatchObject({ property: 'failure-atomicity', nodes: [2, 3] });
    const apart = new Logs().view([1, 2], [1, 2]).view([3], [3]).send(1, '1.1.1', 'fifo').view([3], [1, 3])
      .deliver([1, 2, 3], '1.1.1').build();
    expect(check(apart, { properties: ['basic', 'configurations'], views: true }).map((x) => x.property)).toEqual(['basic']);
  });
  it('views: live nodes in the same member set have converged, however often each installed it', () => {
    const logs = stable().view([1, 2], [1, 2]).view([1, 2], [1, 2, 3]).build();
    expect(check(logs, { properties: ['liveness'], views: true })).toEqual([]);
    expect(check(logs, { properties: ['liveness'] }).map((x) => x.property)).toEqual(['liveness']);
  });
});

describe('checker: a real cman run, judged by views', () => {
  it('is clean, and dropping one delivery of another node\'s message breaks stable-no-loss', () => {
    const r = runSeed({ driver: cmanDriver as never, seed: 7, nodes: 3, faults: 'none', properties: ['basic', 'fifo', 'stable-no-loss'] });
    expect(r.violations).toEqual([]);
    const logs = r.sim.logs().map((l) => ({ node: l.node, events: [...l.events] }));
    const ev = logs[1].events as LogEvent[];
    const i = ev.findIndex((e) => e.type === 'deliver' && e.sender === 1);
    expect(i).toBeGreaterThanOrEqual(0);
    const lost = ev[i] as { id: string };
    ev.splice(i, 1);
    const v = check(logs, { properties: ['stable-no-loss'], views: true, endT: r.virtualMs });
    expect(v.map((x) => x.nodes)).toEqual([[1, 2]]);
    expect(v[0].message).toContain(`node 2 delivered ${lost.id} 0 times`);
  });
});

describe('checker: availability', () => {
  const net = (t: number, groups: number[][], loss = 0): FaultEvent =>
    ({ type: 'net', t, groups, loss, linkFaults: false, filter: false, finiteNic: false });
  const host = (t: number, node: number, what: HostFaultEvent['what']): FaultEvent => ({ type: 'host', t, node, what });
  const avail = (logs: NodeLog[], faults?: FaultEvent[]) => check(logs, { properties: ['availability'], seed: 3, faults });

  /** Four nodes on one ring; node 4 is paused, the others form [1,2,3], then `after` happens. */
  function pause4(after: (L: Logs) => void, loss = 0): { logs: NodeLog[]; faults: FaultEvent[] } {
    const L = new Logs().conf([1, 2, 3, 4], 'regular', 4, [1, 2, 3, 4]).wait(10);
    const from = L.now;
    L.wait(10).conf([1, 2, 3], 'regular', 8, [1, 2, 3]).wait(10);
    const to = L.now;
    after(L.wait(10));
    return { logs: L.build(), faults: [net(0, [[1, 2, 3, 4]], loss), host(from, 4, 'pause'), host(to, 4, 'resume')] };
  }

  it('accepts the others excluding a paused node and taking it back', () => {
    const { logs, faults } = pause4((L) => L.conf([1, 2, 3, 4], 'regular', 12, [1, 2, 3, 4]));
    expect(avail(logs, faults)).toEqual([]);
  });

  it('catches a healthy node leaving out another after the pause (the GATHER storm)', () => {
    const { logs, faults } = pause4((L) => L.conf([1], 'regular', 12, [1]).conf([2, 3], 'regular', 12, [2, 3], 2)
      .conf([1, 2, 3, 4], 'regular', 16, [1, 2, 3, 4]));
    const v = avail(logs, faults);
    expect(v.map((x) => x.property)).toEqual(['availability', 'availability', 'availability']);
    expect(v[0]).toMatchObject({ seed: 3, nodes: [1, 2] });
    expect(v[0].message).toMatch(/node 1 installed regular 1\.12 \[1\] without node 2, though neither was touched by the faults \(pause 4 at .*, resume 4 at .*\)/);
  });

  it(`catches more than ${CONFIGURATIONS_PER_EPISODE_MAX} configurations of an untouched node in one episode`, () => {
    const { logs, faults } = pause4((L) => {
      for (let seq = 12; seq < 24; seq += 4) L.conf([1, 2, 3], 'regular', seq, [1, 2, 3]);
      L.conf([1, 2, 3, 4], 'regular', 24, [1, 2, 3, 4]);
    });
    const v = avail(logs, faults);
    expect(v.map((x) => x.nodes)).toEqual([[1], [2], [3]]);
    expect(v[0].message).toMatch(/node 1, untouched by the faults .* installed 5 regular configurations \(at most 4 per episode\)/);
  });

  it('does not judge an episode with random loss, nor a run without a fault timeline', () => {
    const storm = (L: Logs) => L.conf([1], 'regular', 12, [1]).conf([2, 3], 'regular', 12, [2, 3], 2);
    const lossy = pause4(storm, 0.01);
    expect(avail(lossy.logs, lossy.faults)).toEqual([]);
    expect(avail(pause4(storm).logs)).toEqual([]);
  });

  it('judges a partition by its groups: each side stays together', () => {
    const L = new Logs().conf([1, 2, 3, 4], 'regular', 4, [1, 2, 3, 4]).wait(10);
    const from = L.now;
    L.wait(10).conf([1, 2], 'regular', 8, [1, 2]).conf([3, 4], 'regular', 8, [3, 4], 3).wait(10);
    const to = L.now;
    const faults = [net(0, [[1, 2, 3, 4]]), net(from, [[1, 2], [3, 4]]), net(to, [[1, 2, 3, 4]])];
    const merged = L.wait(10).conf([1, 2, 3, 4], 'regular', 12, [1, 2, 3, 4]).build();
    expect(avail(merged, faults)).toEqual([]);
    const split = L.conf([3], 'regular', 16, [3], 3).build();
    expect(avail(split, faults).map((x) => x.nodes)).toEqual([[3, 4]]);
  });

  it('an episode ends at the next one: the node paused in the first is judged in the second', () => {
    const { logs, faults } = pause4((L) => L.conf([1, 2, 3, 4], 'regular', 12, [1, 2, 3, 4]));
    const t = logs[0].events.at(-1)!.t + 10;
    const more = [...faults, host(t, 1, 'pause'), host(t + 20, 1, 'resume')];
    const conf = (node: number, members: number[]): LogEvent =>
      ({ type: 'conf', t: t + 5, node, kind: 'regular', ringId: { rep: members[0], seq: 16 }, members, left: [], joined: [] });
    const next = (of4: number[]) => logs.map((l) => l.node === 1 ? l : { node: l.node, events: [...l.events, conf(l.node, l.node === 4 ? of4 : [2, 3, 4])] });
    expect(avail(next([2, 3, 4]), more)).toEqual([]);
    const v = avail(next([4]), more);
    expect(v.map((x) => x.nodes)).toEqual([[2, 4]]);
    expect(v[0].message).toMatch(/^node 4 installed regular 4\.16 \[4\] without node 2, .*\(pause 1 at .*, resume 1 at .*\)/);
  });
});
