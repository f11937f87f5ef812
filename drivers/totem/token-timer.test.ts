// Proves the token re-send bound: twice the median rotation within its floor and ceiling, deaf to a few slow rotations, doubling per re-send.
import { describe, expect, test } from 'vitest';
import { TokenTimer, ROTATIONS_KEPT } from './token-timer.ts';

describe('TokenTimer', () => {
  test('before any rotation the bound is the ceiling (corosync\'s fixed interval)', () => {
    expect(new TokenTimer(1, 238).delay(0)).toBe(238);
  });

  test('twice the median rotation, within floor and ceiling', () => {
    const t = new TokenTimer(1, 238);
    for (let i = 0; i < ROTATIONS_KEPT; i++) t.sample(3);
    expect(t.bound).toBe(6);
    for (let i = 0; i < ROTATIONS_KEPT; i++) t.sample(0.1);
    expect(t.bound).toBe(1);
    for (let i = 0; i < ROTATIONS_KEPT; i++) t.sample(500);
    expect(t.bound).toBe(238);
  });

  test('rotations slowed by a loss elsewhere do not move the median', () => {
    const t = new TokenTimer(1, 238);
    for (let i = 0; i < ROTATIONS_KEPT; i++) t.sample(i % 3 === 0 ? 100 : 2);
    expect(t.bound).toBe(4);
  });

  test('re-sends of one token back off by doubling up to the ceiling', () => {
    const t = new TokenTimer(1, 20);
    t.sample(2.5);
    expect([0, 1, 2, 3].map((a) => t.delay(a))).toEqual([5, 10, 20, 20]);
  });

  test('a sample that is not a duration is ignored', () => {
    const t = new TokenTimer(1, 238);
    t.sample(Number.NaN);
    t.sample(-1);
    expect(t.bound).toBe(238);
  });
});
