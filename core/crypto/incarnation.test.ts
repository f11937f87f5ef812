// Proves the incarnation grows across restarts: with the wall clock, when the clock is stepped back (the saved value wins), and when node.state_dir is lost (the clock wins); and that it is saved before it is used.
import { describe, expect, it } from 'vitest';
import type { StateStore } from '../driver/types.ts';
import { INCARNATION_STATE_KEY, nextIncarnation } from './incarnation.ts';

function memStore(): StateStore & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return { files, load: (k) => files.get(k), save: (k, v) => void files.set(k, Uint8Array.from(v)) };
}

describe('nextIncarnation', () => {
  it('is the wall clock in ms on a first start, and saved', () => {
    const s = memStore();
    expect(nextIncarnation(s, 1_700_000_000_123.7)).toBe(1_700_000_000_123);
    expect(s.files.get(INCARNATION_STATE_KEY)?.length).toBe(8);
  });

  it('grows when restarted within the same millisecond, and when the clock was stepped back', () => {
    const s = memStore();
    const a = nextIncarnation(s, 1_700_000_000_000);
    const b = nextIncarnation(s, 1_700_000_000_000);
    const c = nextIncarnation(s, 1_600_000_000_000); // NTP stepped the clock back a few years
    expect([a, b, c]).toEqual([1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_002]);
    expect(nextIncarnation(s, 1_800_000_000_000)).toBe(1_800_000_000_000); // and the clock leads again
  });

  it('grows with the clock when the state dir is lost, and ignores a damaged file', () => {
    const s = memStore();
    const a = nextIncarnation(s, 1_700_000_000_000);
    s.files.clear();
    expect(nextIncarnation(s, 1_700_000_060_000)).toBeGreaterThan(a);
    s.files.set(INCARNATION_STATE_KEY, Uint8Array.of(1, 2, 3));
    expect(nextIncarnation(s, 1_700_000_120_000)).toBe(1_700_000_120_000);
  });
});
