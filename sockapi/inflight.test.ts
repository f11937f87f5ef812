// Proves the ring of sends in flight: entries found by id whether answered in order or not, the
// oldest one first, room that grows when an old entry holds the head, and ids that wrap past
// 2^32; checked against a Map under random adds and answers (the seed is printed).
import { describe, expect, it } from 'vitest';
import { Inflight } from './inflight.ts';

describe('Inflight', () => {
  it('answers in order, out of order, and for ids it does not hold', () => {
    const f = new Inflight<string>(4);
    for (let id = 10; id < 14; id++) f.push(id, `s${id}`);
    expect(f.size).toBe(4);
    expect(f.take(9)).toBeUndefined();
    expect(f.take(14)).toBeUndefined();
    expect(f.take(10)).toBe('s10');
    expect(f.take(12)).toBe('s12'); // out of order: a hole behind 11
    expect(f.has(12)).toBe(false);
    expect(f.take(12)).toBeUndefined();
    expect(f.oldest()).toEqual({ id: 11, item: 's11' });
    expect(f.take(11)).toBe('s11');
    expect(f.oldest()).toEqual({ id: 13, item: 's13' }); // the head stepped over the hole
    expect(f.values()).toEqual(['s13']);
    expect(f.take(13)).toBe('s13');
    expect(f.size).toBe(0);
    expect(f.oldest()).toBeUndefined();
    expect(f.has(13)).toBe(false);
  });

  it('keeps its room while an unanswered old entry holds the head (moving the rest together), grows when the entries fill it', () => {
    const f = new Inflight<number>(4);
    f.push(1, 1);
    for (let id = 2; id < 20_000; id++) {
      f.push(id, id);
      expect(f.take(id)).toBe(id); // answered at once; 1 never is
    }
    expect(f.capacity).toBe(4);
    expect(f.size).toBe(1);
    for (let id = 20_000; id < 20_004; id++) f.push(id, id); // five in flight: past half of 4, then of 8
    expect(f.capacity).toBe(8);
    expect(f.values()).toEqual([1, 20_000, 20_001, 20_002, 20_003]);
    expect(f.take(20_001)).toBe(20_001);
    expect(f.take(1)).toBe(1);
    expect(f.oldest()).toEqual({ id: 20_000, item: 20_000 });
    expect(f.values()).toEqual([20_000, 20_002, 20_003]);
  });

  it('ids that wrap past 2^32 - 1', () => {
    const f = new Inflight<number>(8);
    const ids = [0xfffffffd, 0xfffffffe, 0xffffffff, 0, 1, 2];
    for (const id of ids) f.push(id, id);
    expect(f.has(3)).toBe(false);
    expect(f.take(1)).toBe(1);
    expect(f.take(0xfffffffe)).toBe(0xfffffffe);
    expect(f.values()).toEqual([0xfffffffd, 0xffffffff, 0, 2]);
    for (const id of [0xfffffffd, 0xffffffff, 0, 2]) expect(f.take(id)).toBe(id);
    expect(f.size).toBe(0);
  });

  it('refuses a capacity that is not a power of two', () => {
    expect(() => new Inflight(3)).toThrow(RangeError);
    expect(() => new Inflight(0)).toThrow(RangeError);
  });

  it('agrees with a Map under random adds and answers', () => {
    const seed = Number(process.env.INFLIGHT_SEED ?? Date.now() % 1_000_000);
    console.log(`Inflight random test: seed ${seed} (INFLIGHT_SEED=${seed} replays it)`);
    let x = seed >>> 0;
    const rand = (n: number): number => { // mulberry32
      x = (x + 0x6d2b79f5) >>> 0;
      let t = Math.imul(x ^ (x >>> 15), x | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    const f = new Inflight<number>(8);
    const m = new Map<number, number>();
    let next = 0xffffff00; // wraps during the run
    let most = 0;
    for (let step = 0; step < 5_000; step++) {
      const r = rand(10);
      if (r < 5 || m.size === 0) {
        f.push(next, step);
        m.set(next, step);
        next = (next + 1 + (rand(4) === 0 ? rand(3) : 0)) >>> 0; // other requests take ids between
      } else {
        const keys = [...m.keys()];
        // mostly the oldest (replies in order), sometimes any, sometimes an id not in flight: one
        // not given yet, or one given and answered (older than the oldest, or between two)
        const id = r < 8 ? keys[0] : r < 9 ? keys[rand(keys.length)] : rand(2) === 0 ? (next + 5) >>> 0 : (keys[0] - 1 - rand(3)) >>> 0;
        expect(f.take(id)).toBe(m.get(id));
        m.delete(id);
      }
      expect(f.size).toBe(m.size);
      expect(f.values()).toEqual([...m.values()]);
      const first = m.entries().next();
      expect(f.oldest()).toEqual(first.done ? undefined : { id: first.value[0], item: first.value[1] });
      expect(f.capacity).toBeLessThanOrEqual(Math.max(8, 4 * most)); // the room follows what is in flight
      most = Math.max(most, m.size);
    }
  });
});
