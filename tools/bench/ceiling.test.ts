// Proves the raw UDP ceiling's arithmetic, and (smoke) that its processes exchange and count datagrams over loopback.
import { describe, expect, it } from 'vitest';
import { CeilingCluster, ceilingRow, messagesSent, unitDatagrams } from './ceiling.ts';

describe('unitDatagrams', () => {
  it('packs whole small messages into one datagram and fragments large ones', () => {
    expect(unitDatagrams(100, 1472)).toEqual([1400]);
    expect(unitDatagrams(1300, 1472)).toEqual([1300]);
    expect(unitDatagrams(700, 1472)).toEqual([1400]);
    expect(unitDatagrams(3000, 1472)).toEqual([1472, 1472, 56]);
    expect(unitDatagrams(1472, 1472)).toEqual([1472]);
  });
  it('counts messages carried by datagrams', () => {
    expect(messagesSent(100, 10, 1472)).toBe(140);
    expect(messagesSent(3000, 6, 1472)).toBe(2);
  });
});

describe('ceilingRow', () => {
  it('counts a message once per N-1 receivers and derives MB/s', () => {
    const r = { type: 'result' as const, bytesIn: 2_000_000, datagramsIn: 2000, datagramsOut: 4000, elapsedS: 1 };
    const row = ceilingRow(1000, [r, r, r], { crypto: 'off', datagramBytes: 1472 });
    expect(row.tpPerSec).toBe(3000);
    expect(row.tpMinPerSec).toBe(3000);
    expect(row.mbPerSec).toBe(3);
    expect(row.writes).toBe(6000);
    expect(row.driver).toBe('udp');
  });
});

describe('CeilingCluster (smoke: counts, never judges speed)', () => {
  it('runs 2 processes for a fraction of a second and counts datagrams that arrived', async () => {
    const c = await CeilingCluster.start(2);
    try {
      const results = await c.measure(1000, { seconds: 0.2, warmupMs: 50, datagramBytes: 1472 });
      expect(results).toHaveLength(2);
      for (const r of results) {
        expect(r.datagramsOut).toBeGreaterThan(0);
        expect(r.datagramsIn).toBeGreaterThan(0);
        expect(r.bytesIn).toBe(r.datagramsIn * 1000);
      }
    } finally {
      await c.close();
    }
  });
});

describe('ceilingRow cpu', () => {
  it('turns the window CPU seconds into microseconds per message delivered everywhere', () => {
    const r = { type: 'result' as const, bytesIn: 2_000_000, datagramsIn: 2000, datagramsOut: 4000, elapsedS: 1 };
    const row = ceilingRow(1000, [r, r, r], { crypto: 'off', datagramBytes: 1472, cpuSeconds: 0.3 });
    expect(row.cpuUsPerMessage).toEqual({ daemons: 100, clients: 0 });
  });
});
