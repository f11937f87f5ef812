// Proves that over real totem daemons on loopback, kill -9, restart and SIGSTOP past the token timeout then SIGCONT leave the surviving clients agreed on membership, with no message delivered at one survivor missing at another of the same configurations, one total order, and no duplicate.
import { describe, expect, it } from 'vitest';
import { testPort } from '../integration/bridge-helpers.ts';
import { summaryLine } from '../../tools/drills/faults.ts';
import { runLoopbackDrills } from '../../tools/drills/loopback.ts';
import { drillSettings } from '../../tools/drills/profiles.ts';

describe('fault drills over real totem daemons (127.0.0.1..3)', () => {
  it('kill -9, restart, SIGSTOP/SIGCONT: survivors agree, nothing missing', async () => {
    const settings = drillSettings('totem', { clientsPerNode: 2, progress: (l) => console.log(l) });
    const results = await runLoopbackDrills({ driver: 'totem', nodes: 3, basePort: testPort(54000), settings });
    expect(results.map((r) => r.drill)).toEqual(['kill-9', 'restart', 'sigstop']);
    for (const r of results) {
      console.log(`${r.drill}: ${r.verdict}: ${summaryLine(r)}`);
      expect(r.problems, r.drill).toEqual([]);
      expect(r.report.problems, r.drill).toEqual([]);
      expect(r.report.membershipAgreed, r.drill).toBe(true);
      expect(r.report.missing, r.drill).toEqual([]);
      expect(r.report.orderViolations + r.report.duplicates + r.report.fifoViolations, r.drill).toBe(0);
      expect(r.report.messages, r.drill).toBeGreaterThan(0);
      expect(r.verdict, r.drill).toBe('pass');
    }
    // kill -9 leaves the clients of two nodes; restart and sigstop end with all three nodes' clients.
    expect(results.map((r) => r.report.survivors.length)).toEqual([4, 6, 6]);
  }, 240_000);
});
