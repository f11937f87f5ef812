import { describe, expect, it } from 'vitest';
import { inSubnet, interfaceOf, MTU_FALLBACK, resolveMtu } from './mtu.ts';

const IFACES = {
  lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4' }, { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6' }],
  eth0: [{ address: '10.1.2.3', netmask: '255.255.255.0', family: 'IPv4' }, { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6' }],
  jumbo: [{ address: '10.9.0.1', netmask: '255.255.0.0', family: 'IPv4' }],
};
const MTUS: Record<string, number> = { lo: 65536, eth0: 1500, jumbo: 9000 };
const read = (name: string) => MTUS[name];

describe('cluster.mtu = "auto"', () => {
  it('finds the interface that holds an address, by address or by subnet', () => {
    expect(interfaceOf('10.1.2.3', IFACES)).toBe('eth0');
    expect(interfaceOf('127.0.0.2', IFACES)).toBe('lo');
    expect(interfaceOf('10.9.200.7', IFACES)).toBe('jumbo');
    expect(interfaceOf('::1', IFACES)).toBe('lo');
    expect(interfaceOf('fe80::abcd', IFACES)).toBe('eth0');
    expect(interfaceOf('::ffff:10.1.2.9', IFACES)).toBe('eth0');
    expect(interfaceOf('192.168.1.1', IFACES)).toBeUndefined();
    expect(interfaceOf('node1.example', { odd: [{ address: 'garbage', netmask: 'x', family: 'IPv4' }] })).toBeUndefined();
    expect(inSubnet('10.1.3.1', IFACES.eth0[0])).toBe(false);
  });

  it("takes the interface's MTU, at most an IP packet's 65535", () => {
    expect(resolveMtu('auto', '127.0.0.3', read, IFACES)).toEqual({ mtu: 65535, source: 'interface lo' });
    expect(resolveMtu('auto', '10.1.2.3', read, IFACES)).toEqual({ mtu: 1500, source: 'interface eth0' });
    expect(resolveMtu('auto', '10.9.1.1', read, IFACES)).toEqual({ mtu: 9000, source: 'interface jumbo' });
  });

  it('keeps a configured figure, and falls back to 1500 saying why', () => {
    expect(resolveMtu(9000, '127.0.0.1', read, IFACES)).toEqual({ mtu: 9000, source: 'configured' });
    const missing = resolveMtu('auto', '192.168.1.1', read, IFACES);
    expect(missing.mtu).toBe(MTU_FALLBACK);
    expect(missing.source).toMatch(/no interface of this host holds 192\.168\.1\.1/);
    const unreadable = resolveMtu('auto', '10.1.2.3', () => { throw new Error('ENOENT'); }, IFACES);
    expect(unreadable).toEqual({ mtu: MTU_FALLBACK, source: expect.stringMatching(/unreadable \(ENOENT\)/) });
    expect(resolveMtu('auto', '10.1.2.3', () => NaN, IFACES).mtu).toBe(MTU_FALLBACK);
  });

  it("reads this host's loopback", () => {
    const lo = resolveMtu('auto', '127.0.0.1');
    expect(lo.source).toMatch(/^interface /);
    expect(lo.mtu).toBeGreaterThanOrEqual(576);
  });
});
