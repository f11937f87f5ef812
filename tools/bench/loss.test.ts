// Proves --loss parsing, the iptables rule it builds (the cluster's port only, loopback INPUT, marked), removal once and at most once, and the refusals that say what to do.
import { describe, expect, test } from 'vitest';
import { UsageError } from '../command.ts';
import { checkLossPossible, lossRuleArgs, LossRule, parseLoss, RULE_COMMENT } from './loss.ts';
import { parseBenchArgs } from './options.ts';

describe('--loss', () => {
  test('percentages into ascending probabilities', () => {
    expect(parseLoss('20,0,5')).toEqual([0, 0.05, 0.2]);
    expect(parseLoss('0.5')).toEqual([0.005]);
    expect(parseBenchArgs(['--loss', '5']).loss).toEqual([0.05]);
    expect(parseBenchArgs([]).loss).toBeUndefined();
  });

  test('refuses what is not a rate', () => {
    for (const bad of ['', '5,', 'x', '-1', '100', '5,5']) expect(() => parseLoss(bad), bad).toThrow(UsageError);
  });

  test('the rule: loopback INPUT, UDP to the cluster port, random drop, marked', () => {
    const args = lossRuleArgs('-I', 40123, 0.05);
    expect(args.join(' ')).toBe(`-w -I INPUT -i lo -p udp --dport 40123 -m statistic --mode random --probability 0.050000 -m comment --comment ${RULE_COMMENT} -j DROP`);
    expect(lossRuleArgs('-D', 40123, 0.05).slice(2)).toEqual(args.slice(2));
    expect(() => lossRuleArgs('-I', 40123, 0)).toThrow(RangeError);
    expect(() => lossRuleArgs('-I', 0, 0.1)).toThrow(RangeError);
  });

  test('installed once, removed once; nothing at 0%', () => {
    const calls: string[] = [];
    const run = (a: readonly string[]) => { calls.push(a[1]); };
    expect(LossRule.install(40123, 0, run)).toBeUndefined();
    const rule = LossRule.install(40123, 0.2, run);
    rule?.remove();
    rule?.remove();
    expect(calls).toEqual(['-I', '-D']);
  });

  test('not root, or no iptables: a refusal that says what to do', () => {
    const ok = () => {};
    expect(() => checkLossPossible(ok, 1000)).toThrow(/root/);
    const missing = () => { throw Object.assign(new Error('spawn iptables ENOENT'), { code: 'ENOENT' }); };
    expect(() => checkLossPossible(missing, 0)).toThrow(/install iptables/);
    const denied = () => { throw new Error('iptables: Permission denied'); };
    expect(() => checkLossPossible(denied, 0)).toThrow(/CAP_NET_ADMIN/);
    expect(() => checkLossPossible(ok, 0)).not.toThrow();
  });
});
