// Proves the group checker catches what it must (a missing message, disagreeing final membership, order, duplicates, views named alike that differ) on hand-made logs, and passes a clean failure.
import { describe, expect, it } from 'vitest';
import { checkFaultLogs, type ClientLog, type DrillMember, type DrillRecord } from '../../sim/group-checker.ts';

const m = (nodeId: number): DrillMember => ({ nodeId, pid: 100 + nodeId, port: 1 });
const conf = (kind: 'regular' | 'transitional', ring: string, ...nodes: number[]): DrillRecord => ({ type: 'membership', kind, ringId: ring, members: nodes.map(m) });
const msg = (from: number, seq: number | 'end'): DrillRecord => ({ type: 'message', sender: m(from), text: `c${from}:${seq}` });
const log = (node: number, survivor: boolean, records: DrillRecord[]): ClientLog => ({ name: `c${node}`, self: m(node), survivor, records });
const TOTEM = { totalOrder: true, virtualSynchrony: true };
const CMAN = { totalOrder: false, virtualSynchrony: false };

/** Node 3 dies after c1:0 and c2:0; survivors 1 and 2 pass together to ring 1.8. */
function killDrill(survivorRecords: (node: number) => DrillRecord[] = () => []): ClientLog[] {
  const base = (node: number): DrillRecord[] => [
    conf('regular', '1.4', 1, 2, 3), msg(1, 0), msg(2, 0), msg(3, 0),
    conf('transitional', '1.8', 1, 2), msg(3, 1),
    conf('regular', '1.8', 1, 2), msg(1, 1), msg(2, 1), msg(1, 'end'), msg(2, 'end'),
    ...survivorRecords(node),
  ];
  return [log(1, true, base(1)), log(2, true, base(2)), log(3, false, [conf('regular', '1.4', 1, 2, 3), msg(1, 0)])];
}

describe('fault checker', () => {
  it('passes a clean kill: survivors agree, nothing missing (the dead client is not compared)', () => {
    const r = checkFaultLogs(killDrill(), TOTEM);
    expect(r.problems).toEqual([]);
    expect(r.verdict).toBe('pass');
    expect(r.survivors).toEqual(['c1', 'c2']);
    expect(r.membershipAgreed).toBe(true);
    expect(r.messages).toBe(8);
    expect(r.deliveries).toBe(16);
    expect(r.configurations).toBe(3);
    expect(r.notEverywhere).toBe(0);
  });

  it('does not count what was said before a survivor joined as missing there', () => {
    const c1 = log(1, true, [conf('regular', '1.4', 1), msg(1, 0), conf('regular', '1.4', 1, 2), msg(1, 1)]);
    const c2 = log(2, true, [conf('regular', '1.4', 1, 2), msg(1, 1)]);
    const r = checkFaultLogs([c1, c2], TOTEM);
    expect(r.missing).toEqual([]);
    expect(r.notEverywhere).toBe(0);
    expect(r.verdict).toBe('pass');
  });

  it('catches a message delivered at one survivor and missing at another of the same configurations', () => {
    const logs = killDrill();
    const c2 = logs[1].records.filter((x) => !(x.type === 'message' && x.text === 'c3:1'));
    const r = checkFaultLogs([logs[0], { ...logs[1], records: c2 }, logs[2]], TOTEM);
    expect(r.verdict).toBe('fail');
    expect(r.missing).toEqual([{ text: 'c3:1', deliveredAt: 'c1', missingAt: 'c2', configuration: 'transitional 1.8 [1/101/1 2/102/1] #0' }]);
    expect(r.notEverywhere).toBe(1);
  });

  it('under a driver without virtual synchrony, measures the same missing message without failing on it', () => {
    const logs = killDrill();
    const c2 = logs[1].records.filter((x) => !(x.type === 'message' && x.text === 'c1:0'));
    const r = checkFaultLogs([logs[0], { ...logs[1], records: c2 }], CMAN);
    expect(r.missing).toHaveLength(1);
    expect(r.verdict).toBe('pass');
  });

  it('does not require what EVS does not: survivors that left a configuration for different ones', () => {
    // Node 2 was cut off (SIGSTOP): it went to a ring of its own, so it may lack c1:1.
    const c1 = log(1, true, [conf('regular', '1.4', 1, 2), msg(1, 0), msg(1, 1), conf('transitional', '1.8', 1), conf('regular', '1.8', 1),
      conf('regular', '1.12', 1, 2), msg(1, 2)]);
    const c2 = log(2, true, [conf('regular', '1.4', 1, 2), msg(1, 0), conf('transitional', '2.8', 2), conf('regular', '2.8', 2),
      conf('regular', '1.12', 1, 2), msg(1, 2)]);
    const r = checkFaultLogs([c1, c2], TOTEM);
    expect(r.missing).toEqual([]);
    expect(r.notEverywhere).toBe(1);
    expect(r.verdict).toBe('pass');
  });

  it('catches survivors that end in different configurations, or one that omits a survivor', () => {
    const logs = killDrill((node) => (node === 1 ? [conf('regular', '1.12', 1)] : []));
    const r = checkFaultLogs(logs, TOTEM);
    expect(r.membershipAgreed).toBe(false);
    expect(r.verdict).toBe('fail');
    expect(r.problems.join('\n')).toMatch(/c1 ends with members \[1\/101\/1\]/);
  });

  it('catches a different order of common messages under total order, a duplicate and a FIFO inversion', () => {
    const logs = killDrill();
    const swapped = logs[1].records.map((x) => (x.type === 'message' && x.text === 'c1:0' ? msg(2, 0) : x.type === 'message' && x.text === 'c2:0' ? msg(1, 0) : x));
    expect(checkFaultLogs([logs[0], { ...logs[1], records: swapped }], TOTEM).orderViolations).toBe(1);
    const dup = checkFaultLogs([logs[0], { ...logs[1], records: [...logs[1].records, msg(1, 1)] }], TOTEM);
    expect(dup.duplicates).toBe(1);
    expect(dup.verdict).toBe('fail');
    const inverted = checkFaultLogs([log(1, true, [conf('regular', '1.4', 1), msg(1, 1), msg(1, 0)])], CMAN);
    expect(inverted.fifoViolations).toBe(1);
    expect(inverted.verdict).toBe('fail');
  });

  it('views by id: the same id with other members, or other messages up to the same next view, are violations, over every client', () => {
    const v = (id: string, ...nodes: number[]): DrillRecord => ({ type: 'membership', kind: 'regular', ringId: id.split('/')[0], members: nodes.map(m), viewId: id });
    const good = [
      log(1, true, [v('1.4/1', 1, 2, 3), msg(1, 0), msg(2, 0), v('1.4/2', 1, 2), msg(1, 'end'), msg(2, 'end')]),
      log(2, true, [v('1.4/1', 1, 2, 3), msg(1, 0), msg(2, 0), v('1.4/2', 1, 2), msg(1, 'end'), msg(2, 'end')]),
      log(3, false, [v('1.4/1', 1, 2, 3), msg(1, 0)]), // left (dead) before the next view: not compared on messages
    ];
    expect(checkFaultLogs(good, TOTEM).viewViolations).toBe(0);
    const members = [good[0], log(2, true, [v('1.4/1', 1, 2), msg(1, 0), msg(2, 0), v('1.4/2', 1, 2), msg(1, 'end'), msg(2, 'end')])];
    expect(checkFaultLogs(members, TOTEM).problems.join()).toMatch(/view 1\.4\/1: c1 got regular \[1\/101\/1 2\/102\/1 3\/103\/1\], c2 got regular \[1\/101\/1 2\/102\/1\]/);
    const dead = [good[0], log(3, false, [v('1.4/1', 1, 2, 3), msg(2, 0), msg(1, 0), v('1.4/2', 1, 2)])]; // a dead client is still judged per view
    expect(checkFaultLogs(dead, TOTEM).viewViolations).toBe(1);
  });
});
