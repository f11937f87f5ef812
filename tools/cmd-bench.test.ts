// Proves `afcluster bench` refuses bad arguments and unknown drivers before it starts any process.
import { describe, expect, it } from 'vitest';
import { UsageError } from './command.ts';
import { command, siblingSvgPath } from './cmd-bench.ts';

describe('afcluster bench', () => {
  it('is a usage error to ask for one node or a bad size', async () => {
    await expect(command.run(['--nodes', '1'])).rejects.toBeInstanceOf(UsageError);
    await expect(command.run(['--sizes', '100,x'])).rejects.toBeInstanceOf(UsageError);
  });
  it('names the registered drivers when asked for an unknown one', async () => {
    await expect(command.run(['--drivers', 'nosuch', '--no-ceiling'])).rejects.toThrow(/no driver named "nosuch"; registered: .*cman.*totem/);
  });
  it('says in its help what the corosync reference needs and does', () => {
    expect(command.help).toMatch(/--reference corosync/);
    expect(command.help).toMatch(/root, corosync and libcpg-dev/);
    expect(command.help).toMatch(/skipped/);
  });
  it('is a usage error to ask for an unknown reference', async () => {
    await expect(command.run(['--reference', 'nosuch'])).rejects.toBeInstanceOf(UsageError);
  });
  it('writes the scaling charts beside the main one', () => {
    expect(siblingSvgPath('out/x.svg', 'scaling')).toBe('out/x-scaling.svg');
    expect(siblingSvgPath('x', 'sim')).toBe('x-sim.svg');
  });
  it('documents every flag in its help', () => {
    for (const flag of ['--drivers', '--nodes', '--sizes', '--seconds', '--crypto', '--accelerated', '--json', '--svg', '--latency', '--scaling', '--profile', '--set', '--reference']) {
      expect(command.help).toContain(flag);
    }
  });
});
