// Proves the progress bar's text, and that it redraws in place on a terminal but prints plain lines otherwise.
import { describe, expect, it } from 'vitest';
import { Progress, renderBar } from './progress.ts';

describe('renderBar', () => {
  it('fills in proportion and clamps', () => {
    expect(renderBar(1, 4, 'x', 8)).toBe('[##......]  25% 1/4 x');
    expect(renderBar(9, 4, 'x', 4)).toBe('[####] 100% 9/4 x');
    expect(renderBar(0, 0, 'x', 2)).toBe('[##] 100% 0/0 x');
  });
});

describe('Progress', () => {
  it('writes one plain line per step when not a terminal', () => {
    const out: string[] = [];
    const p = new Progress(2, { isTTY: false, write: (s: string) => out.push(s) });
    p.step('a');
    p.tick();
    p.step('b');
    p.tick();
    p.finish();
    expect(out).toHaveLength(3);
    expect(out.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
    expect(out[1]).toContain('1/2 b');
  });
  it('redraws in place on a terminal', () => {
    const out: string[] = [];
    const p = new Progress(1, { isTTY: true, columns: 200, write: (s: string) => out.push(s) });
    p.step('a');
    p.finish();
    expect(out[0].startsWith('\r\x1b[K')).toBe(true);
    expect(out[0]).not.toContain('\n');
  });
});
