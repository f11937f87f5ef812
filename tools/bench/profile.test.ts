// Proves the .cpuprofile summary attributes sample time to functions and files and reports idle share.
import { describe, expect, it } from 'vitest';
import { formatProfileSummary, shortUrl, summarizeProfile, type CpuProfile } from './profile.ts';

const profile: CpuProfile = {
  startTime: 0, endTime: 1000,
  nodes: [
    { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 } },
    { id: 2, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
    { id: 3, callFrame: { functionName: 'seal', url: 'file:///work/main/core/crypto/sealer.ts', lineNumber: 9 } },
    { id: 4, callFrame: { functionName: 'onToken', url: 'file:///work/main/drivers/totem/ring.ts', lineNumber: 99 } },
  ],
  samples: [3, 3, 4, 2, 3],
  timeDeltas: [0, 100, 100, 100, 100, 100],
};

describe('summarizeProfile', () => {
  it('sums self time per function and per file, ranked', () => {
    const s = summarizeProfile(profile);
    expect(s.totalMs).toBeCloseTo(0.5);
    expect(s.idleShare).toBeCloseTo(0.2);
    expect(s.functions[0]).toMatchObject({ name: 'seal core/crypto/sealer.ts:10', share: 0.6 });
    expect(s.files.map((f) => f.name)).toEqual(['core/crypto/sealer.ts', 'drivers/totem/ring.ts', '(idle)']);
    expect(formatProfileSummary(s)).toContain('60.0%');
  });
  it('shortens urls', () => {
    expect(shortUrl('file:///x/node_modules/tsx/dist/a.js')).toBe('node_modules/tsx/dist/a.js');
    expect(shortUrl('node:internal/dgram')).toBe('node:internal/dgram');
    expect(shortUrl('')).toBe('(native)');
  });
});
