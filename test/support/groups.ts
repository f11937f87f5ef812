// Test helpers for core/groups: recording endpoints and the "same sequence" check.
import { expect } from 'vitest';
import type { NodeConfig } from '../../core/config/types.ts';
import type { Order } from '../../core/driver/types.ts';
import { keepEvent, type EndpointSink, type GroupService, type LocalEndpoint } from '../../core/groups/service.ts';
import type { Member, QuorumState, SocketEvent } from '../../core/api/types.ts';

export const TEST_LIMITS: NodeConfig['limits'] = {
  messageSizeMax: 65536, socketsMax: 64, groupsMax: 8, groupNameMax: 64,
  recvQueueMax: 1024, recvQueueBytesMax: 1 << 20, recvStallMs: 2000, membersMax: 32,
};

export function fmtMember(m: Member): string {
  return `${m.nodeId}/${m.pid}/${m.port}`;
}

function fmtQuorum(q: QuorumState | undefined): string {
  return q ? `${q.quorate ? 'quorate' : 'inquorate'} ${q.votes}/${q.expected}` : 'no-quorum';
}

/** One line per event, deterministic, comparable across endpoints. */
export function fmtEvent(ev: SocketEvent): string {
  switch (ev.type) {
    case 'message':
      return `msg ${ev.group} from ${fmtMember(ev.sender)} ${ev.order} ${new TextDecoder().decode(ev.data)}`;
    case 'membership':
      return `${ev.kind} ${ev.group} ring ${ev.ringId.rep}.${ev.ringId.seq} [${ev.members.map(fmtMember).join(' ')}]`
        + ` +[${ev.joined.map((c) => `${fmtMember(c.member)}:${c.reason}`).join(' ')}]`
        + ` -[${ev.left.map((c) => `${fmtMember(c.member)}:${c.reason}`).join(' ')}]`;
    case 'quorum':
      return `quorum ${ev.group} ring ${ev.ringId.rep}.${ev.ringId.seq} ${fmtQuorum(ev.quorum)}`;
    case 'error':
      return `error ${ev.code}`;
  }
}

/** fmtEvent plus what must also agree at every member: a membership event's view id and quorum. */
export function fmtEventFull(ev: SocketEvent): string {
  if (ev.type !== 'membership') return fmtEvent(ev);
  const v = ev.viewId;
  return `${fmtEvent(ev)} view ${v ? `${v.ringId.rep}.${v.ringId.seq}/${v.seq}` : '-'} ${fmtQuorum(ev.quorum)}`;
}

/** Where an event happened, identically on every node: the driver upcall that caused it and
 *  the ring the node was in. */
export interface EventContext { stamp(): string; ring(): string }

export interface Recorded { readonly line: string; readonly id: string; readonly ring: string; readonly group: string }

/** A sink that records events; with `capacity`, it refuses events past that many (overrun). */
export class Recorder implements EndpointSink {
  readonly log: string[] = [];
  readonly events: SocketEvent[] = [];
  readonly entries: Recorded[] = [];
  overruns = 0;
  private offeredAt = 0;
  private readonly seen = new Map<string, number>();
  constructor(private readonly capacity = Infinity, private readonly ctx?: EventContext) {}
  event(ev: SocketEvent): boolean {
    if (this.events.length >= this.capacity) return false;
    const line = fmtEventFull(ev);
    this.events.push(keepEvent(ev));
    this.log.push(fmtEvent(ev));
    const base = `${this.ctx?.stamp() ?? ''} ${line}`;
    const k = (this.seen.get(base) ?? 0) + 1;
    this.seen.set(base, k);
    this.entries.push({ line, id: `${base} #${k}`, ring: this.ctx?.ring() ?? '', group: ev.type === 'error' ? '' : ev.group });
    return true;
  }
  /** Takes every other message it is offered this way (recorded as event() would); the others
   *  it asks as events (undefined), so that both ways are driven. */
  messageAt(group: string, sender: Member, order: Order, from: Uint8Array, start: number, end: number): boolean | undefined {
    if (this.offeredAt++ % 2 === 1) return undefined;
    return this.event({ type: 'message', group, sender, order, data: from.subarray(start, end) });
  }
  overrun(): void { this.overruns++; }
}

export interface TestSocket { readonly node: number; readonly ep: LocalEndpoint; readonly rec: Recorder; readonly svc: GroupService }

interface Segment { readonly who: string; readonly ring: string; readonly entries: Recorded[] }

/** Cuts an endpoint's events of one group where it (re)joins or its node changes ring. */
function segments(s: TestSocket, group: string): Segment[] {
  const who = fmtMember(s.ep.member);
  const out: Segment[] = [];
  let cur: Segment | undefined;
  s.rec.entries.forEach((e, i) => {
    if (e.group !== group) return;
    const ev = s.rec.events[i];
    const selfJoin = ev.type === 'membership' && ev.joined.some((c) => fmtMember(c.member) === who);
    if (!cur || cur.ring !== e.ring || selfJoin) { cur = { who, ring: e.ring, entries: [] }; out.push(cur); }
    cur.entries.push(e);
  });
  return out;
}

/**
 * Every pair of endpoints of a group saw the same sequence where their lives overlap: within one
 * ring and one membership of each, the events between the first and the last event both
 * received are identical in both logs (events are identified by the driver upcall that caused
 * them, so equal-looking events at different times are not confused).
 */
export function expectSameSequences(sockets: readonly TestSocket[], group: string): number {
  const segs = sockets.flatMap((s) => segments(s, group));
  let compared = 0;
  for (const a of segs) {
    for (const b of segs) {
      if (a === b || a.who === b.who || a.ring !== b.ring) continue;
      const inB = new Set(b.entries.map((e) => e.id));
      const common = a.entries.filter((e) => inB.has(e.id));
      if (common.length === 0) continue;
      const slice = (s: Segment): string[] => {
        const ids = s.entries.map((e) => e.id);
        return ids.slice(ids.indexOf(common[0].id), ids.indexOf(common[common.length - 1].id) + 1);
      };
      expect(slice(b), `${b.who} vs ${a.who} in ${group} ring ${a.ring}`).toEqual(slice(a));
      compared += common.length;
    }
  }
  return compared;
}
