// Proves the bench's run plan (pure parts): configurations, step count, driver sections per configuration.
import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from './options.ts';
import { ACCELERATED_WINDOW_ON, bestCeiling, configurations, latencyLoadPerSec, profileDirFor, rerate, sectionsFor, stepCount } from './run.ts';

describe('configurations', () => {
  it('crosses drivers with crypto, and accelerated for totem only', () => {
    const o = parseBenchArgs(['--drivers', 'totem,cman', '--crypto', 'on,off', '--accelerated', 'off,on']);
    expect(configurations(o)).toEqual([
      { driver: 'totem', crypto: 'on', accelerated: 'off' },
      { driver: 'totem', crypto: 'on', accelerated: 'on' },
      { driver: 'totem', crypto: 'off', accelerated: 'off' },
      { driver: 'totem', crypto: 'off', accelerated: 'on' },
      { driver: 'cman', crypto: 'on', accelerated: '-' },
      { driver: 'cman', crypto: 'off', accelerated: '-' },
    ]);
  });
});

describe('stepCount', () => {
  it('counts ceiling sizes, a start, its warm-up and the sizes per configuration, latency and scaling steps', () => {
    expect(stepCount(parseBenchArgs([]))).toBe(2 * 14 + 2 * (2 + 14));
    expect(stepCount(parseBenchArgs(['--sizes', '100,200', '--latency', '--no-ceiling', '--drivers', 'cman']))).toBe(2 + 2 * 3);
    // --latency-paced: one more idle row per size.
    expect(stepCount(parseBenchArgs(['--sizes', '100,200', '--latency', '--latency-paced', '2', '--no-ceiling', '--drivers', 'cman']))).toBe(2 + 2 * 4);
    expect(stepCount(parseBenchArgs(['--sizes', '100', '--scaling', '--scale-nodes', '2,3', '--drivers', 'cman']))).toBe(2 + 3 + 2 * 3);
    // --loss: no warm-up (each loss rate is compared with the lossless row measured the same way).
    expect(stepCount(parseBenchArgs(['--sizes', '100,200', '--loss', '0,0.05', '--drivers', 'cman']))).toBe(1 + 2 * 2);
    // --loss with --reference: the reference does not run there (nothing of it to count).
    expect(stepCount(parseBenchArgs(['--sizes', '100,200', '--loss', '0,0.05', '--drivers', 'cman', '--reference', 'corosync']))).toBe(1 + 2 * 2);
  });
  it('adds per configuration the start of the reference, its two warm-ups and five steps per size, with or without --latency', () => {
    // one sender (afcluster, corosync), every node (afcluster, corosync), idle latency (afcluster, corosync)
    expect(stepCount(parseBenchArgs(['--sizes', '100,200', '--no-ceiling', '--drivers', 'totem', '--reference', 'corosync']))).toBe(2 + 2 + 3 + 2 * 5);
    // + afcluster and corosync under load: afcluster's idle and load were counted already
    expect(stepCount(parseBenchArgs(['--sizes', '100', '--no-ceiling', '--drivers', 'totem', '--latency', '--reference', 'corosync']))).toBe(2 + 3 + 3 + 5);
  });
  it('counts every window of --rounds, afcluster\'s and the reference\'s', () => {
    // Per size, 3 windows of: every node, idle, under load.
    expect(stepCount(parseBenchArgs(['--sizes', '100,200', '--latency', '--rounds', '3', '--no-ceiling', '--drivers', 'cman']))).toBe(2 + 2 * 3 * 3);
    // The reference's start and warm-ups; per size, 2 windows of: every node and one sender (both), idle latency (both).
    expect(stepCount(parseBenchArgs(['--sizes', '100', '--no-ceiling', '--drivers', 'totem', '--reference', 'corosync', '--rounds', '2']))).toBe(2 + 3 + 2 * (4 + 2));
  });
});

describe('bestCeiling and rerate', () => {
  const row = (size: number, mb: number, driver = 'udp') => ({
    driver, crypto: 'off' as const, accelerated: '-' as const, nodes: 3, size, writes: 1, seconds: 1, tpPerSec: mb * 1e6 / size, tpMinPerSec: 0, mbPerSec: mb, counters: {},
  });
  it('keeps the better sample per size and recomputes ratios, by the size asked for', () => {
    const best = bestCeiling(new Map([[100, row(100, 10)], [1300, row(1300, 40)]]), new Map([[100, row(100, 20)], [1300, row(1300, 30)]]));
    expect(best.get(100)?.mbPerSec).toBe(20);
    expect(best.get(1300)?.mbPerSec).toBe(40);
    const rated = rerate([row(100, 5, 'totem'), { ...row(99, 10, 'totem'), requestedSize: 1300 }], best);
    expect(rated.map((r) => r.ratio)).toEqual([0.25, 0.25]);
  });
});

describe('sectionsFor', () => {
  it('sets accelerated_window for totem from the setting, keeps --set keys', () => {
    const o = parseBenchArgs(['--set', 'totem.window_size=80,cman.ack_timeout_ms=50']);
    expect(sectionsFor({ driver: 'totem', crypto: 'off', accelerated: 'on' }, o)).toEqual({
      totem: { window_size: 80, accelerated_window: ACCELERATED_WINDOW_ON }, cman: { ack_timeout_ms: 50 },
    });
    expect(sectionsFor({ driver: 'totem', crypto: 'off', accelerated: 'off' }, o).totem.accelerated_window).toBe(0);
    expect(sectionsFor({ driver: 'cman', crypto: 'off', accelerated: '-' }, o)).toEqual({ totem: { window_size: 80 }, cman: { ack_timeout_ms: 50 } });
  });
  it('lets an explicit --set totem.accelerated_window win', () => {
    const o = parseBenchArgs(['--set', 'totem.accelerated_window=3']);
    expect(sectionsFor({ driver: 'totem', crypto: 'off', accelerated: 'on' }, o).totem.accelerated_window).toBe(3);
  });
  it('gives each configuration its own profile directory', () => {
    expect(profileDirFor('/p', { driver: 'totem', crypto: 'on', accelerated: 'off' })).toBe('/p/totem-crypto-on-accel-off');
    expect(profileDirFor('/p', { driver: 'cman', crypto: 'off', accelerated: '-' })).toBe('/p/cman-crypto-off');
  });
});

describe('latencyLoadPerSec', () => {
  it('is half the maximum alone, and half the lower maximum with a reference that has one', () => {
    expect(latencyLoadPerSec(80_001)).toBe(40_001);
    expect(latencyLoadPerSec(80_000, 60_000)).toBe(30_000); // the reference is slower: its half for both
    expect(latencyLoadPerSec(2_000, 4_100)).toBe(1_000); // afcluster is slower: its half for both
    expect(latencyLoadPerSec(80_000, NaN)).toBe(40_000); // a skipped reference has no maximum
    expect(latencyLoadPerSec(0, 60_000)).toBe(30_000); // nor does a failed row of ours: the reference's half
    expect(latencyLoadPerSec(NaN, NaN)).toBe(0);
  });
});
