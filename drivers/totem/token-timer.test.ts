// Proves the token re-send bound: twice the median rotation within its floor and ceiling, deaf to a few slow rotations, doubling per re-send; and that its running median (kept sorted as samples come and go) is the median of the last samples, on random sequences (seeded: TOKEN_TIMER_SEED replays one).
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

  test('the running median is the median of the last samples (random sequences, seeded)', () => {
    const seed = Number(process.env.TOKEN_TIMER_SEED ?? Date.now() % 1_000_000);
    console.log(`token-timer seed ${seed} (TOKEN_TIMER_SEED=${seed} replays it)`);
    let x = seed >>> 0 || 1;
    const rand = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32; };
    for (let run = 0; run < 50; run++) {
      const t = new TokenTimer(0, 1e9);
      const seen: number[] = [];
      for (let i = 0; i < 200; i++) {
        // Repeated values too: the sorted copy must drop exactly one of equal samples.
        const ms = rand() < 0.3 ? Math.floor(rand() * 4) : rand() * 50;
        t.sample(ms);
        seen.push(ms);
        const last = seen.slice(-ROTATIONS_KEPT).sort((a, b) => a - b);
        expect(t.bound, `seed ${seed}, run ${run}, sample ${i}`).toBe(2 * last[last.length >> 1]);
      }
    }
  });
});
