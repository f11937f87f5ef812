// Helpers for the cman tests: run a simulated cluster to a stable membership and read the logs.
import { expect } from 'vitest';
import { Simulation, type NetworkOptions } from '../../sim/sim.ts';
import type { DeliverEvent, NodeLog, SendEvent } from '../../sim/log.ts';
import { cmanDriver } from '../../drivers/cman/index.ts';
import type { CmanDriver } from '../../drivers/cman/driver.ts';

export interface CmanSimOptions {
  seed: number;
  nodes: number;
  network?: NetworkOptions;
  driverOptions?: Record<string, unknown>;
  mtu?: number;
}

export function cmanSim(o: CmanSimOptions): Simulation {
  const sim = new Simulation({
    seed: o.seed, nodes: o.nodes, driver: cmanDriver as never, driverOptions: o.driverOptions,
    network: o.network, mtu: o.mtu,
  });
  sim.start();
  return sim;
}

export function stat(sim: Simulation, id: number, key: string): number {
  return (sim.driver(id) as CmanDriver).stats()[key] as number;
}

/** Runs in steps of 5 ms until pred() holds or maxMs passes (stats() is too dear per event). */
export function poll(sim: Simulation, pred: () => boolean, maxMs: number): boolean {
  for (const end = sim.now + maxMs; sim.now < end;) {
    if (pred()) return true;
    sim.runFor(5);
  }
  return pred();
}

/** Runs until every listed node counts `n` members. */
export function untilMembers(sim: Simulation, ids: number[], n: number, maxMs = 10_000): boolean {
  return poll(sim, () => ids.every((id) => stat(sim, id, 'members') === n), maxMs);
}

/** Runs until no listed node keeps an unacked frame or a queued message. */
export function untilQuiet(sim: Simulation, ids: number[], maxMs = 30_000): boolean {
  return poll(sim, () => ids.every((id) => stat(sim, id, 'windowFrames') === 0
    && stat(sim, id, 'queuedMessages') === 0), maxMs);
}

export function sends(log: NodeLog, from = 0): SendEvent[] {
  return log.events.filter((e): e is SendEvent => e.type === 'send' && e.t >= from);
}

export function delivers(log: NodeLog): DeliverEvent[] {
  return log.events.filter((e): e is DeliverEvent => e.type === 'deliver');
}

/** The counter part of a simulator message id `node.incarnation.counter`. */
export function counterOf(id: string): number {
  return Number(id.split('.')[2]);
}

/**
 * Every message sent from time `from` on is delivered exactly once at every node, each
 * sender's messages in the order sent, with the payload that was sent. Returns how many.
 */
export function expectExactlyOnceFifo(logs: NodeLog[], from: number): number {
  const problems = exactlyOnceFifoProblems(logs, from);
  expect(problems.slice(0, 10)).toEqual([]);
  let n = 0;
  for (const log of logs) n += sends(log, from).length;
  return n;
}

/** The same check; a node that crashed or restarted is judged on its last process only. */
export function exactlyOnceFifoProblems(logs: NodeLog[], from: number): string[] {
  const sent = new Map<string, SendEvent>();
  for (const log of logs) for (const s of sends(log, from)) sent.set(s.id, s);
  const problems: string[] = [];
  for (const whole of logs) {
    const cut = whole.events.findLastIndex((e) => e.type === 'crash' || e.type === 'restart');
    const log = { node: whole.node, events: whole.events.slice(cut + 1) };
    const got = new Map<string, number>();
    const lastBySender = new Map<number, number>();
    for (const d of delivers(log)) {
      got.set(d.id, (got.get(d.id) ?? 0) + 1);
      const s = sent.get(d.id);
      if (!s) continue;
      if (d.payloadHash !== s.payloadHash || d.sender !== s.node) problems.push(`n${log.node}: ${d.id} altered`);
      const c = counterOf(d.id);
      if (c <= (lastBySender.get(d.sender) ?? -1)) problems.push(`n${log.node}: ${d.id} out of FIFO order`);
      lastBySender.set(d.sender, c);
    }
    for (const id of sent.keys()) if (got.get(id) !== 1) problems.push(`n${log.node}: ${id} delivered ${got.get(id) ?? 0} times`);
    for (const [id, k] of got) if (k !== 1) problems.push(`n${log.node}: ${id} delivered ${k} times`);
  }
  return problems;
}

/** Configuration events after time t. */
export function confsAfter(logs: NodeLog[], t: number): number {
  return logs.reduce((n, l) => n + l.events.filter((e) => e.type === 'conf' && e.t > t).length, 0);
}

/**
 * The logs as an EVS application would judge them. cman's configurations are each node's own
 * (ring id rep = the node itself), so no two nodes ever share one and the checker could never
 * compare them; here a configuration is named by its member set and how many times this node
 * installed that set (rep = bitmask of members, seq = occurrence), so nodes with the same view
 * history share names. And cman delivers 'agreed' requests as 'fifo': deliveries are relabelled
 * with the order the sender asked for, so the checker judges agreed order on what asked for it.
 */
export function asViews(logs: NodeLog[]): NodeLog[] {
  return logs.map((log) => {
    const seen = new Map<number, number>();
    const asked = new Map<string, SendEvent['order']>();
    for (const l of logs) for (const s of sends(l)) asked.set(s.id, s.order);
    const events = log.events.map((e) => {
      if (e.type === 'conf') {
        const rep = e.members.reduce((m, n) => m | (1 << n), 0);
        const seq = (seen.get(rep) ?? 0) + 1;
        seen.set(rep, seq);
        return { ...e, ringId: { rep, seq } };
      }
      if (e.type === 'deliver') return { ...e, order: asked.get(e.id) ?? e.order };
      return e;
    });
    return { node: log.node, events };
  });
}
