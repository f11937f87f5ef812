// Proves the holder counting of core/wire/lease.ts: memory goes back only when owned, anchored and let go by every holder; never when shared, unanchored or dropped once too often.
import { afterEach, describe, expect, it } from 'vitest';
import { anchor, drop, dropParts, hold, holdParts, leaseCounters, own, poisonRelease, setReleaser } from './lease.ts';

const released: ArrayBuffer[] = [];
const releaseInto = (memory: ArrayBuffer): void => { released.push(memory); };

/** A datagram of its own, and a view of its body (as a frame is of its datagram). */
function datagram(n = 64): { whole: Uint8Array; body: Uint8Array } {
  const whole = new Uint8Array(n).fill(7);
  return { whole, body: whole.subarray(8, n - 8) };
}

afterEach(() => {
  setReleaser(undefined);
  released.length = 0;
});

describe('lease', () => {
  it('does nothing without a releaser', () => {
    const { whole, body } = datagram();
    own(whole); anchor(body); drop(body);
    expect(released).toEqual([]);
    expect(leaseCounters.released).toBe(0);
  });

  it('releases owned, anchored memory at the last drop, whoever drops last', () => {
    setReleaser(releaseInto);
    const { whole, body } = datagram();
    own(whole);
    anchor(body);
    hold(body.subarray(4, 10)); // a fragment's view in the reassembler
    hold(body); // a slow client's queue
    drop(body); // the ring log frees it
    expect(released).toEqual([]);
    drop(body.subarray(4, 10));
    expect(released).toEqual([]);
    drop(body);
    expect(released).toEqual([whole.buffer]);
    expect(leaseCounters).toMatchObject({ released: 1, releasedBytes: 64, unbalanced: 0 });
  });

  it('never releases memory that was not anchored, however its holders come and go', () => {
    setReleaser(releaseInto);
    const { whole, body } = datagram();
    own(whole);
    hold(body); drop(body); hold(body); drop(body);
    expect(released).toEqual([]);
  });

  it('never releases memory nobody owned', () => {
    setReleaser(releaseInto);
    const { body } = datagram();
    anchor(body); drop(body);
    expect(released).toEqual([]);
  });

  it('does not own a view that does not span its memory (a slab\'s, a pool\'s)', () => {
    setReleaser(releaseInto);
    const { body } = datagram();
    own(body);
    anchor(body); drop(body);
    expect(released).toEqual([]);
  });

  it('pins memory owned twice: two owners mean it is shared', () => {
    setReleaser(releaseInto);
    const { whole } = datagram();
    own(whole); own(new Uint8Array(whole.buffer));
    const body = whole.subarray(8, 56);
    anchor(body); drop(body);
    expect(released).toEqual([]);
    expect(leaseCounters.pinned).toBe(1);
  });

  it('pins, not releases, memory dropped more often than held, and counts it', () => {
    setReleaser(releaseInto);
    const { whole, body } = datagram();
    own(whole);
    drop(body);
    anchor(body); drop(body);
    expect(released).toEqual([]);
    expect(leaseCounters.unbalanced).toBe(1);
  });

  it('counts two anchors as two holders (a frame in two ring logs)', () => {
    setReleaser(releaseInto);
    const { whole, body } = datagram();
    own(whole);
    anchor(body); anchor(body);
    drop(body);
    expect(released).toEqual([]);
    drop(body);
    expect(released).toHaveLength(1);
  });

  it('holds and drops each part of a message in parts', () => {
    setReleaser(releaseInto);
    const a = datagram(), b = datagram();
    own(a.whole); own(b.whole);
    anchor(a.body); anchor(b.body);
    holdParts([a.body, b.body]);
    drop(a.body); drop(b.body);
    expect(released).toEqual([]);
    dropParts([a.body, b.body]);
    expect(released).toEqual([a.whole.buffer, b.whole.buffer]);
  });

  it('poisonRelease overwrites the memory, so a view read after release reads other bytes', () => {
    setReleaser(poisonRelease);
    const { whole, body } = datagram();
    own(whole); anchor(body); drop(body);
    expect([...body.subarray(0, 4)]).toEqual([0xdb, 0xdb, 0xdb, 0xdb]);
  });
});
