// Proves /proc parsing for peak RSS and CPU seconds, including a command name with spaces.
import { describe, expect, it } from 'vitest';
import { cpuSeconds, parseCpuSeconds, parseVmHwm, peakRssBytes } from './proc.ts';

describe('proc parsing', () => {
  it('reads VmHWM in bytes', () => {
    expect(parseVmHwm('Name:\tnode\nVmPeak:\t  900 kB\nVmHWM:\t  105488 kB\nVmRSS:\t 1 kB\n')).toBe(105488 * 1024);
    expect(parseVmHwm('Name:\tnode\n')).toBeUndefined();
  });
  it('reads utime + stime after the command name', () => {
    const stat = '1234 (node (a) b) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1';
    expect(parseCpuSeconds(stat)).toBe(3);
  });
  it('reads this process', () => {
    expect(peakRssBytes(process.pid)).toBeGreaterThan(0);
    expect(cpuSeconds(process.pid)).toBeGreaterThanOrEqual(0);
    expect(peakRssBytes(0x7ffffff0)).toBeUndefined();
  });
});
