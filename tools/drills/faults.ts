// The fault drills over real daemons: while client processes stream messages in one group, a
// fault hits a node (kill -9; SIGSTOP past the token timeout then SIGCONT; restart of a killed
// daemon; a cut link, loss or delay inside network namespaces); when the cluster has settled,
// every client sends a fence, and the checker (sim/group-checker.ts, shared with the whole-node simulator) reads every client's log.
// Waits are on conditions, each with a generous bound: a bound that runs out is reported as a
// problem of the drill (the condition never came), never as a verdict from timing.
import type { ChildProcess } from 'node:child_process';
import type { Order } from '../../core/api/types.ts';
import { ClientProcess, memberKey, type StreamClient } from './clients.ts';
import type { DrillMember } from '../../sim/group-checker.ts';
import { checkFaultLogs, type FaultReport } from '../../sim/group-checker.ts';

/** What a drill needs of a cluster (tools/local-cluster.ts LocalCluster, or its netns variant). */
export interface DrillCluster {
  readonly nodes: readonly { readonly id: number; readonly socket: string; proc?: ChildProcess }[];
  startNode(id: number): void;
  kill(id: number, signal: NodeJS.Signals): Promise<void>;
  waitRing(ids: number[], ms?: number): Promise<void>;
  logTail(id: number): string;
}

export interface DrillSettings {
  readonly driver: string;
  /** Send order: agreed where the driver has a total order, else fifo. */
  readonly order: Order;
  readonly totalOrder: boolean;
  readonly virtualSynchrony: boolean;
  /** Sockets per client process. */
  readonly clientsPerNode: number;
  /** Client processes per node (default 1). */
  readonly processesPerNode?: number;
  /** Pause between one client's sends. */
  readonly intervalMs: number;
  /** Own messages each client must see delivered before the fault and after the cluster settles. */
  readonly messagesBefore: number;
  readonly messagesAfter: number;
  /** Bound on each wait (ring changes, deliveries). */
  readonly waitMs: number;
  /** Bound on the wait for the survivors' group views to agree at the end (default waitMs). */
  readonly settleMs?: number;
  readonly progress?: (line: string) => void;
}

export interface DrillResult {
  readonly drill: string;
  readonly report: FaultReport;
  /** Conditions that never came within their bound, and other faults the checker cannot see. */
  readonly problems: readonly string[];
  /** What was measured outside the logs (e.g. packets a qdisc dropped). */
  readonly facts: readonly string[];
  readonly verdict: 'pass' | 'fail';
}

/** One drill: its clients, and what it has seen go wrong outside the checker. */
export class Phase {
  readonly clients: StreamClient[] = [];
  readonly processes: ClientProcess[] = [];
  readonly problems: string[] = [];
  readonly facts: string[] = [];
  private next = 0;

  constructor(readonly name: string, readonly cluster: DrillCluster, readonly s: DrillSettings) {}

  say(line: string): void { this.s.progress?.(`[${this.name}] ${line}`); }

  survivors(): StreamClient[] { return this.clients.filter((c) => c.survivor); }

  /** A wait that records a problem instead of throwing: the drill goes on to report. */
  async wait(what: string, check: () => boolean | Promise<boolean>, ms = this.s.waitMs): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) { this.problems.push(`timed out (${ms} ms) waiting for ${what}`); this.say(`TIMEOUT: ${what}`); return false; }
      await new Promise((r) => setTimeout(r, 25));
    }
    return true;
  }

  async ring(ids: number[]): Promise<boolean> {
    try {
      await this.cluster.waitRing(ids, this.s.waitMs);
      return true;
    } catch (e) {
      this.problems.push(`ring ${ids.join(',')} never formed: ${(e as Error).message}`);
      return false;
    }
  }

  /** Start a client process on each of `nodes` and wait until every survivor's group lists every survivor. */
  async startClients(nodes: number[]): Promise<StreamClient[]> {
    const fresh: StreamClient[] = [];
    for (const id of nodes) {
      for (let k = 0; k < (this.s.processesPerNode ?? 1); k++) {
        const names = Array.from({ length: this.s.clientsPerNode }, () => `${this.name}-n${id}p${k}s${this.next++}`);
        const proc = new ClientProcess(id, names, {
          socket: this.cluster.nodes.find((n) => n.id === id)!.socket, group: `drill-${this.name}`, order: this.s.order, intervalMs: this.s.intervalMs,
        });
        this.processes.push(proc);
        fresh.push(...proc.clients);
        this.clients.push(...proc.clients);
      }
    }
    await this.wait('the new clients to open', () => fresh.every((c) => c.self !== undefined || !c.owner.running));
    await this.agreed();
    this.say(`${fresh.length} client(s) streaming on node(s) ${nodes.join(', ')}`);
    return fresh;
  }

  /** Every survivor's last regular configuration lists exactly the survivors. */
  agreed(ms = this.s.waitMs): Promise<boolean> {
    return this.wait('every surviving client to see exactly the survivors in the group', () => {
      const want = this.survivors().map((c) => (c.self ? memberKey(c.self) : '?')).sort().join(' ');
      return this.survivors().every((c) => c.lastMembers()?.join(' ') === want);
    }, ms);
  }

  /** Wait until each survivor has delivered `n` more of its own messages than now. */
  async flowing(n: number, clients = this.survivors()): Promise<boolean> {
    const base = new Map(clients.map((c) => [c, c.ownDelivered()]));
    return this.wait(`${n} more messages from each client`, () => clients.every((c) => !c.survivor || c.ownDelivered() >= base.get(c)! + n));
  }

  /** The node's clients die with it: they are no survivors. */
  async nodeLost(id: number): Promise<void> {
    for (const c of this.clients) if (c.nodeId === id) c.survivor = false;
    await Promise.all(this.processes.filter((p) => p.nodeId === id).map((p) => p.kill()));
  }

  /** Stop the streams, wait for every survivor's fence at every survivor, check the logs. */
  async finish(): Promise<DrillResult> {
    await this.agreed(this.s.settleMs);
    await this.flowing(this.s.messagesAfter);
    const survivors = this.survivors();
    for (const p of this.processes) p.command('stop');
    // Where views agree, every survivor waits for every fence; where they do not (a failure the
    // checker reports), only for the fences of the members it lists: it delivers no other's.
    await this.wait('every fence at every survivor that lists its sender', () => survivors.every((c) => {
      const listed = new Set(c.lastMembers() ?? []);
      return survivors.every((f) => !f.self || !listed.has(memberKey(f.self)) || c.hasText(`${f.name}:end`));
    }));
    for (const c of this.clients) {
      for (const f of c.failures()) if (c.survivor) this.problems.push(`${c.name}: ${String(f.code)} ${String(f.message)}`);
    }
    const report = checkFaultLogs(this.clients.map((c) => c.log()), { totalOrder: this.s.totalOrder, virtualSynchrony: this.s.virtualSynchrony });
    await Promise.all(this.processes.map((p) => p.close()));
    const verdict = report.verdict === 'pass' && this.problems.length === 0 ? 'pass' : 'fail';
    return { drill: this.name, report, problems: [...this.problems], facts: [...this.facts], verdict };
  }

  async abort(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.kill()));
  }
}

/** Runs `body` as a drill named `name`; its clients are killed whatever happens. */
export async function drill(name: string, cluster: DrillCluster, s: DrillSettings, body: (p: Phase) => Promise<void>): Promise<DrillResult> {
  const p = new Phase(name, cluster, s);
  try {
    await body(p);
    const r = await p.finish();
    p.say(`${r.verdict}: ${summaryLine(r)}`);
    return r;
  } finally {
    await p.abort();
  }
}

const alive = (cluster: DrillCluster): number[] => cluster.nodes.filter((n) => n.proc && n.proc.exitCode === null && n.proc.signalCode === null).map((n) => n.id);

/** kill -9 of node `victim`'s daemon while every node's clients stream. */
export function killDrill(cluster: DrillCluster, s: DrillSettings, victim: number): Promise<DrillResult> {
  return drill('kill-9', cluster, s, async (p) => {
    const nodes = alive(cluster);
    await p.startClients(nodes);
    await p.flowing(s.messagesBefore);
    p.say(`kill -9 node ${victim}`);
    await cluster.kill(victim, 'SIGKILL');
    await p.nodeLost(victim);
    await p.ring(nodes.filter((n) => n !== victim));
  });
}

/** Restart of the killed daemon `victim`: it rejoins, and its new clients learn the group. */
export function restartDrill(cluster: DrillCluster, s: DrillSettings, victim: number): Promise<DrillResult> {
  return drill('restart', cluster, s, async (p) => {
    if (alive(cluster).includes(victim)) { await cluster.kill(victim, 'SIGKILL'); await p.ring(alive(cluster)); }
    const others = alive(cluster);
    const old = await p.startClients(others);
    await p.flowing(s.messagesBefore);
    p.say(`restart node ${victim}`);
    cluster.startNode(victim);
    await p.ring([...others, victim].sort((a, b) => a - b));
    const fresh = await p.startClients([victim]);
    // It learns the group from the state exchange: its first view already lists the others.
    const oldKeys = old.filter((c) => c.survivor && c.self).map((c) => memberKey(c.self!));
    for (const c of fresh) {
      const first = c.lines.find((l) => l.type === 'membership');
      const listed = new Set(((first?.members ?? []) as { nodeId: number; pid: number; port: number }[]).map(memberKey));
      if (!oldKeys.every((k) => listed.has(k))) p.problems.push(`${c.name}'s first view does not list the existing members: ${JSON.stringify(first)}`);
    }
  });
}

/** SIGSTOP of `victim` until the others have formed a ring without it and moved on, then SIGCONT. */
export function stopDrill(cluster: DrillCluster, s: DrillSettings, victim: number): Promise<DrillResult> {
  return drill('sigstop', cluster, s, async (p) => {
    const nodes = alive(cluster);
    await p.startClients(nodes);
    await p.flowing(s.messagesBefore);
    const proc = cluster.nodes.find((n) => n.id === victim)!.proc!;
    p.say(`SIGSTOP node ${victim}`);
    proc.kill('SIGSTOP');
    try {
      const others = nodes.filter((n) => n !== victim);
      await p.ring(others);
      const watchers = p.survivors().filter((c) => c.nodeId !== victim);
      await p.wait('the others to see the stopped node leave the group', () => watchers.every((c) => !(c.lastMembers() ?? []).some((k) => k.startsWith(`${victim}/`))));
      await p.flowing(s.messagesBefore, watchers);
    } finally {
      p.say(`SIGCONT node ${victim}`);
      proc.kill('SIGCONT');
    }
    await p.ring(nodes);
  });
}

export function summaryLine(r: DrillResult): string {
  const x = r.report;
  return `survivors ${x.survivors.length}, configurations ${x.configurations}, messages ${x.messages} (${x.deliveries} deliveries), `
    + `missing ${x.missing.length}, not everywhere ${x.notEverywhere}, order ${x.orderViolations}, duplicates ${x.duplicates}, fifo ${x.fifoViolations}, `
    + `membership ${x.membershipAgreed ? 'agreed' : 'DISAGREES'}`;
}

/** One pause of a pause drill, as the unfaulted nodes' clients saw it. */
export interface PauseOutcome {
  readonly victim: number;
  readonly ms: number;
  /** Distinct views an unfaulted observer went through from the pause until the ring was whole again. */
  readonly configurations: number;
  /** An unfaulted node's client saw a member of another unfaulted node leave (they were separated). */
  readonly separated: boolean;
  /** Reading clients removed for overrun during the pause and its aftermath. */
  readonly evictions: number;
}

/**
 * The availability drill: under the clients' load, each pause stops one node's daemon
 * (SIGSTOP) for `ms` (past token + consensus: the others form a ring without it) and continues it;
 * then waits for the whole ring. Judged per pause from the clients' own logs: no unfaulted node's
 * client may see another unfaulted node's member leave, and no client that keeps reading may be
 * evicted. The usual checker judges the whole run (virtual synchrony).
 */
export function pauseDrill(cluster: DrillCluster, s: DrillSettings, pauses: readonly { victim: number; ms: number }[], out: PauseOutcome[]): Promise<DrillResult> {
  return drill('pauses', cluster, s, async (p) => {
    const nodes = alive(cluster);
    await p.startClients(nodes);
    await p.flowing(s.messagesBefore);
    for (const { victim, ms } of pauses) {
      const observers = p.survivors().filter((c) => c.nodeId !== victim);
      const marks = new Map(p.clients.map((c) => [c, c.lines.length]));
      const proc = cluster.nodes.find((n) => n.id === victim)!.proc!;
      p.say(`SIGSTOP node ${victim} for ${ms} ms`);
      proc.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, ms));
      proc.kill('SIGCONT');
      await p.ring(nodes);
      await p.agreed();
      await p.flowing(3);
      const after = (c: StreamClient) => c.lines.slice(marks.get(c) ?? 0);
      const views = (c: StreamClient) => after(c).filter((l) => l.type === 'membership');
      const separated = observers.some((c) => views(c).some((l) => ((l.left ?? []) as { member: DrillMember; reason: string }[])
        .some((ch) => ch.member.nodeId !== victim && ch.member.nodeId !== c.nodeId && ch.reason === 'nodedown')));
      const evictions = p.clients.filter((c) => after(c).some((l) => l.type === 'error' && l.code === 'ENOBUFS')).length;
      const configurations = Math.max(0, ...observers.map((c) => new Set(views(c).map((l) => String(l.viewId ?? `${l.kind} ${l.ringId}`))).size));
      out.push({ victim, ms, configurations, separated, evictions });
      p.say(`pause of node ${victim} (${ms} ms): ${configurations} views at an unfaulted observer, unfaulted nodes ${separated ? 'SEPARATED' : 'stayed together'}, ${evictions} evictions`);
      if (separated) p.problems.push(`pausing node ${victim} for ${ms} ms separated unfaulted nodes`);
      if (evictions > 0) p.problems.push(`pausing node ${victim} for ${ms} ms evicted ${evictions} reading client(s)`);
    }
  });
}
