// What one drill worker records: every output of its lock table (in delivery order) and its
// own holds with times from a clock all observers share. Bounded: past recordsMax it stops
// recording and says so (the checker then sees a shorter span, never a wrong one).
import type { LockGrant, TableOutput } from '../../services/lock/lock.ts';
import { memberKey } from '../../services/lock/lock.ts';
import type { Member } from '../../core/api/types.ts';
import type { DecisionRecord, HoldRecord, ObserverRecord } from './checker.ts';

export class DrillRecorder {
  private readonly decisions: DecisionRecord[] = [];
  private readonly holds: HoldRecord[] = [];
  private readonly open = new Map<number, { g: LockGrant; fromUs: number }>();
  /** True once recordsMax was reached. */
  truncated = false;

  constructor(
    private readonly who: { observer: string; nodeId: number; self: Member },
    private readonly nowUs: () => number,
    private readonly recordsMax = 2_000_000,
  ) {}

  /** Pass as LockClientOptions.onOutput. */
  readonly onOutput = (out: TableOutput): void => {
    if (out.type === 'send' || out.type === 'synced' || out.type === 'failed' || out.type === 'fence') return;
    if (this.full()) return;
    this.decisions.push({ type: out.type, name: out.name, owner: memberKey(out.owner), requestId: out.requestId, mode: out.mode });
  };

  /** Call as soon as lock() or trylock() resolved with a grant. */
  held(g: LockGrant): void {
    this.open.set(g.requestId, { g, fromUs: this.nowUs() });
  }

  /** Call before sending the unlock: from here on this worker no longer relies on the lock. */
  letGo(g: LockGrant): void {
    const o = this.open.get(g.requestId);
    this.open.delete(g.requestId);
    if (o === undefined || this.full()) return;
    this.holds.push({ name: g.name, mode: g.mode, requestId: g.requestId, fromUs: o.fromUs, toUs: this.nowUs() });
  }

  record(): ObserverRecord {
    const now = this.nowUs();
    const holds = [...this.holds];
    for (const { g, fromUs } of this.open.values()) holds.push({ name: g.name, mode: g.mode, requestId: g.requestId, fromUs, toUs: now });
    return { observer: this.who.observer, nodeId: this.who.nodeId, self: memberKey(this.who.self), decisions: [...this.decisions], holds };
  }

  private full(): boolean {
    if (this.decisions.length + this.holds.length < this.recordsMax) return false;
    this.truncated = true;
    return true;
  }
}
