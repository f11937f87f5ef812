// Proves that over real cman daemons on loopback, kill -9, restart and SIGSTOP/SIGCONT past the dead time each leave the surviving clients agreed on membership, and that each sender's messages arrive in order and never twice; messages missing between survivors of the same configurations are measured and printed (cman does not claim failure atomicity).
import { describe, expect, it } from 'vitest';
import { testPort } from '../integration/bridge-helpers.ts';
import { summaryLine } from '../../tools/drills/faults.ts';
import { runLoopbackDrills } from '../../tools/drills/loopback.ts';
import { drillSettings } from '../../tools/drills/profiles.ts';

// SIGSTOP past the dead time used to be printed, not asserted: on SIGCONT the stopped node could
// hear the others before its own silence timer fired, never change configuration, never
// re-send its group report, and the others (who removed its members as nodedown) lacked its
// clients for good. cman heartbeats now carry whom the sender counts, so the stopped node
// reports them leaving and rejoining (test/cman/cman.rejoin.test.ts), and it is asserted.
const MEMBERSHIP_ASSERTED = new Set(['kill-9', 'restart', 'sigstop']);

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
