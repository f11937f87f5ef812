// Proves the driver counters are derived from STATS deltas for both drivers' counter names.
import { describe, expect, it } from 'vitest';
import { driverCounters } from './counters.ts';

describe('driverCounters', () => {
  it('totem: retransmissions summed, rotations per node per second, messages per multicast datagram', () => {
    const before = [{ 'driver.mcastRetransmits': 1, 'driver.tokens': 100, 'driver.mcastSent': 10, 'driver.delivered': 0 },
      { 'driver.mcastRetransmits': 0, 'driver.tokens': 100, 'driver.mcastSent': 10, 'driver.delivered': 0 }];
    const after = [{ 'driver.mcastRetransmits': 3, 'driver.tokens': 300, 'driver.mcastSent': 60, 'driver.delivered': 1000 },
      { 'driver.mcastRetransmits': 1, 'driver.tokens': 300, 'driver.mcastSent': 60, 'driver.delivered': 1000 }];
    expect(driverCounters(before, after, 2)).toEqual({ retransmissions: 3, tokenRotationsPerSec: 100, messagesPerDatagram: 10 });
  });
  it('cman: framed messages over frames, no rotations', () => {
    const before = [{ 'driver.resent': 0, 'driver.messagesFramed': 0, 'driver.framesSent': 0 }];
    const after = [{ 'driver.resent': 5, 'driver.messagesFramed': 400, 'driver.framesSent': 100 }];
    expect(driverCounters(before, after, 1)).toEqual({ retransmissions: 5, tokenRotationsPerSec: undefined, messagesPerDatagram: 4 });
  });
  it('leaves out what the driver does not count', () => {
    expect(driverCounters([{}], [{ 'driver.other': 1 }], 1)).toEqual({ retransmissions: undefined, tokenRotationsPerSec: undefined, messagesPerDatagram: undefined });
  });
});
