// Proves that inside network namespaces the test makes itself (10.213.7.0/24 exists only there), totem daemons come through a pulled cable, tbf shaping and, where the kernel has sch_netem, netem loss and delay with the survivors agreed and nothing missing; where namespaces or netem cannot be made, the test is skipped saying why.
import { describe, expect, it } from 'vitest';
import { summaryLine } from '../../tools/drills/faults.ts';
import { namespaceSupport, netemSupport } from '../../tools/drills/netns.ts';
import { runNetnsDrills, type NetnsRun } from '../../tools/drills/netns-drills.ts';
import { drillSettings } from '../../tools/drills/profiles.ts';

const ns = namespaceSupport();
const netem = ns.ok ? netemSupport() : ns;

describe('fault drills inside network namespaces (totem)', () => {
  let run: NetnsRun | undefined;

  it('cable pulled and plugged back, tbf shaping (and netem where available): survivors agree, nothing missing', async (ctx) => {
    if (!ns.ok) {
      console.log(`SKIPPED namespace drills: ${ns.reason}`);
      ctx.skip(ns.reason);
    }
    run = await runNetnsDrills({
      driver: 'totem', nodes: 3, port: 5405, tag: `t${process.pid % 100_000}`, settings: drillSettings('totem', { progress: (l) => console.log(l) }),
    });
    expect(run.results.map((r) => r.drill)).toEqual(['netns-cable', ...(netem.ok ? ['netem-loss', 'netem-delay'] : []), 'tbf-shaping']);
    for (const r of run.results) {
      console.log(`${r.drill}: ${r.verdict}: ${summaryLine(r)} ${r.facts.join('; ')}`);
      expect(r.problems, r.drill).toEqual([]);
      expect(r.report.problems, r.drill).toEqual([]);
      expect(r.report.membershipAgreed, r.drill).toBe(true);
      expect(r.report.missing, r.drill).toEqual([]);
      expect(r.report.messages, r.drill).toBeGreaterThan(0);
      expect(r.verdict, r.drill).toBe('pass');
    }
    for (const s of run.skipped) console.log(`SKIPPED ${s.drill}: ${s.reason}`);
  }, 240_000);

  it('netem loss and delay ran and passed', (ctx) => {
    if (!netem.ok) {
      console.log(`SKIPPED netem drills: ${netem.reason}`);
      ctx.skip(netem.reason);
    }
    expect(run?.results.filter((r) => r.drill.startsWith('netem-') && r.verdict === 'pass')).toHaveLength(2);
  });
});
