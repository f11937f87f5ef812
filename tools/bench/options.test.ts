// Proves `afcluster bench` argument parsing: defaults, list parsing, and usage errors for bad values.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../command.ts';
import { DEFAULT_SIZES, parseBenchArgs } from './options.ts';
import { ceilingDatagramBytes } from './run.ts';

describe('parseBenchArgs', () => {
  it('defaults to totem and cman, 3 nodes, 3 seconds, the evsbench sizes, crypto off, accelerated off', () => {
    const o = parseBenchArgs([]);
    expect(o.drivers).toEqual(['totem', 'cman']);
    expect(o.nodes).toBe(3);
    expect(o.seconds).toBe(3);
    expect(o.sizes).toEqual(DEFAULT_SIZES);
    expect(o.sizes[0]).toBe(100);
    expect(o.sizes[o.sizes.length - 1]).toBe(65536);
    expect(o.crypto).toEqual(['off']);
    expect(o.accelerated).toEqual(['off']);
    expect(o.driverSections).toEqual({});
    expect(o.scaleSize).toBe(1300);
    expect(o.latency).toBe(false);
    expect(o.latencyWarmup).toBe(3);
    expect(o.scaling).toBe(false);
    expect(o.ceiling).toBe(true);
    expect(o.reference).toBeUndefined();
  });

  it('parses every flag', () => {
    const o = parseBenchArgs(['--drivers', 'cman', '--nodes', '5', '--sizes', '1300,100', '--seconds', '0.5',
      '--crypto', 'on,off', '--accelerated', 'off', '--latency', '--scaling', '--scale-nodes', '4,2,2',
      '--json', 'out.json', '--svg', 'out.svg', '--no-ceiling', '--latency-warmup', '0.3']);
    expect(o).toMatchObject({
      drivers: ['cman'], nodes: 5, sizes: [100, 1300], seconds: 0.5, crypto: ['on', 'off'],
      accelerated: ['off'], latency: true, scaling: true, scaleNodes: [2, 4], json: 'out.json', svg: 'out.svg', ceiling: false, latencyWarmup: 0.3,
    });
  });

  it.each([
    [['--nodes', '1']],
    [['--nodes', '2.5']],
    [['--nodes', '33']],
    [['--sizes', '100,,200']],
    [['--sizes', '0']],
    [['--sizes', '100,100']],
    [['--sizes', 'big']],
    [['--seconds', '0']],
    [['--seconds', 'x']],
    [['--latency-warmup', '-1']],
    [['--latency-warmup', '']],
    [['--latency-warmup', 'soon']],
    [['--crypto', 'yes']],
    [['--accelerated', 'on,on']],
    [['--drivers', 'Totem']],
    [['--drivers', 'totem,totem']],
    [['--bogus']],
    [['positional']],
    [['--sizes', '4']],
    [['--set', 'totem.window_size']],
    [['--set', 'Totem.x=1']],
    [['--reference', 'pacemaker']],
    [['--reference']],
  ])('rejects %j with a usage error', (argv) => {
    expect(() => parseBenchArgs(argv)).toThrow(UsageError);
  });

  it('collects --set items into driver sections with typed values', () => {
    const o = parseBenchArgs(['--set', 'totem.window_size=100,totem.hold_ms=0', '--set', 'cman.name=x', '--set', 'totem.flag=true']);
    expect(o.driverSections).toEqual({ totem: { window_size: 100, hold_ms: 0, flag: true }, cman: { name: 'x' } });
  });

  it('takes --rounds, a whole number of windows per row, without --loss', () => {
    expect(parseBenchArgs([]).rounds).toBe(1);
    expect(parseBenchArgs(['--rounds', '3']).rounds).toBe(3);
    expect(parseBenchArgs(['--reference', 'corosync', '--latency', '--rounds', '20']).rounds).toBe(20);
    for (const bad of ['0', '1.5', '21', 'x', '']) {
      expect(() => parseBenchArgs(['--rounds', bad])).toThrow(/--rounds .*: expected a whole number from 1 to 20/);
    }
    expect(() => parseBenchArgs(['--loss', '0.01', '--rounds', '2'])).toThrow(/without --loss/);
  });

  it('takes --latency-paced in whole milliseconds where latency rows are measured', () => {
    expect(parseBenchArgs(['--latency']).latencyPaced).toBeUndefined();
    expect(parseBenchArgs(['--latency', '--latency-paced', '2']).latencyPaced).toBe(2);
    expect(parseBenchArgs(['--reference', 'corosync', '--latency-paced', '1000']).latencyPaced).toBe(1000);
    for (const bad of ['0', '1.5', '1001', 'x', '']) {
      expect(() => parseBenchArgs(['--latency', '--latency-paced', bad])).toThrow(/--latency-paced .*: expected whole milliseconds from 1 to 1000/);
    }
    expect(() => parseBenchArgs(['--latency-paced', '2'])).toThrow(/give it with --latency or --reference/);
    expect(() => parseBenchArgs(['--latency', '--loss', '0.01', '--latency-paced', '2'])).toThrow(/without --loss/);
  });

  it("takes the afcluster rows' client library, ts by default or c, and names the choices otherwise", () => {
    expect(parseBenchArgs([]).client).toBe('ts');
    expect(parseBenchArgs(['--client', 'c']).client).toBe('c');
    expect(parseBenchArgs(['--client', 'ts']).client).toBe('ts');
    expect(() => parseBenchArgs(['--client', 'python'])).toThrow(/--client python: expected ts or c/);
  });

  it('takes corosync as the reference and names the choices otherwise', () => {
    expect(parseBenchArgs(['--reference', 'corosync']).reference).toBe('corosync');
    expect(() => parseBenchArgs(['--reference', 'Corosync'])).toThrow(/--reference Corosync: the reference implementations are corosync/);
  });
  it('takes --mtu from 576 to 65535 (absent: the config default), and sizes the ceiling\'s datagrams by it', () => {
    expect(parseBenchArgs([]).mtu).toBeUndefined();
    expect(parseBenchArgs(['--mtu', '65535']).mtu).toBe(65535);
    expect(() => parseBenchArgs(['--mtu', '70000'])).toThrow(UsageError);
    expect(parseBenchArgs(['--reference-mtu', '1500']).referenceMtu).toBe(1500);
    expect(parseBenchArgs([]).referenceMtu).toBeUndefined();
    expect(() => parseBenchArgs(['--reference-mtu', '100'])).toThrow(UsageError);
    expect(ceilingDatagramBytes(1500)).toBe(1472);
    expect(ceilingDatagramBytes(65535)).toBe(65507);
    expect(ceilingDatagramBytes(9000)).toBe(8972);
    expect(ceilingDatagramBytes(65535)).toBe(65507);
  });

  it('names the flag and the allowed range in the message', () => {
    expect(() => parseBenchArgs(['--nodes', '99'])).toThrow(/--nodes 99: expected an integer from 2 to 32/);
  });
});
