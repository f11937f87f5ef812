// Proves the line protocol of the bench's C clients (cpg-bench.c for corosync, afc-bench-worker.c for afcluster's C library): each bench request as the command they read, and every reply it prints parsed into the bench's results; a line it cannot print throws.
import { describe, expect, it } from 'vitest';
import { cpgCommand, csErrorName, parseCpgReply } from './cpg-protocol.ts';

describe('cpgCommand', () => {
  it('writes each request as one command line, times in milliseconds', () => {
    expect(cpgCommand({ type: 'open', socket: '', group: 'bench' })).toBe('join bench');
    expect(cpgCommand({ type: 'waitMembers', members: 3, timeoutMs: 60000 })).toBe('members 3 60000');
    expect(cpgCommand({ type: 'throughput', phase: 7, size: 1300, order: 'agreed', warmupMs: 300, seconds: 2.5, send: true })).toBe('throughput 7 1300 300 2500 1 0');
    expect(cpgCommand({ type: 'throughput', phase: 8, size: 100, order: 'agreed', warmupMs: 300, seconds: 1, send: false, ratePerSec: 5000.5 })).toBe('throughput 8 100 300 1000 0 5000.5');
    expect(cpgCommand({ type: 'latency', phase: 9, size: 100, order: 'agreed', warmupMs: 300, seconds: 0.5, samplesMax: 100000 })).toBe('latency 9 100 300 500 100000');
    // Paced round trips: the interval in whole microseconds, after the sample cap; 0 is back to back (left out).
    expect(cpgCommand({ type: 'latency', phase: 9, size: 100, order: 'agreed', warmupMs: 300, seconds: 0.5, samplesMax: 100000, intervalUs: 2000 })).toBe('latency 9 100 300 500 100000 2000');
    expect(cpgCommand({ type: 'latency', phase: 9, size: 100, order: 'agreed', warmupMs: 300, seconds: 0.5, samplesMax: 100000, intervalUs: 0 })).toBe('latency 9 100 300 500 100000');
    // cpg-bench reads whole milliseconds: a warm-up of 2.01 s is 2009.9999999999998 ms in floating point.
    expect(cpgCommand({ type: 'latency', phase: 9, size: 100, order: 'agreed', warmupMs: 2.01 * 1000, seconds: 0.5, samplesMax: 1 })).toBe('latency 9 100 2010 500 1');
    expect(cpgCommand({ type: 'throughput', phase: 9, size: 100, order: 'agreed', warmupMs: 0.0005 * 1000, seconds: 1, send: true })).toBe('throughput 9 100 1 1000 1 0');
    expect(cpgCommand({ type: 'drain', quietMs: 150, maxMs: 5000 })).toBe('drain 150 5000');
    expect(cpgCommand({ type: 'close' })).toBe('quit');
  });
});

describe('parseCpgReply', () => {
  it('reads ready, members, drained and closed', () => {
    expect(parseCpgReply('ready nodeid=2 pid=4242')).toEqual({ type: 'ready', nodeId: 2, pid: 4242 });
    expect(parseCpgReply('members n=3')).toEqual({ type: 'members', members: 3 });
    expect(parseCpgReply('drained')).toEqual({ type: 'drained', rebound: false });
    // afc-bench-worker: its socket was removed for falling behind and bound again.
    expect(parseCpgReply('drained rebound=1')).toEqual({ type: 'drained', rebound: true });
    expect(parseCpgReply('closed\r')).toEqual({ type: 'closed' });
  });

  it('reads a throughput result as client-worker gives it', () => {
    expect(parseCpgReply('throughput written=95443 delivered=95493 elapsed_us=1996178')).toEqual({
      type: 'throughput', written: 95443, delivered: 95493, elapsedS: 1.996178, errors: [],
    });
  });

  it('turns a failed send into an error message that names the cs_error', () => {
    const r = parseCpgReply('throughput written=10 delivered=12 elapsed_us=1000000 fail=9');
    expect(r).toMatchObject({ type: 'throughput', written: 10, errors: ['cpg_mcast_joined or cpg_dispatch failed: CS_ERR_BAD_HANDLE'] });
    expect(csErrorName(77)).toBe('cs_error 77');
    // afc-bench-worker names the C library's errno.
    expect(parseCpgReply('latency samples_us=120.5 errno=ENOTCONN')).toMatchObject({ samplesUs: [120.5], errors: ['afc_send or afc_recv failed: ENOTCONN'] });
    // ...and says when its socket was removed from the group during the row.
    expect(parseCpgReply('throughput written=5 delivered=3 elapsed_us=1000000 overrun=1')).toMatchObject({ written: 5, errors: [expect.stringMatching(/^ENOBUFS: this socket fell behind/)] });
  });

  it('reads latency samples, none, and a message that did not come back', () => {
    expect(parseCpgReply('latency samples_us=262.8,343.5,1208.3')).toEqual({ type: 'latency', samplesUs: [262.8, 343.5, 1208.3], errors: [] });
    expect(parseCpgReply('latency samples_us=')).toEqual({ type: 'latency', samplesUs: [], errors: [] });
    expect(parseCpgReply('latency samples_us=300.0 lost=12')).toEqual({ type: 'latency', samplesUs: [300], errors: ['message 12 did not come back within 5 s'] });
  });

  it('passes the text of an error reply on', () => {
    expect(parseCpgReply('error cpg_initialize failed (cs_error 2): is corosync running in this namespace?'))
      .toEqual({ type: 'error', message: 'cpg_initialize failed (cs_error 2): is corosync running in this namespace?' });
  });

  it.each([
    'hello',
    '',
    'throughput written=1 delivered=x elapsed_us=1',
    'throughput delivered=1 elapsed_us=1',
    'latency n=3',
    'latency samples_us=1,-2',
    'ready nodeid=1',
  ])('throws on %j, which neither C client prints', (line) => {
    expect(() => parseCpgReply(line)).toThrow(/bench client: /);
  });
});
