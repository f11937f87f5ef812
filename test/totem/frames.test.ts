// Proves a node's new frame leaves as the very buffer its messages were packed into: the MCAST
// header is written into the room in front of the frame, the host is told it may write its own
// header in front of that, and only a retransmission (encode) copies the frame.
import { expect, it } from 'vitest';
import { totemDriver, FAST_PROFILE } from '../../drivers/totem/index.ts';
import { decode, encode, encodeMcastAroundFrame, MCAST_HEADER_BYTES, type McastMsg } from '../../drivers/totem/codec.ts';
import type { RingLog } from '../../drivers/totem/ringlog.ts';
import type { DriverHost } from '../../core/driver/types.ts';

it('writes an MCAST around its frame with the same bytes encode() writes', () => {
  const room = new Uint8Array(5 + MCAST_HEADER_BYTES + 3);
  const frame = room.subarray(5 + MCAST_HEADER_BYTES);
  frame.set([7, 8, 9]);
  const m: McastMsg = { type: 'mcast', sender: 2, ring: { rep: 1, seq: 4 }, seq: 9, origin: 2, safe: true, frame };
  const d = encodeMcastAroundFrame(m);
  expect(d.buffer).toBe(room.buffer);
  expect(d.byteOffset).toBe(5);
  expect([...d]).toEqual([...encode(m)]);
});

it('hands the host each new frame in its own buffer, with the host\'s room in front (reserved)', () => {
  let now = 0;
  // Each MCAST with the frame the ring log holds for its seq at that moment.
  const sent: { bytes: Uint8Array; reserved: boolean; frame?: Uint8Array }[] = [];
  const late: { log?: () => RingLog } = {};
  const store = new Map<string, Uint8Array>();
  const host: DriverHost = {
    nodeId: 1, now: () => now, rng: () => 0.5, log: () => {},
    state: { load: (k) => store.get(k), save: (k, v) => { store.set(k, v); } },
    transmit: (_to, bytes, reserved) => {
      const m = decode(bytes, { rtrMax: 100, membersMax: 100 });
      if ('msg' in m && m.msg.type === 'mcast') sent.push({ bytes, reserved: reserved === true, frame: late.log?.().get(m.msg.seq)?.frame });
    },
    deliver: () => {}, configuration: () => {},
  };
  const headroom = 28;
  const d = totemDriver.create({ nodeId: 1, nodes: [1], mtu: 1400, messageSizeMax: 1 << 20, headroom },
    totemDriver.optionsSchema.parse({ ...FAST_PROFILE }), host);
  late.log = () => (d as unknown as { cur: RingLog }).cur;
  const run = (): void => { now = Math.max(now + 1, d.nextDeadline()); d.handleTimeout(); };
  d.start();
  for (let i = 0; i < 1000 && d.stats().state !== 'operational'; i++) run();
  expect(d.stats().state).toBe('operational');
  sent.length = 0;
  d.multicast([Uint8Array.of(1, 2), new Uint8Array(3000).fill(5)], 'agreed'); // fragmented: three frames
  for (let i = 0; i < 20; i++) run();
  expect(sent).toHaveLength(3);
  for (const { bytes, reserved, frame } of sent) {
    expect(frame).toBeDefined();
    expect(reserved).toBe(true);
    expect(bytes.buffer).toBe(frame?.buffer);
    expect(bytes.byteOffset + MCAST_HEADER_BYTES).toBe(frame?.byteOffset);
    expect(bytes.byteOffset).toBeGreaterThanOrEqual(headroom);
  }
});
