// Proves the SVG chart's structure: a well-formed svg root, one path per series, legend entries, escaped text.
import { describe, expect, it } from 'vitest';
import { escapeXml, lineChart, niceTicks, tickLabel } from './svg.ts';

const chart = lineChart({
  title: 'Throughput <by> size & driver', xLabel: 'bytes per message', yLabel: 'MB/s', logX: true,
  series: [
    { name: 'totem', points: [{ x: 100, y: 10 }, { x: 1300, y: 50 }, { x: 65536, y: 70 }] },
    { name: 'cman', points: [{ x: 100, y: 3 }, { x: 1300, y: 20 }] },
    { name: 'raw UDP ceiling', dashed: true, points: [{ x: 100, y: 130 }, { x: 65536, y: 125 }] },
  ],
});

describe('lineChart', () => {
  it('is one svg element with the SVG namespace and a viewBox', () => {
    expect(chart.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(chart.trimEnd().endsWith('</svg>')).toBe(true);
    expect(chart).toMatch(/viewBox="0 0 \d+ \d+"/);
    expect(chart.match(/<svg/g)).toHaveLength(1);
  });
  it('draws one path per series with a point per value, the ceiling dashed', () => {
    const groups = [...chart.matchAll(/<g class="series" data-name="([^"]+)">([\s\S]*?)<\/g>/g)];
    expect(groups.map((g) => g[1])).toEqual(['totem', 'cman', 'raw UDP ceiling']);
    expect(groups.map((g) => (g[2].match(/<circle/g) ?? []).length)).toEqual([3, 2, 2]);
    expect(groups[2][2]).toContain('stroke-dasharray');
    expect(groups[0][2]).not.toContain('stroke-dasharray');
  });
  it('has a legend entry per series and escapes text', () => {
    for (const name of ['totem', 'cman', 'raw UDP ceiling']) expect(chart).toContain(`>${name}</text>`);
    expect(chart).toContain('Throughput &lt;by&gt; size &amp; driver');
    expect(chart).not.toMatch(/<by>/);
  });
  it('keeps every coordinate inside the canvas', () => {
    const nums = [...chart.matchAll(/(?:cx|cy)="([-\d.]+)"/g)].map((m) => Number(m[1]));
    expect(nums.every((n) => n >= 0 && n <= 820)).toBe(true);
  });
  it('survives no data', () => {
    const empty = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [] });
    expect(empty).toContain('</svg>');
    expect(empty).not.toContain('NaN');
  });
});

describe('niceTicks and tickLabel', () => {
  it('covers the maximum with round steps', () => {
    expect(niceTicks(130)).toEqual([0, 50, 100, 150]);
    expect(niceTicks(9)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(0)).toEqual([0, 1]);
  });
  it('labels large and binary values briefly', () => {
    expect(tickLabel(65536, true)).toBe('64Ki');
    expect(tickLabel(1300, true)).toBe('1300');
    expect(tickLabel(1500000)).toBe('1.5M');
    expect(tickLabel(25000)).toBe('25k');
    expect(escapeXml('"a"')).toBe('&quot;a&quot;');
  });
});
