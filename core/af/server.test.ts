// Proves the bridge core's local security rules with a fake host (no sockets, a manual clock): half-sent large messages are charged by the bytes that arrived, within per-socket, per-user and per-node bounds, so the reservation attack (many sockets, many first parts of 1 byte announcing 1 MiB) costs the attacker its bytes, honest users' large sends go on during it, and everything is given back when the parts expire.
import { describe, expect, it } from 'vitest';
import { ERROR_NUMBERS } from '../api/errors.ts';
import { encodeBatch, encodeRequest, GATHER_BYTES_MIN, LARGE_DATAGRAM_MAX, OP_PROTOCOL_ERROR, SEND_HEADER_BYTES, SEND_PART_DATA_MAX, type Request } from './codec.ts';
import { PARTIAL_IDLE_MS, PARTIAL_OVERHEAD, PARTIALS_PER_SOCKET_MAX, partialLimits } from './server.ts';
import { FakeNode, limits, MiB } from '../../test/support/bridge-core.ts';
import { concatBytes } from '../wire/bytes.ts';
import { leaseCounters, poisonRelease, setReleaser } from '../wire/lease.ts';
import { SEND_WINDOW_MAX } from '../../sockapi/client.ts';

const firstPart = (msgId: number, total: number, data: Uint8Array): Request =>
  ({ type: 'sendPart', id: 0, order: 'agreed', msgId, total, offset: 0, data });

describe('bridge core: half-sent messages', () => {
  it('keeps what it holds of each part\'s datagram: a message in parts arrives intact though each datagram is released once let go', () => {
    setReleaser(poisonRelease); // a released datagram reads as 0xdb
    try {
      const node = new FakeNode({ anchored: true });
      const sender = node.client('/s.sock', 0);
      const receiver = node.client('/r.sock', 0);
      for (const c of [sender, receiver]) {
        expect(c.hello()).toBe(0);
        expect(c.status({ type: 'bind', id: 0, group: 'big', selfDelivery: false })).toBe(0);
      }
      const data = Uint8Array.from({ length: 5 * SEND_PART_DATA_MAX + 123 }, (_, i) => (i * 7) & 0xff);
      expect(sender.sendLarge(1, data)).toBe(0);
      const got = new Uint8Array(data.length);
      const parts = receiver.parts();
      for (const p of parts) got.set(p.data, p.offset);
      expect(parts.length).toBeGreaterThan(1);
      expect(Buffer.from(got).equals(Buffer.from(data))).toBe(true);
      expect(leaseCounters.unbalanced).toBe(0);
      expect(leaseCounters.released).toBeGreaterThanOrEqual(6); // every part's datagram went back
    } finally {
      setReleaser(undefined);
    }
  });

  const max = partialLimits(limits.messageSizeMax);

  it('has bounds that let every user send a largest message and no user take more than a quarter of the node', () => {
    expect(max).toEqual({ node: 64 * MiB, user: 16 * MiB, socket: 4 * MiB });
    for (const m of [1, 60_000, MiB, 16 * MiB, 64 * MiB]) {
      const b = partialLimits(m);
      expect(b.socket).toBeGreaterThanOrEqual(2 * m);
      expect(b.user).toBeGreaterThanOrEqual(b.socket);
      expect(b.user * 4).toBeLessThanOrEqual(b.node);
    }
  });

  it('the reservation attack costs the attacker its bytes; honest large sends go on; all is given back at expiry', () => {
    const node = new FakeNode();
    const honest = node.client('/h.sock', 0);
    const receiver = node.client('/r.sock', 0);
    for (const c of [honest, receiver]) {
      expect(c.hello()).toBe(0);
      expect(c.status({ type: 'bind', id: 0, group: 'big', selfDelivery: false })).toBe(0);
    }
    const arrayBuffersBefore = process.memoryUsage().arrayBuffers;
    // 17 sockets of user 1000, each 16 first parts of 1 byte announcing 1 MiB (the report's attack).
    const attackers = Array.from({ length: 17 }, (_, i) => node.client(`/a${i}.sock`, 1000));
    for (const a of attackers) {
      expect(a.hello()).toBe(0);
      expect(a.status({ type: 'bind', id: 0, group: 'big', selfDelivery: false })).toBe(0);
      for (let m = 1; m <= PARTIALS_PER_SOCKET_MAX; m++) expect(a.status(firstPart(m, MiB, Uint8Array.of(7)))).toBe(0);
      expect(a.status(firstPart(99, MiB, Uint8Array.of(7)))).toBe(ERROR_NUMBERS.EAGAIN); // 16 a socket
    }
    const reserved = 17 * PARTIALS_PER_SOCKET_MAX * (PARTIAL_OVERHEAD + 1);
    expect(node.stats()).toMatchObject({ partials: 17 * 16, partialBytes: reserved });
    // The attacker now sends real bytes on fresh sockets: it gets its user's share and no more.
    const fillers = Array.from({ length: 8 }, (_, i) => node.client(`/f${i}.sock`, 1000));
    let refused = 0;
    for (const f of fillers) {
      expect(f.hello()).toBe(0);
      expect(f.status({ type: 'bind', id: 0, group: 'big', selfDelivery: false })).toBe(0);
      for (let m = 1; m <= 3; m++) {
        const chunk = new Uint8Array(SEND_PART_DATA_MAX);
        let offset = 0;
        while (offset < MiB - SEND_PART_DATA_MAX) {
          const st = f.status({ type: 'sendPart', id: 0, order: 'agreed', msgId: m, total: MiB, offset, data: chunk });
          if (st !== 0) { expect(st).toBe(ERROR_NUMBERS.EAGAIN); refused++; break; }
          offset += chunk.length;
        }
      }
      expect(node.stats().partialBytes).toBeLessThanOrEqual(max.user);
    }
    expect(refused).toBeGreaterThan(0);
    const during = node.stats();
    expect(during.partialBytes).toBeLessThanOrEqual(max.user);
    expect(during.partialsRefused).toBeGreaterThan(0);
    // The daemon's own memory for it stays under the node's bound (no 256 MB of reservations).
    expect(process.memoryUsage().arrayBuffers - arrayBuffersBefore).toBeLessThan(max.node);
    // Meanwhile root's 1 MiB messages, two at a time on two sockets, go through whole.
    const honest2 = node.client('/h2.sock', 0);
    expect(honest2.hello()).toBe(0);
    expect(honest2.status({ type: 'bind', id: 0, group: 'big', selfDelivery: false })).toBe(0);
    const payload = Uint8Array.from({ length: MiB }, (_, i) => (i * 31) % 251);
    expect(honest.sendLarge(1, payload)).toBe(0);
    expect(honest2.sendLarge(1, payload.slice().reverse())).toBe(0);
    const parts = receiver.parts();
    const got = new Map<number, Uint8Array>();
    for (const p of parts) {
      const buf = got.get(p.msgId) ?? new Uint8Array(p.total);
      buf.set(p.data, p.offset);
      got.set(p.msgId, buf);
    }
    const same = (x: Uint8Array | undefined, y: Uint8Array): boolean => x !== undefined && Buffer.from(x).equals(Buffer.from(y));
    expect(got.size).toBe(2);
    expect(same([...got.values()][0], payload) && same([...got.values()][1], payload.slice().reverse())).toBe(true);
    // Abandoned parts expire, and every byte is given back.
    node.t += PARTIAL_IDLE_MS + 1;
    node.bridge.tick();
    const after = node.stats();
    expect(after).toMatchObject({ partials: 0, partialBytes: 0 });
    expect(after.partialsExpired).toBe(during.partials);
    expect(honest.sendLarge(2, payload)).toBe(0); // and room for everyone again
  });

  it('refuses a part that would pass the socket\'s bound, dropping the message; other sockets of the user go on', () => {
    const node = new FakeNode();
    const a = node.client('/a.sock', 1000);
    const b = node.client('/b.sock', 1000);
    for (const c of [a, b]) {
      expect(c.hello()).toBe(0);
      expect(c.status({ type: 'bind', id: 0, group: 'g', selfDelivery: false })).toBe(0);
    }
    const chunk = new Uint8Array(SEND_PART_DATA_MAX);
    let sent = 0, status = 0;
    for (let m = 1; status === 0; m++) {
      for (let offset = 0; offset + chunk.length < MiB && status === 0; offset += chunk.length) {
        status = a.status({ type: 'sendPart', id: 0, order: 'agreed', msgId: m, total: MiB, offset, data: chunk });
        if (status === 0) sent += chunk.length;
      }
    }
    expect(status).toBe(ERROR_NUMBERS.EAGAIN);
    expect(sent).toBeLessThanOrEqual(max.socket);
    expect(sent).toBeGreaterThan(max.socket - MiB - chunk.length);
    expect(b.sendLarge(1, new Uint8Array(MiB))).toBe(0);
    // A first part from a socket that is not bound is refused at once.
    const c = node.client('/c.sock', 1000);
    expect(c.hello()).toBe(0);
    expect(c.status(firstPart(1, MiB, Uint8Array.of(1)))).toBe(ERROR_NUMBERS.ENOTCONN);
    expect(c.status(firstPart(2, MiB + 1, Uint8Array.of(1)))).toBe(ERROR_NUMBERS.EMSGSIZE);
    // A socket that closes gives its parts back.
    expect(a.status({ type: 'close', id: 0 })).toBe(0);
    expect(node.stats().partialBytes).toBe(0);
  });

  it('hands a send on as a view of its datagram when it fills most of it, and copies one that does not', () => {
    const node = new FakeNode();
    const c = node.client('/v.sock', 0);
    expect(c.hello()).toBe(0);
    expect(c.status({ type: 'bind', id: 0, group: 'g', selfDelivery: false })).toBe(0);
    const base = node.multicasts.length; // the bind's own announcement went before
    const payloadOf = (i: number): Uint8Array => {
      const m = node.multicasts[base + i];
      return m instanceof Uint8Array ? m : m[m.length - 1];
    };
    // Alone in its datagram: the driver gets a view of it (the one copy is into a frame).
    const big = new Uint8Array(40_000).fill(5);
    node.bridge.datagram(encodeRequest({ type: 'send', id: 1, order: 'agreed', data: big, resume: false }), '/v.sock');
    node.pump();
    expect(payloadOf(0)).toEqual(big);
    expect(payloadOf(0).buffer.byteLength).toBeLessThan(2 * big.length);
    // A small send beside filler (a large one in the same container): copied, so that queueing it
    // does not keep the container alive; the large one stays a view of the container.
    const small = Uint8Array.of(1, 2, 3);
    node.bridge.datagram(encodeBatch([
      encodeRequest({ type: 'send', id: 2, order: 'agreed', data: small, resume: false }),
      encodeRequest({ type: 'send', id: 3, order: 'agreed', data: big, resume: false }),
    ]), '/v.sock');
    node.pump();
    expect(payloadOf(1)).toEqual(small);
    expect(payloadOf(1).buffer.byteLength).toBeLessThan(big.length); // its own bytes, or a slice of a 32 KiB slab: not the container's
    expect(payloadOf(1).buffer).not.toBe(payloadOf(2).buffer);
    expect(payloadOf(2)).toEqual(big);
    expect(payloadOf(2).buffer.byteLength).toBeGreaterThan(big.length);
  });

  it('hands a small send on as a view of its container when the driver copies messages that size before multicast() returns', () => {
    // The driver keeps nothing of such a message, so the view keeps no container alive; a message
    // over the driver's size (with its group header) is still copied.
    const node = new FakeNode({ multicastCopiesUpTo: 1000 });
    const c = node.client('/v.sock', 0);
    expect(c.hello()).toBe(0);
    expect(c.status({ type: 'bind', id: 0, group: 'g', selfDelivery: false })).toBe(0);
    const base = node.multicasts.length;
    const payloadOf = (i: number): Uint8Array => {
      const m = node.multicasts[base + i];
      return m instanceof Uint8Array ? m : m[m.length - 1];
    };
    const small = new Uint8Array(900).fill(1);
    const over = new Uint8Array(990).fill(2); // 990 bytes and the header are over 1000
    const big = new Uint8Array(40_000).fill(5);
    node.bridge.datagram(encodeBatch([
      encodeRequest({ type: 'send', id: 1, order: 'agreed', data: small, resume: false }),
      encodeRequest({ type: 'send', id: 2, order: 'agreed', data: over, resume: false }),
      encodeRequest({ type: 'send', id: 3, order: 'agreed', data: big, resume: false }),
    ]), '/v.sock');
    node.pump();
    expect([payloadOf(0), payloadOf(1), payloadOf(2)]).toEqual([small, over, big]);
    expect(payloadOf(0).buffer).toBe(payloadOf(2).buffer); // a view of the container, not copied
    expect(payloadOf(1).buffer).not.toBe(payloadOf(2).buffer); // copied: the driver may keep it
  });
});

describe('bridge core: a container\'s SENDs read where they lie', () => {
  it('a SEND after a CLOSE in the same container is answered as for a socket that is gone, not sent', () => {
    const node = new FakeNode();
    const c = node.client('/gone.sock', 0);
    expect(c.hello(4)).toBe(0); // containers (version 2 on)
    expect(c.status({ type: 'bind', id: 0, group: 'g', selfDelivery: false })).toBe(0);
    const sent = node.multicasts.length;
    const bad = node.stats().badRequests;
    const data = Uint8Array.of(1, 2, 3);
    node.bridge.datagram(encodeBatch([
      encodeRequest({ type: 'send', id: 101, order: 'agreed', data, resume: false }),
      encodeRequest({ type: 'close', id: 102 }),
      encodeRequest({ type: 'send', id: 103, order: 'agreed', data, resume: false }),
    ]), c.path);
    node.pump();
    const replies = (node.inbox.get(c.path) ?? []).flatMap((d) => (d.type === 'reply' && d.reply.id > 100 ? [[d.reply.id, d.reply.status]] : []));
    expect(replies).toEqual([[101, 0], [102, 0], [103, ERROR_NUMBERS.EPROTO]]);
    expect(node.multicasts.length - sent).toBe(2); // the first SEND, and the LEAVE of the close
    expect(node.stats().badRequests).toBe(bad + 1);
  });
});

describe('bridge core: message events to clients of every version', () => {
  it('small ones written into containers, large ones and ones in fragments encoded: the same events byte for byte', () => {
    for (const fragmentBytes of [undefined, 4000]) {
      const node = new FakeNode({ largeDatagrams: true, ...(fragmentBytes ? { fragmentBytes } : {}) });
      const clients = [1, 2, 4, 5].map((v) => {
        const c = node.client(`/v${v}.sock`, 0);
        expect(c.hello(v === 1 ? undefined : v)).toBe(0);
        expect(c.status({ type: 'bind', id: 0, group: 'grüppe', selfDelivery: true })).toBe(0);
        return c;
      });
      const sizes = fragmentBytes ? [12_000, 100] : [0, 100, GATHER_BYTES_MIN - 1, GATHER_BYTES_MIN, 40_000];
      const sent = sizes.map((n, i) => new Uint8Array(n).map((_, j) => (i * 13 + j) & 0xff));
      for (const data of sent) expect(clients[3].status({ type: 'send', id: 0, order: 'safe', data })).toBe(0);
      for (const c of clients) {
        const got = c.events().filter((e) => e.type === 'message');
        expect(c.parts()).toEqual([]); // every one fits a MESSAGE datagram of every version
        expect(got.map((e) => (e.type === 'message' ? e.data : undefined))).toEqual(sent);
        for (const e of got) expect(e).toMatchObject({ group: 'grüppe', order: 'safe', sender: { nodeId: 1, pid: clients[3].pid } });
      }
    }
  });
});

describe('bridge core: replies to a client that is not reading', () => {
  it('keeps a reply for every SEND of a full window while the client\'s queue is full, and sends them all once it reads', () => {
    const node = new FakeNode();
    const c = node.client('/w.sock', 0);
    expect(c.hello(2)).toBe(0);
    expect(c.status({ type: 'bind', id: 0, group: 'g', selfDelivery: false })).toBe(0);
    node.full.add(c.path); // the client is busy sending: its kernel queue is full
    const before = node.inbox.get(c.path)?.length ?? 0;
    // The reference client keeps up to SEND_WINDOW_MAX sends unanswered; in containers, as it sends them.
    for (let i = 0; i < SEND_WINDOW_MAX; i += 64) {
      const sends = Array.from({ length: 64 }, (_, k) => encodeRequest({ type: 'send', id: 1000 + i + k, order: 'agreed', data: Uint8Array.of(i & 0xff, k) }));
      node.bridge.datagram(encodeBatch(sends), c.path);
      node.pump();
    }
    expect(node.inbox.get(c.path)?.length ?? 0).toBe(before); // nothing got through yet
    node.drained(c.path);
    const replies = (node.inbox.get(c.path) ?? []).flatMap((d) => (d.type === 'reply' && d.reply.id >= 1000 ? [d.reply] : []));
    expect(replies.map((r) => r.id)).toEqual(Array.from({ length: SEND_WINDOW_MAX }, (_, i) => 1000 + i));
    expect(replies.every((r) => r.status === 0)).toBe(true);
    expect(node.stats().repliesDropped ?? 0).toBe(0);
  });
});

describe('bridge core: version 5, datagrams over 64 KiB', () => {
  const send = (n: number): Request => ({ type: 'send', id: 0, order: 'agreed', data: new Uint8Array(n).fill(5) });

  it('a daemon whose sockets cannot take them answers HELLO 5 as an unknown version (EPROTO); HELLO 4 works', () => {
    const node = new FakeNode({ largeDatagrams: false });
    const c = node.client('/c.sock', 0);
    const r = c.request({ type: 'hello', id: 0, pid: c.pid, version: 5 });
    expect(r).toMatchObject({ op: OP_PROTOCOL_ERROR, status: ERROR_NUMBERS.EPROTO });
    expect(c.hello(4)).toBe(0);
    // A new process at a dead client's path (its entry not yet noticed gone): the answer still
    // reaches the new one, from the main socket, not through the old entry's connection.
    node.stale.add('/c.sock');
    const again = c.request({ type: 'hello', id: 0, pid: c.pid + 1, version: 5 });
    expect(again).toMatchObject({ op: OP_PROTOCOL_ERROR, status: ERROR_NUMBERS.EPROTO });
  });

  it("answers HELLO 5 with EPROTO when the socket it opens for the client could not send them (its send buffer); HELLO 4 works", () => {
    const node = new FakeNode({ largeDatagrams: true, smallClientSockets: true });
    const c = node.client('/c.sock', 0);
    const before = node.bridge.stats().badRequests;
    expect(c.request({ type: 'hello', id: 0, pid: c.pid, version: 5 })).toMatchObject({ op: OP_PROTOCOL_ERROR, status: ERROR_NUMBERS.EPROTO });
    expect(node.bridge.stats().badRequests).toBe(before + 1); // as a daemon that cannot take version 5 counts it
    expect(c.hello(4)).toBe(0);
    expect(c.status({ type: 'bind', id: 0, group: 'g', selfDelivery: true })).toBe(0);
    const d = node.client('/d.sock', 0); // the next client: refused the same way, not logged again
    expect(d.request({ type: 'hello', id: 0, pid: d.pid, version: 5 })).toMatchObject({ op: OP_PROTOCOL_ERROR, status: ERROR_NUMBERS.EPROTO });
    expect(node.logs.filter((l) => l.startsWith('warn a client socket cannot send version 5'))).toHaveLength(1);
  });

  it('carries a SEND and a MESSAGE of up to 192 KiB for a version-5 socket, in 64 KiB parts to a version-4 one', () => {
    const node = new FakeNode({ largeDatagrams: true });
    const v5 = node.client('/v5.sock', 0);
    const v4 = node.client('/v4.sock', 0);
    expect(v5.hello(5)).toBe(0);
    expect(v4.hello(4)).toBe(0);
    for (const c of [v5, v4]) expect(c.status({ type: 'bind', id: 0, group: 'g', selfDelivery: true })).toBe(0);
    const biggest = LARGE_DATAGRAM_MAX - SEND_HEADER_BYTES;
    expect(v5.status(send(biggest + 1))).toBe(ERROR_NUMBERS.EMSGSIZE); // one byte over the datagram
    expect(v4.status(send(70_000))).toBe(ERROR_NUMBERS.EMSGSIZE); // version 4: 64 KiB datagrams
    expect(v5.status(send(150_000))).toBe(0);
    const whole = v5.events().filter((e) => e.type === 'message');
    expect(whole.map((e) => e.type === 'message' && e.data.length)).toEqual([150_000]);
    expect(v5.parts()).toEqual([]);
    expect(v4.events().filter((e) => e.type === 'message')).toEqual([]);
    const parts = v4.parts();
    expect(parts.length).toBe(3); // in parts of under 64 KiB
    expect(parts.reduce((n, p) => n + p.data.length, 0)).toBe(150_000);
    // The largest SEND fills the datagram; its MESSAGE has a longer header, so even a version-5
    // socket gets it in two parts.
    expect(v5.status(send(biggest))).toBe(0);
    expect(v5.parts().map((p) => p.total)).toEqual([biggest, biggest]);
  });

  it('a message delivered in fragments goes to a version-5 socket gathered from them, to a version-4 one in parts, byte for byte', () => {
    const node = new FakeNode({ largeDatagrams: true, fragmentBytes: 40_000 });
    const v5 = node.client('/v5.sock', 0);
    const v4 = node.client('/v4.sock', 0);
    expect(v5.hello(5)).toBe(0);
    expect(v4.hello(4)).toBe(0);
    for (const c of [v5, v4]) expect(c.status({ type: 'bind', id: 0, group: 'g', selfDelivery: true })).toBe(0);
    const data = new Uint8Array(150_000).map((_, i) => (i * 7) % 251);
    const before = node.gathered.length;
    expect(v5.status({ type: 'send', id: 0, order: 'agreed', data })).toBe(0);
    // Four fragments of the group layer's message: the header, then the payload in four pieces
    // (the first fragment's rest and three more), none joined.
    expect(node.gathered.slice(before)).toEqual([5]);
    const got = v5.events().filter((e) => e.type === 'message');
    expect(got.map((e) => e.type === 'message' && Buffer.from(e.data).equals(data))).toEqual([true]);
    const parts = v4.parts();
    expect(concatBytes(parts.sort((a, b) => a.offset - b.offset).map((p) => p.data))).toEqual(data);
  });
});

