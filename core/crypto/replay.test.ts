// Proves the replay window against a plain model (a set of every accepted number): new numbers are accepted once, a number already accepted never again, a number more than the window behind the newest or below the first one accepted is refused, anything in between is judged exactly; a newer incarnation starts afresh and an older one is refused; marks restored from a stop refuse everything up to them. Randomized: prints its seed.
import { describe, expect, it } from 'vitest';
import { ReplayWindow, WINDOW_BITS } from './replay.ts';
import { randomSource } from '../../sim/rng.ts';

describe('replay window', () => {
  it('accepts each number once, in any order within the window, from the first one accepted', () => {
    const w = new ReplayWindow();
    const order = [1, 5, 3, 4, 2, 10, 8, 9, 7, 6];
    for (const s of order) {
      expect(w.check(1, s)).toBe('new');
      w.accept(1, s);
    }
    for (const s of order) expect(w.check(1, s)).toBe('droppedReplay');
    expect(w.top).toBe(10);
  });

  it('cannot judge what came before the first datagram of an incarnation: behind the window', () => {
    const w = new ReplayWindow();
    w.accept(3, 500); // this node starts listening while the sender is at 500
    expect(w.check(3, 499)).toBe('droppedBehindWindow'); // sent while this node was away: a replay
    expect(w.check(3, 501)).toBe('new');
    w.accept(4, 20); // the sender restarts
    expect(w.check(4, 19)).toBe('droppedBehindWindow');
    expect(w.floor).toBe(20);
  });

  it('restored marks refuse everything up to them until the first new datagram sets the floor', () => {
    const w = new ReplayWindow();
    w.restore(3, 500);
    expect(w.check(3, 1)).toBe('droppedBehindWindow');
    expect(w.check(3, 500)).toBe('droppedBehindWindow');
    expect(w.check(2, 9999)).toBe('droppedStaleIncarnation');
    expect(w.check(3, 700)).toBe('new');
    w.accept(3, 700);
    expect(w.check(3, 600)).toBe('droppedBehindWindow'); // sent while this node was down
    expect(w.check(3, 701)).toBe('new');
    w.restore(3, 10_000); // too late: the window has moved on
    expect(w.top).toBe(700);
    const fresh = new ReplayWindow();
    fresh.restore(3, 500);
    expect(fresh.check(4, 1)).toBe('new'); // a restarted sender, as ever
  });

  it('judges the newest and at least the 992 (at most 1023) numbers before it', () => {
    for (const [top, oldest] of [[2016, 1024], [2000, 992], [2047, 1024]]) {
      const w = new ReplayWindow();
      w.accept(1, 1);
      w.accept(1, top);
      expect(w.check(1, oldest)).toBe('new');
      expect(w.check(1, oldest - 1)).toBe('droppedBehindWindow');
      expect(top - oldest).toBeGreaterThanOrEqual(WINDOW_BITS - 32);
      expect(top - oldest).toBeLessThanOrEqual(WINDOW_BITS - 1);
    }
  });

  it('a jump forward of more than the window forgets everything before it', () => {
    const w = new ReplayWindow();
    for (let s = 1; s <= 100; s++) w.accept(1, s);
    w.accept(1, 100 + 5 * WINDOW_BITS);
    for (let s = 1; s <= 100; s++) expect(w.check(1, s)).toBe('droppedBehindWindow');
    expect(w.check(1, 100 + 5 * WINDOW_BITS - 1)).toBe('new'); // not seen, in the window
  });

  it('a newer incarnation starts afresh at any number; an older one is refused', () => {
    const w = new ReplayWindow();
    w.accept(7, 50_000);
    expect(w.check(6, 1)).toBe('droppedStaleIncarnation');
    expect(w.check(8, 1)).toBe('new');
    w.accept(8, 1);
    expect(w.check(8, 1)).toBe('droppedReplay');
    expect(w.check(8, 2)).toBe('new');
    expect(w.check(7, 50_001)).toBe('droppedStaleIncarnation');
    expect(w.incarnation).toBe(8);
  });

  it('works at the top of the u48 range', () => {
    const w = new ReplayWindow();
    const top = 2 ** 48 - 1;
    w.accept(2 ** 48 - 1, top - 5000);
    w.accept(2 ** 48 - 1, top);
    expect(w.check(2 ** 48 - 1, top)).toBe('droppedReplay');
    expect(w.check(2 ** 48 - 1, top - 1)).toBe('new');
    w.accept(2 ** 48 - 1, top - 900);
    expect(w.check(2 ** 48 - 1, top - 900)).toBe('droppedReplay');
    expect(w.check(2 ** 48 - 1, top - 1100)).toBe('droppedBehindWindow');
  });

  it('matches a model of every accepted number over random traffic (reordering, duplicates, jumps)', () => {
    const seed = Number(process.env.REPLAY_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`replay window model test: seed ${seed} (REPLAY_SEED=${seed} to replay)`);
    const r = randomSource(seed);
    const w = new ReplayWindow();
    const seen = new Set<number>();
    let top = 0;
    let floor = -1;
    const counts = { new: 0, droppedReplay: 0, droppedBehindWindow: 0 };
    for (let i = 0; i < 50_000; i++) {
      const x = r();
      // Mostly the next few numbers; sometimes a late one, a duplicate, or a jump ahead.
      const s = x < 0.6 ? top + 1 + Math.floor(r() * 4)
        : x < 0.85 ? Math.max(1, top - Math.floor(r() * 1100))
          : x < 0.97 ? Math.max(1, top - Math.floor(r() * 40)) : top + 1 + Math.floor(r() * 3000);
      const v = w.check(1, s);
      // The model: behind when its word is 32 or more words before the newest's.
      const behind = Math.floor(s / 32) + 32 <= Math.floor(top / 32);
      const expected = s > top ? 'new' : behind || s < floor ? 'droppedBehindWindow' : seen.has(s) ? 'droppedReplay' : 'new';
      if (v !== expected) expect(v, `seed ${seed}, step ${i}, seq ${s}, top ${top}`).toBe(expected);
      counts[v as keyof typeof counts]++;
      if (v === 'new') {
        w.accept(1, s);
        seen.add(s);
        top = Math.max(top, s);
        if (floor < 0) floor = s;
      }
    }
    expect(counts.new).toBeGreaterThan(1000);
    expect(counts.droppedReplay).toBeGreaterThan(100);
    expect(counts.droppedBehindWindow).toBeGreaterThan(100);
  });
});
