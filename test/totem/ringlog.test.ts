// The ring's message log against a Map of the same messages: adds (in and out of order, twice,
// far ahead), frees, gaps and lookups, with the slots growing and wrapping. Seeded; a failure
// names its seed (replay: RINGLOG_SEED=N npx vitest run test/totem/ringlog.test.ts).
import { describe, expect, it } from 'vitest';
import { RingLog, SPAN_MIN, type StoredMsg } from '../../drivers/totem/ringlog.ts';
import { Rng } from '../../sim/rng.ts';

const FRAME = new Uint8Array(1);
const msg = (seq: number): StoredMsg => ({ seq, origin: 1, safe: false, frame: FRAME });

/** The log as a Map: what RingLog kept before it had slots. */
class Model {
  readonly msgs = new Map<number, StoredMsg>();
  aru = 0;
  highSeq = 0;
  freedUpTo = 0;
  has(seq: number): boolean { return seq <= this.freedUpTo || this.msgs.has(seq); }
  add(m: StoredMsg): boolean {
    if (this.has(m.seq)) return false;
    this.msgs.set(m.seq, m);
    if (m.seq > this.highSeq) this.highSeq = m.seq;
    while (this.msgs.has(this.aru + 1)) this.aru++;
    return true;
  }
  free(upTo: number): void {
    for (const s of [...this.msgs.keys()]) if (s <= upTo) this.msgs.delete(s);
    if (upTo > this.freedUpTo) this.freedUpTo = upTo;
  }
  gaps(upTo: number, max: number): number[] {
    const out: number[] = [];
    for (let s = this.aru + 1; s <= upTo && out.length < max; s++) if (!this.msgs.has(s)) out.push(s);
    return out;
  }
}

function run(seed: number): void {
  const rng = new Rng(seed);
  const log = new RingLog({ rep: 1, seq: 4 }, [1, 2, 3]);
  const model = new Model();
  // Half the seeds start high: seqs past 2^31 and 2^32 (a frame's seq is 48 bits on the wire).
  const base = seed % 2 === 0 ? 0 : [2 ** 31 - 700, 2 ** 32 - 900, 2 ** 40 - 7][seed % 3];
  log.free(base);
  model.free(base);
  let top = base;
  for (let step = 0; step < 1500; step++) {
    const r = rng.next();
    if (r < 0.6) {
      // A new seq, one near the top (out of order, a duplicate), or a burst's far one.
      const far = rng.next() < 0.02;
      const seq = far ? model.freedUpTo + 1 + Math.floor(rng.next() * 3000) : Math.max(1, top + Math.floor(rng.next() * 12) - 4);
      top = Math.max(top, seq);
      const m = msg(seq);
      expect(log.add(m), `seed ${seed} step ${step}: add ${seq}`).toBe(model.add(m));
    } else if (r < 0.8) {
      // Free up to somewhere at or below what is held in order, now and then past it.
      // Now and then far past everything held (past the slots' length too).
      const r2 = rng.next();
      const upTo = r2 < 0.02 ? top + Math.floor(rng.next() * 5000) : r2 < 0.12 ? model.aru + Math.floor(rng.next() * 50)
        : model.freedUpTo + Math.floor(rng.next() * (model.aru - model.freedUpTo + 1));
      if (upTo > top) top = upTo;
      log.free(upTo);
      model.free(upTo);
    } else {
      const upTo = model.aru + Math.floor(rng.next() * 40);
      expect(log.gaps(upTo, 30), `seed ${seed} step ${step}: gaps to ${upTo}`).toEqual(model.gaps(upTo, 30));
    }
    expect(log.aru, `seed ${seed} step ${step}: aru`).toBe(model.aru);
    expect(log.highSeq, `seed ${seed} step ${step}: highSeq`).toBe(model.highSeq);
    expect(log.freedUpTo, `seed ${seed} step ${step}: freedUpTo`).toBe(model.freedUpTo);
    expect(log.size, `seed ${seed} step ${step}: size`).toBe(model.msgs.size);
    for (let k = 0; k < 3; k++) {
      const seq = model.freedUpTo - 2 + Math.floor(rng.next() * (top - model.freedUpTo + 8));
      expect(log.has(seq), `seed ${seed} step ${step}: has ${seq}`).toBe(model.has(seq));
      expect(log.get(seq), `seed ${seed} step ${step}: get ${seq}`).toBe(model.msgs.get(seq));
    }
  }
}

describe('RingLog', () => {
  it('holds, frees and finds gaps as a Map of the same messages would, its slots growing and wrapping', () => {
    const fixed = Number(process.env.RINGLOG_SEED);
    const seeds = Number.isInteger(fixed) && fixed > 0 ? [fixed] : Array.from({ length: 20 }, (_, i) => 9001 + i);
    console.log(`RingLog seeds ${seeds[0]}-${seeds[seeds.length - 1]}`);
    for (const seed of seeds) run(seed);
  });

  it('refuses a seq past the span it was given, rather than make slots for it', () => {
    const log = new RingLog({ rep: 1, seq: 4 }, [1, 2], 200_000);
    expect(log.add(msg(1))).toBe(true);
    expect(log.fits(2 ** 31)).toBe(false);
    expect(log.add(msg(2 ** 31))).toBe(false);
    expect(log.add(msg(200_002))).toBe(false);
    expect(log.fits(200_000)).toBe(true);
    expect(log.add(msg(100_000))).toBe(true);
    expect(log.get(100_000)?.seq).toBe(100_000);
    expect(log.gaps(4, 10)).toEqual([2, 3, 4]);
    log.free(100_000);
    expect(log.size).toBe(0);
    expect(log.has(3)).toBe(true);
    expect(log.fits(300_000)).toBe(true); // the span counts from what was freed
    // A smaller span than SPAN_MIN is raised to it.
    expect(new RingLog({ rep: 1, seq: 4 }, [1], 10).fits(SPAN_MIN)).toBe(true);
  });
});
