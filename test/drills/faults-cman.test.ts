// Proves that over real cman daemons on loopback, kill -9 and restart leave the surviving clients agreed on membership, and that through kill -9, restart and SIGSTOP/SIGCONT each sender's messages arrive in order and never twice; messages missing between survivors of the same configurations are measured and printed (cman does not claim failure atomicity), and so is the membership outcome of SIGSTOP (see KNOWN below).
import { describe, expect, it } from 'vitest';
import { testPort } from '../integration/bridge-helpers.ts';
import { summaryLine } from '../../tools/drills/faults.ts';
import { runLoopbackDrills } from '../../tools/drills/loopback.ts';
import { drillSettings } from '../../tools/drills/profiles.ts';

// KNOWN (cman + core/groups): a node stopped for about the dead time may, on SIGCONT, hear the
// others before its own silence timer fires; it then never changes configuration, never sends a
// group report, and the others, who took its members out (nodedown) when it went silent, never
// learn them again: their views lack its clients for good (their groups.dataNotMember counter
// climbs with its dropped messages). Measured here in 2 of 8 SIGSTOP rounds and 2 of 9 full drill
// runs. Until cman tells a returning node it was declared down, SIGSTOP's membership agreement is
// printed, not asserted, under cman.
const MEMBERSHIP_ASSERTED = new Set(['kill-9', 'restart']);

describe('fault drills over real cman daemons (127.0.0.1..3)', () => {
  it('kill -9, restart, SIGSTOP/SIGCONT: survivors agree on membership; missing messages measured', async () => {
    const settings = drillSettings('cman', { progress: (l) => console.log(l) });
    const results = await runLoopbackDrills({ driver: 'cman', nodes: 3, basePort: testPort(56000), settings });
    expect(results.map((r) => r.drill)).toEqual(['kill-9', 'restart', 'sigstop']);
    for (const r of results) {
      console.log(`${r.drill}: ${r.verdict}: ${summaryLine(r)} (missing is measured, not asserted, under cman)`);
      expect(r.report.duplicates + r.report.fifoViolations, r.drill).toBe(0);
      expect(r.report.messages, r.drill).toBeGreaterThan(0);
      if (!MEMBERSHIP_ASSERTED.has(r.drill)) continue;
      expect(r.problems, r.drill).toEqual([]);
      expect(r.report.membershipAgreed, r.drill).toBe(true);
      expect(r.verdict, r.drill).toBe('pass');
    }
    expect(results.map((r) => r.report.survivors.length)).toEqual([2, 3, 3]);
  }, 240_000);
});
