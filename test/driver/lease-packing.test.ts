// Proves the send queue owns the frames it makes with memory of their own and holds a large message's bytes until they are in frames, and the reassembler holds a frame's fragments while a message is partial: a frame freed by its ring log goes back only after the message it carries a fragment of was delivered or discarded.
import { afterEach, describe, expect, it } from 'vitest';
import { Packer, Reassembler } from '../../core/driver/packing.ts';
import { anchor, drop, leaseCounters, own, poisonRelease, setReleaser } from '../../core/wire/lease.ts';

const released: ArrayBuffer[] = [];

function packer(frameSizeMax: number): Packer {
  return new Packer({ frameSizeMax, messageSizeMax: 1 << 20, queueMessagesMax: 10_000, queueBytesMax: 8 << 20, headroom: 32 });
}
function frames(p: Packer): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let f = p.nextFrame(); f; f = p.nextFrame()) out.push(f.bytes);
  return out;
}
/** A frame as a receiver has it: a datagram of its own (owned, as the transport owns what it
 *  reads), anchored as the ring log anchors what it stores. */
function received(frame: Uint8Array): Uint8Array {
  const d = new Uint8Array(frame.length + 16);
  d.set(frame, 16);
  own(d);
  const view = d.subarray(16);
  anchor(view);
  return view;
}

afterEach(() => {
  setReleaser(undefined);
  released.length = 0;
});

describe('buffer release in the send queue and the reassembler', () => {
  it('owns the frames it cuts with memory of their own, and not those cut from the shared slab', () => {
    setReleaser((m) => released.push(m));
    const big = packer(65_000);
    big.push(new Uint8Array(100_000), 'agreed');
    const cut = frames(big);
    expect(cut).toHaveLength(2);
    for (const f of cut) { anchor(f); drop(f); }
    expect(released).toHaveLength(2);
    expect(released[0]).toBe(cut[0].buffer);

    released.length = 0;
    const small = packer(1400);
    small.push(new Uint8Array(3000), 'agreed');
    for (const f of frames(small)) { anchor(f); drop(f); }
    expect(released).toEqual([]);
  });

  it('owns a mostly empty frame of whole messages, copied out at any size (a lone sender\'s small frame)', () => {
    setReleaser((m) => released.push(m));
    const p = packer(65_000);
    p.push(Uint8Array.of(1, 2, 3), 'agreed');
    const [lone] = frames(p); // copied out of the frame buffer it was written in: a few bytes
    expect(lone.byteLength).toBeLessThan(100);
    expect(lone.buffer.byteLength).toBe(lone.byteLength + 32); // its own memory: headroom and frame
    anchor(lone);
    drop(lone); // the ring log lets go of it
    expect(released).toEqual([lone.buffer]);
  });

  it('keeps a frame whose fragment starts a partial message until that message is delivered', () => {
    setReleaser((m) => released.push(m));
    const p = packer(1400);
    const message = new Uint8Array(3000).map((_, i) => i & 0xff);
    p.push(message, 'agreed');
    const got: Uint8Array[] = [];
    const r = new Reassembler({ messageSizeMax: 1 << 20, partialBytesMax: 1 << 20 });
    const fs = frames(p).map(received);
    expect(fs).toHaveLength(3);
    r.accept(1, fs[0], () => undefined);
    drop(fs[0]); // the ring log frees it: the reassembler still holds its fragment
    r.accept(1, fs[1], () => undefined);
    drop(fs[1]);
    expect(released).toEqual([]);
    r.accept(1, fs[2], (payload) => {
      const parts = payload instanceof Uint8Array ? [payload] : payload;
      got.push(Uint8Array.from(parts.flatMap((x) => [...x])));
    });
    expect(got[0]).toEqual(message);
    expect(released).toEqual([fs[0].buffer, fs[1].buffer]); // let go once delivered
    drop(fs[2]);
    expect(released).toHaveLength(3);
    expect(leaseCounters.unbalanced).toBe(0);
  });

  it('holds a large message\'s bytes until its last fragment is cut, or until the queue is cleared', () => {
    setReleaser(poisonRelease);
    const datagram = (n: number): Uint8Array => {
      const d = Uint8Array.from({ length: n }, (_, i) => (i * 13) & 0xff);
      own(d);
      anchor(d); // as the bridge anchors a client's datagram for its call
      return d;
    };
    const p = packer(1400);
    const message = datagram(5000);
    const want = message.slice();
    p.push([Uint8Array.of(1, 2, 3), message.subarray(100)], 'agreed');
    drop(message); // the bridge is done with the datagram: the queue still holds its bytes
    expect(leaseCounters.released).toBe(0);
    const got: Uint8Array[] = [];
    const r = new Reassembler({ messageSizeMax: 1 << 20, partialBytesMax: 1 << 20 });
    for (const f of frames(p)) r.accept(1, f, (payload) => { got.push(Uint8Array.from((payload instanceof Uint8Array ? [payload] : payload).flatMap((x) => [...x]))); });
    expect(got).toEqual([Uint8Array.from([1, 2, 3, ...want.subarray(100)])]);
    expect(leaseCounters.released).toBe(1); // let go once its last fragment was cut

    const cleared = datagram(5000);
    p.push(cleared, 'agreed');
    drop(cleared);
    expect(leaseCounters.released).toBe(1);
    p.clear();
    expect(leaseCounters.released).toBe(2);
    expect(leaseCounters.unbalanced).toBe(0);
  });

  it('lets a discarded partial message\'s frames go', () => {
    setReleaser((m) => released.push(m));
    const p = packer(1400);
    p.push(new Uint8Array(3000), 'agreed');
    const fs = frames(p).map(received);
    const r = new Reassembler({ messageSizeMax: 1 << 20, partialBytesMax: 1 << 20 });
    r.accept(1, fs[0], () => undefined);
    drop(fs[0]);
    expect(released).toEqual([]);
    r.dropSender(1);
    expect(released).toEqual([fs[0].buffer]);
  });

  it('lets go of fragments once a long message is copied into bytes of its own', () => {
    setReleaser((m) => released.push(m));
    const p = packer(200);
    p.push(new Uint8Array(100 * 200).fill(3), 'agreed'); // over PARTS_KEPT_MAX fragments
    const fs = frames(p).map(received);
    const r = new Reassembler({ messageSizeMax: 1 << 20, partialBytesMax: 1 << 20 });
    let delivered = 0;
    for (const f of fs) {
      r.accept(1, f, (payload) => { delivered += payload instanceof Uint8Array ? payload.length : 0; });
      drop(f);
    }
    expect(delivered).toBe(100 * 200);
    expect(released).toHaveLength(fs.length);
    expect(leaseCounters.unbalanced).toBe(0);
  });
});
