// Proves the daemon's readable log format: one line per entry with time, level, node, layer,
// message and the other fields as key=value; json on a pipe and pretty on a terminal under "auto".
import { describe, expect, it } from 'vitest';
import { effectiveFormat, prettyLine } from './log.ts';

describe('log format', () => {
  it('pretty: time, level, node, [layer], message, then the fields', () => {
    const t = new Date(2026, 0, 2, 3, 4, 5, 6).getTime();
    const line = prettyLine(JSON.stringify({ level: 40, time: t, node: 2, layer: 'reload', msg: 'reload: applied', applied: ['log.level'], path: '/a b', n: 3 }));
    expect(line).toBe('03:04:05.006 WARN  node 2 [reload] reload: applied applied=["log.level"] path="/a b" n=3\n');
    expect(prettyLine('not json')).toBe('not json\n');
  });

  it('auto is pretty on a terminal and json elsewhere; an explicit format wins', () => {
    expect(effectiveFormat('auto', true)).toBe('pretty');
    expect(effectiveFormat('auto', false)).toBe('json');
    expect(effectiveFormat('json', true)).toBe('json');
    expect(effectiveFormat('pretty', false)).toBe('pretty');
  });
});
