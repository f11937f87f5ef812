// GroupService over an ideal ordered bus: same sequence everywhere, every leave reason, merges with state exchange, hostile payloads and senders outside the configuration, limits and EAGAIN.
import { describe, expect, it } from 'vitest';
import { GroupService, PartedMessage, driverMessageSizeMax, eventParts, keepEvent } from '../../core/groups/service.ts';
import { EmbeddedSocket } from '../../core/groups/embedded.ts';
import { WritableSignal } from '../../core/api/queue.ts';
import type { MemberIdentity, SocketEvent } from '../../core/api/types.ts';
import { dataOverhead, encodeData, encodeJoin, encodeExchange } from '../../core/groups/codec.ts';
import { isClusterError } from '../../core/api/errors.ts';
import type { NodeConfig } from '../../core/config/types.ts';
import { ALL_GUARANTEES, TestBus, type BusOptions } from '../support/bus.ts';
import { Recorder, TEST_LIMITS, expectSameSequences, fmtMember, type TestSocket } from '../support/groups.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

class Cluster {
  readonly bus: TestBus;
  readonly svcs = new Map<number, GroupService>();
  readonly sockets: TestSocket[] = [];
  private nextPort = 1;
  constructor(nodes: number[], private readonly opts: BusOptions & { limits?: Partial<NodeConfig['limits']>; together?: boolean } = {}) {
    // The bus refuses what a real driver configured by driverMessageSizeMax() would refuse.
    this.bus = new TestBus({ messageSizeMax: driverMessageSizeMax({ ...TEST_LIMITS, ...opts.limits }), ...opts });
    for (const n of nodes) this.boot(n);
    if (opts.together ?? true) { this.bus.configure([nodes]); this.bus.run(); }
  }
  /** A fresh GroupService for node n (a start, or a restart after bus.crash(n)). */
  boot(n: number): GroupService {
    const svc = new GroupService({
      nodeId: n, limits: { ...TEST_LIMITS, ...this.opts.limits }, multicast: this.bus.multicastFor(n),
      guarantees: this.bus.guarantees, log: () => {}, driverName: 'bus',
    });
    this.svcs.set(n, svc);
    this.bus.attach(n, svc);
    return svc;
  }
  svc(n: number): GroupService { return this.svcs.get(n)!; }
  open(node: number, pid = 100 + node, capacity = Infinity, identity?: MemberIdentity): TestSocket {
    const svc = this.svc(node);
    const rec = new Recorder(capacity, {
      stamp: () => this.bus.tick,
      ring: () => { const r = svc.localNode().ringId; return `${r.rep}.${r.seq}`; },
    });
    const s = { node, rec, svc, ep: svc.open({ pid, port: this.nextPort++, ...(identity ? { identity } : {}) }, rec) };
    this.sockets.push(s);
    return s;
  }
  run(): void { this.bus.run(); }
  view(node: number, group: string): string[] { return this.svc(node).groupMembers(group).map(fmtMember); }
}

function expectCode(fn: () => unknown, code: string): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(isClusterError(err) ? err.code : String(err)).toBe(code);
}

describe('GroupService', () => {
  it('drops and counts a message from a node outside the configuration, also one that sent the message before', () => {
    const c = new Cluster([1, 2, 3]);
    const a = c.open(1), z = c.open(3);
    a.ep.bind('g'); z.ep.bind('g'); c.run();
    z.ep.send(enc('in'), 'agreed'); c.run();
    expect(a.rec.events.filter((e) => e.type === 'message')).toHaveLength(1); // node 3 was the last sender node 1 checked
    c.bus.configure([[1, 2], [3]]); c.run();
    const foreign = () => c.svc(1).stats().foreignSender ?? 0;
    const before = foreign();
    c.svc(1).deliver(3, encodeData('g', z.ep.member.pid, z.ep.member.port, enc('late')), 'agreed');
    expect(foreign()).toBe(before + 1);
    expect(a.rec.events.filter((e) => e.type === 'message')).toHaveLength(1);
  });

  it('an embedded socket keeps the bytes of what it received although the payload is scribbled over after the call', async () => {
    // The test bus scribbles over every payload after deliver(): a view kept past the call shows it.
    const c = new Cluster([1, 2]);
    const open = (node: number) => new EmbeddedSocket({
      groups: c.svc(node), pid: 500 + node, port: 1, writable: new WritableSignal(),
      eventQueueMax: 100, eventQueueBytesMax: 1 << 20, onClose: () => {},
    });
    const [a, b] = [open(1), open(2)];
    const bound = [a.bind('keep'), b.bind('keep')];
    c.run();
    await Promise.all(bound);
    const sent = ['first', 'second', 'third'];
    for (const text of sent) { const p = a.send(text, { order: 'agreed' }); c.run(); await p; }
    const got: string[] = [];
    const it_ = b[Symbol.asyncIterator]();
    while (got.length < sent.length) {
      const ev = (await it_.next()).value as SocketEvent;
      if (ev.type === 'message') got.push(new TextDecoder().decode(ev.data));
    }
    expect(got).toEqual(sent);
  });

  it('a message delivered in fragments reaches every socket whole; its payload goes on in them when the first holds the header', () => {
    const text = `${'x'.repeat(300)}end`;
    const size = dataOverhead('frag'.length) + text.length;
    // Fragments of 5 bytes cut the header: joined, then read as a whole message. Fragments of
    // 40 bytes: the header is in the first, the payload goes on in its rest and the others.
    // 1000 bytes: the message comes whole.
    for (const [fragmentBytes, pieces] of [[5, undefined], [40, Math.ceil(size / 40)], [1000, undefined]] as const) {
      const c = new Cluster([1, 2], { fragmentBytes });
      const seen: { pieces?: number; text: string }[] = [];
      const a = c.open(1);
      const b = c.svc(2).open({ pid: 900, port: 1 }, {
        event: (ev) => {
          if (ev.type === 'message') seen.push({ ...(eventParts(ev) ? { pieces: eventParts(ev)?.length } : {}), text: new TextDecoder().decode(ev.data) });
          return true;
        },
        overrun: () => undefined,
      });
      a.ep.bind('frag');
      b.bind('frag');
      c.run();
      a.ep.send(enc(text), 'agreed');
      c.run();
      expect(seen, `fragments of ${fragmentBytes}`).toEqual([{ ...(pieces ? { pieces } : {}), text }]);
      // The sender's own socket kept the event (keepEvent) and reads it after the bus scribbled over the fragments.
      const kept = a.rec.events.filter((e) => e.type === 'message');
      expect(kept.map((e) => e.type === 'message' && new TextDecoder().decode(e.data))).toEqual([text]);
      expect(c.svc(2).stats().malformed ?? 0).toBe(0);
    }
  });

  it('keepEvent gives each keeper of a message that came in fragments bytes of its own', () => {
    const member = { nodeId: 1, pid: 2, port: 3 };
    const pieces = [Uint8Array.of(1, 2), Uint8Array.of(3)];
    const ev = new PartedMessage('g', member, 'agreed', pieces);
    const [x, y] = [keepEvent(ev), keepEvent(ev)];
    expect(x.type === 'message' && x.data).toEqual(Uint8Array.of(1, 2, 3));
    if (x.type === 'message') x.data[0] = 9; // one application writes into its message
    expect(y.type === 'message' && y.data).toEqual(Uint8Array.of(1, 2, 3));
    expect(ev.data).toEqual(Uint8Array.of(1, 2, 3));
  });

  it('a socket that moves to another group sends there under that group\'s name (its DATA header made again)', () => {
    const c = new Cluster([1, 2]);
    const a = c.open(1), g1 = c.open(2), g2 = c.open(2);
    a.ep.bind('one'); g1.ep.bind('one'); g2.ep.bind('two');
    c.run();
    a.ep.send(enc('first'), 'agreed'); a.ep.send(enc('second'), 'agreed'); c.run();
    a.ep.unbind(); c.run();
    a.ep.bind('two'); c.run();
    a.ep.send(enc('third'), 'agreed'); c.run();
    const me = `1/${a.ep.member.pid}/${a.ep.member.port}`;
    expect(g1.rec.log.filter((l) => l.startsWith('msg'))).toEqual([`msg one from ${me} agreed first`, `msg one from ${me} agreed second`]);
    expect(g2.rec.log.filter((l) => l.startsWith('msg'))).toEqual([`msg two from ${me} agreed third`]);
  });

  it('gives every endpoint of a group the same sequence of joins, messages and leaves', () => {
    const c = new Cluster([1, 2, 3]);
    const s = [1, 2, 3, 1, 2, 3].map((n) => c.open(n));
    s.forEach((x, i) => x.ep.bind(i % 2 === 0 ? 'alpha' : 'beta'));
    for (let round = 0; round < 3; round++) s.forEach((x, i) => x.ep.send(enc(`m${round}.${i}`), 'agreed'));
    c.run();
    s[0].ep.unbind(); s[4].ep.send(enc('after'), 'safe');
    c.run();
    expect(expectSameSequences(c.sockets, 'alpha')).toBeGreaterThan(20);
    expect(expectSameSequences(c.sockets, 'beta')).toBeGreaterThan(20);
    // The joiner's first event is the membership event that includes itself.
    expect(s[1].rec.log[0]).toBe('regular beta ring 1.1 [2/102/2] +[2/102/2:join] -[]');
    expect(s[2].rec.log.at(-2)).toMatch(/-\[1\/101\/1:leave\]$/);
    expect(s[2].rec.log.at(-1)).toBe('msg alpha from 2/102/5 safe after');
    expect(s[0].rec.log.some((l) => l.includes('after'))).toBe(false);
    for (const n of [1, 2, 3]) expect(c.view(n, 'alpha')).toEqual(['2/102/5', '3/103/3']);
    expect(s[1].ep.members().map(fmtMember)).toEqual(['1/101/4', '2/102/2', '3/103/6']);
  });

  it('deliverAt reads a message where it lies and follows its group as it is dropped and made again, and as messages alternate between groups', () => {
    const c = new Cluster([1]);
    const svc = c.svc(1);
    const a = c.open(1), b = c.open(1), d = c.open(1);
    a.ep.bind('g'); d.ep.bind('h');
    c.run();
    // A DATA message in the middle of a frame whose other bytes are not it.
    const at = (group: string, s: TestSocket, text: string): void => {
      const m = encodeData(group, s.ep.member.pid, s.ep.member.port, enc(text));
      const frame = new Uint8Array(m.length + 11).fill(0x47);
      frame.set(m, 5);
      svc.deliverAt(1, frame, 5, 5 + m.length, 'agreed');
      frame.fill(0xee); // nobody keeps a view past the call
    };
    const msgs = (s: TestSocket): string[] => s.rec.log.filter((l) => l.startsWith('msg'));
    at('g', a, 'one'); at('h', d, 'two'); at('g', a, 'three'); at('h', d, 'four');
    expect(msgs(a)).toEqual(['msg g from 1/101/1 agreed one', 'msg g from 1/101/1 agreed three']);
    expect(msgs(d)).toEqual(['msg h from 1/101/3 agreed two', 'msg h from 1/101/3 agreed four']);
    // g loses its only member (the group is forgotten), then b makes it again.
    a.ep.unbind();
    c.run();
    const notMember = svc.stats().dataNotMember;
    at('g', a, 'after-leave');
    expect(svc.stats().dataNotMember).toBe(notMember + 1);
    b.ep.bind('g');
    c.run();
    at('g', b, 'five');
    at('g', a, 'not-a-member');
    expect(msgs(b)).toEqual(['msg g from 1/101/2 agreed five']);
    expect(msgs(a)).toHaveLength(2);
    expect(svc.stats().dataNotMember).toBe(notMember + 2);
    // a comes back and sends, then leaves while b stays: its next message is not a member's.
    a.ep.bind('g');
    c.run();
    at('g', a, 'back');
    a.ep.unbind();
    c.run();
    at('g', a, 'gone');
    expect(msgs(b).slice(1)).toEqual(['msg g from 1/101/1 agreed back']);
    expect(svc.stats().dataNotMember).toBe(notMember + 3);
  });

  it('deliverAt follows a group whose local endpoints all leave and come back while a remote member keeps it alive', () => {
    const c = new Cluster([1, 2]);
    const svc = c.svc(1);
    const a = c.open(1), r = c.open(2);
    a.ep.bind('g'); r.ep.bind('g');
    c.run();
    const at = (text: string): void => {
      const m = encodeData('g', r.ep.member.pid, r.ep.member.port, enc(text));
      const frame = new Uint8Array(m.length + 4).fill(0x47);
      frame.set(m, 2);
      svc.deliverAt(2, frame, 2, 2 + m.length, 'agreed');
    };
    at('one');
    a.ep.unbind(); // node 1 has no active endpoint in g; the group lives on through r
    c.run();
    at('two');
    a.ep.bind('g');
    c.run();
    at('three');
    expect(a.rec.log.filter((l) => l.startsWith('msg')).map((l) => l.split(' ').at(-1))).toEqual(['one', 'three']);
  });

  it('suppresses the sender\'s own copy with selfDelivery false', () => {
    const c = new Cluster([1, 2]);
    const a = c.open(1); const b = c.open(2);
    a.ep.bind('g', { selfDelivery: false }); b.ep.bind('g');
    c.run();
    a.ep.send(enc('from-a'), 'agreed'); b.ep.send(enc('from-b'), 'agreed');
    c.run();
    expect(a.rec.log.filter((l) => l.startsWith('msg'))).toEqual(['msg g from 2/102/2 agreed from-b']);
    expect(b.rec.log.filter((l) => l.startsWith('msg'))).toHaveLength(2);
  });

  it('reports a node that fails as nodedown: transitional event, then the regular one after the exchange', () => {
    const c = new Cluster([1, 2, 3]);
    const s = [1, 2, 3].map((n) => c.open(n));
    s.forEach((x) => x.ep.bind('g'));
    c.run();
    c.bus.crash(3);
    c.run();
    const tail = s[0].rec.log.slice(-2);
    expect(tail[0]).toMatch(/^transitional g ring 1\.2 \[1\/101\/1 2\/102\/2\] \+\[\] -\[3\/103\/3:nodedown\]/);
    expect(tail[1]).toMatch(/^regular g ring 1\.2 \[1\/101\/1 2\/102\/2\] \+\[\] -\[\]/);
    expectSameSequences(c.sockets.slice(0, 2), 'g');
    expect(c.view(1, 'g')).toEqual(c.view(2, 'g'));
  });

  it('reports nodedown in the regular event when the driver gives no transitional configuration', () => {
    const c = new Cluster([1, 2, 3], { transitional: false });
    const s = [1, 2, 3].map((n) => c.open(n));
    s.forEach((x) => x.ep.bind('g'));
    c.run();
    c.bus.crash(2);
    c.run();
    expect(s[0].rec.log.at(-1)).toMatch(/^regular g ring 1\.2 \[1\/101\/1 3\/103\/3\] \+\[\] -\[2\/102\/2:nodedown\]/);
    expectSameSequences([s[0], s[2]], 'g');
  });

  it('reports a dead process as procdown and a full receive queue as overrun', () => {
    const c = new Cluster([1, 2]);
    const a = c.open(1, 500); const a2 = c.open(1, 500); const b = c.open(2); const slow = c.open(2, 900, 3);
    for (const x of [a, a2, b, slow]) x.ep.bind('g');
    c.run();
    c.svc(1).processDown(500);
    c.run();
    expect(b.rec.log.slice(-2)).toEqual([
      'regular g ring 1.1 [1/500/2 2/102/3 2/900/4] +[] -[1/500/1:procdown]',
      'regular g ring 1.1 [2/102/3 2/900/4] +[] -[1/500/2:procdown]']);
    b.ep.send(enc('x'), 'agreed');
    c.run();
    expect(slow.rec.overruns).toBe(1);
    expect(b.rec.log.at(-1)).toMatch(/^regular g .* \[2\/102\/3\] \+\[\] -\[2\/900\/4:overrun\]/);
    expect(slow.ep.group()).toBeUndefined();
    expectCode(() => slow.ep.send(enc('y'), 'agreed'), 'ENOTCONN');
    // An overrun socket may bind again once it has caught up.
    expect(c.view(1, 'g')).toEqual(['2/102/3']);
  });

  // With fragmentBytes, the bus hands every message longer than that up in pieces (deliverParts),
  // control messages and the state exchange included: the same events must come out.
  const mergeScenario = (fragmentBytes?: number) => () => {
    const c = new Cluster([1, 2, 3], { together: false, ...(fragmentBytes ? { fragmentBytes } : {}) });
    c.bus.configure([[1, 2], [3]]);
    const a = c.open(1); const b = c.open(2); const x = c.open(3);
    a.ep.bind('g'); b.ep.bind('g'); x.ep.bind('g');
    c.run();
    expect(c.view(1, 'g')).toEqual(['1/101/1', '2/102/2']);
    expect(c.view(3, 'g')).toEqual(['3/103/3']);
    // Messages queued before the merge are delivered after it, during the exchange: held.
    a.ep.send(enc('early-a'), 'agreed'); x.ep.send(enc('early-x'), 'agreed');
    c.bus.configure([[1, 2, 3]], { flush: false });
    c.run();
    for (const n of [1, 2, 3]) expect(c.view(n, 'g')).toEqual(['1/101/1', '2/102/2', '3/103/3']);
    const since = (r: Recorder): string[] => r.log.slice(r.log.findIndex((l) => l.includes('ring 1.3')));
    expect(since(a.rec)[0]).toBe('regular g ring 1.3 [1/101/1 2/102/2 3/103/3] +[3/103/3:join] -[]');
    expect(since(x.rec)[0]).toBe('regular g ring 1.3 [1/101/1 2/102/2 3/103/3] +[1/101/1:join 2/102/2:join] -[]');
    for (const r of [a.rec, b.rec, x.rec]) expect(since(r).slice(1)).toEqual(['msg g from 1/101/1 agreed early-a', 'msg g from 3/103/3 agreed early-x']);
    expect(c.svc(1).stats().heldMessages).toBe(2);
  };
  it('merges partitions: the state exchange teaches both sides each other\'s groups, in one regular event', mergeScenario());
  it('merges partitions the same way when every message arrives in fragments (held ones joined during the exchange)', mergeScenario(24));

  it('tells every node who each member is, by its joins and by the state exchange after a merge', () => {
    for (const vs of [true, false]) {
      const guarantees = vs ? undefined : { fifo: true, agreed: false, safe: false, virtualSynchrony: false };
      const c = new Cluster([1, 2, 3], { together: false, ...(guarantees ? { guarantees, transitional: false } : {}) });
      c.bus.configure([[1, 2], [3]]);
      const alice = { uid: 1000, gid: 1000, verified: true }, bob = { uid: 2000, gid: 3000, verified: false };
      const a = c.open(1, 101, Infinity, alice); const b = c.open(2); const x = c.open(3, 103, Infinity, bob);
      a.ep.bind('g'); b.ep.bind('g'); x.ep.bind('g');
      c.run();
      expect(b.ep.memberInfo()).toEqual([{ member: a.ep.member, identity: alice }, { member: b.ep.member }]);
      c.bus.configure([[1, 2, 3]], { flush: false });
      c.run();
      const all = [{ member: a.ep.member, identity: alice }, { member: b.ep.member }, { member: x.ep.member, identity: bob }];
      for (const s of [a, b, x]) expect(s.ep.memberInfo()).toEqual(all);
      // A member that leaves takes its identity along; back in, it says again who it is.
      a.ep.unbind(); c.run();
      expect(x.ep.memberInfo()).toEqual(all.slice(1));
      a.ep.bind('g'); c.run();
      expect(x.ep.memberInfo()).toEqual(all);
    }
  });

  it('learns a report that spans several parts', () => {
    const c = new Cluster([1, 2], { together: false, limits: { messageSizeMax: 100, membersMax: 64 } });
    c.bus.configure([[1], [2]]);
    const a = c.open(1);
    a.ep.bind('big');
    for (let i = 0; i < 40; i++) c.open(2, 500 + i).ep.bind('big');
    c.run();
    c.bus.configure([[1, 2]]);
    c.run();
    expect(c.view(1, 'big')).toHaveLength(41);
    expect(c.view(1, 'big')).toEqual(c.view(2, 'big'));
    expect(a.rec.log.at(-1)).toMatch(/^regular big ring 1\.3 .* \+\[(2\/5\d\d\/\d+:join ?){40}\] -\[\]$/);
    // Node 2's report of 40 members does not fit one part at this size.
    const members = Array.from({ length: 40 }, (_, i) => ({ pid: 500 + i, port: 1 }));
    expect(encodeExchange({ rep: 1, seq: 3 }, [{ group: 'big', members }], 100 + dataOverhead(64), { allSeen: false, expected: 1 }).length).toBeGreaterThan(1);
  });

  it('finishes an interrupted exchange identically on the nodes that stay together', () => {
    const c = new Cluster([1, 2, 3, 4], { together: false });
    c.bus.configure([[1, 2], [3, 4]]);
    const s = [1, 2, 3, 4].map((n) => c.open(n));
    s.forEach((x) => x.ep.bind('g'));
    c.run();
    c.bus.configure([[1, 2, 3, 4]]);
    c.bus.step(); // only part of the exchange is delivered
    s[0].ep.send(enc('during'), 'agreed');
    c.bus.configure([[1, 2], [3, 4]], { flush: false });
    c.run();
    expect(c.view(1, 'g')).toEqual(c.view(2, 'g'));
    expect(c.view(3, 'g')).toEqual(c.view(4, 'g'));
    expectSameSequences([s[0], s[1]], 'g');
    expectSameSequences([s[2], s[3]], 'g');
    expect(c.svc(1).stats().exchangesForced).toBe(1);
    c.bus.configure([[1, 2, 3, 4]]);
    c.run();
    for (const n of [2, 3, 4]) expect(c.view(n, 'g')).toEqual(c.view(1, 'g'));
    expect(c.view(1, 'g')).toHaveLength(4);
  });

  it('without virtual synchrony (a fifo-only driver): nodedown at once, reports applied as they arrive, views converge', () => {
    const fifoOnly = { fifo: true, agreed: false, safe: false, virtualSynchrony: false };
    const c = new Cluster([1, 2, 3], { guarantees: fifoOnly, transitional: false, together: false });
    c.bus.configure([[1, 2], [3]]);
    const a = c.open(1); const b = c.open(2); const x = c.open(3); const x2 = c.open(3);
    a.ep.bind('g'); b.ep.bind('g'); x.ep.bind('g');
    c.run();
    x2.ep.bind('g'); // multicast, not yet delivered when the merge comes: announced in node 3's report
    c.bus.configure([[1, 2, 3]], { flush: false });
    c.run();
    for (const n of [1, 2, 3]) expect(c.view(n, 'g')).toEqual(['1/101/1', '2/102/2', '3/103/3', '3/103/4']);
    // x2's own join comes first (fifo, sent before the report); the report then adds x.
    expect(a.rec.log.filter((l) => l.includes('+[3/'))).toEqual([
      'regular g ring 1.3 [1/101/1 2/102/2 3/103/4] +[3/103/4:join] -[]',
      'regular g ring 1.3 [1/101/1 2/102/2 3/103/3 3/103/4] +[3/103/3:join] -[]']);
    expect(c.svc(1).stats().heldMessages ?? 0).toBe(0);
    c.bus.crash(2);
    c.run();
    expect(a.rec.log.filter((l) => l.includes('nodedown'))).toEqual(['regular g ring 1.4 [1/101/1 3/103/3 3/103/4] +[] -[2/102/2:nodedown]']);
    x.ep.send(enc('fifo'), 'fifo');
    c.run();
    expect(a.rec.log.at(-1)).toBe('msg g from 3/103/3 fifo fifo');
  });

  it('drops and counts malformed payloads without harm', () => {
    const c = new Cluster([1, 2]);
    const a = c.open(1); const b = c.open(2);
    a.ep.bind('g'); b.ep.bind('g');
    c.run();
    const seed = 0x5eed;
    console.log(`malformed-payload seed ${seed}`);
    let r = seed;
    const rnd = (): number => { r = (r * 1103515245 + 12345) & 0x7fffffff; return r / 0x80000000; };
    const good = encodeData('g', 102, 2, enc('payload'));
    for (let i = 0; i < 500; i++) {
      const bytes = rnd() < 0.5 ? good.slice(0, Math.floor(rnd() * good.length))
        : Uint8Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256));
      c.bus.inject(2, bytes);
    }
    c.bus.inject(2, Uint8Array.of(0x47, 9, 1));                     // a future version
    c.bus.inject(2, Uint8Array.of(0x47, 1, 77));                    // an unknown type
    c.bus.inject(2, encodeJoin('bad\u0001name', 1, 1));            // invalid name
    c.bus.inject(2, encodeExchange({ rep: 9, seq: 9 }, [], 1000, { allSeen: false, expected: 1 })[0]); // a stale exchange
    c.run();
    const st = c.svc(1).stats();
    expect(st.malformed).toBeGreaterThan(400);
    expect(st['malformed.version']).toBeGreaterThanOrEqual(1);
    expect(st['malformed.type']).toBeGreaterThanOrEqual(1);
    expect(st['malformed.name']).toBeGreaterThanOrEqual(1);
    expect(st.exchangeStale).toBe(1);
    b.ep.send(enc('still fine'), 'agreed');
    c.run();
    expect(a.rec.log.at(-1)).toBe('msg g from 2/102/2 agreed still fine');
    expectSameSequences(c.sockets, 'g');
  });

  it('enforces names and limits with the right codes', () => {
    const c = new Cluster([1, 2], { limits: { groupsMax: 2, groupNameMax: 8, membersMax: 2, messageSizeMax: 100, socketsMax: 4 } });
    const a = c.open(1);
    expectCode(() => a.ep.bind(''), 'EINVAL');
    expectCode(() => a.ep.bind('a\nb'), 'EINVAL');
    expectCode(() => a.ep.bind('123456789'), 'ENAMETOOLONG');
    expectCode(() => a.ep.send(enc('x'), 'agreed'), 'ENOTCONN');
    expectCode(() => a.ep.unbind(), 'ENOTCONN');
    expectCode(() => a.ep.members(), 'ENOTCONN');
    a.ep.bind('g1');
    expectCode(() => a.ep.bind('g2'), 'EADDRINUSE');
    expectCode(() => a.ep.send(new Uint8Array(101), 'agreed'), 'EMSGSIZE');
    c.open(1).ep.bind('g2');
    expectCode(() => c.open(1).ep.bind('g3'), 'EMFILE');
    c.open(2).ep.bind('g1');
    c.run();
    expectCode(() => c.open(2).ep.bind('g1'), 'EMFILE'); // members_max
    c.open(2); c.open(2);
    expectCode(() => c.open(2), 'EMFILE');               // sockets_max
    expectCode(() => c.svc(1).open({ pid: 101, port: 1 }, new Recorder()), 'EADDRINUSE');
  });

  it('refuses orders the driver cannot give, and allows fifo', () => {
    const c = new Cluster([1], { guarantees: { ...ALL_GUARANTEES, agreed: false, safe: false, virtualSynchrony: false } });
    const a = c.open(1);
    a.ep.bind('g');
    c.run();
    expectCode(() => a.ep.send(enc('x'), 'agreed'), 'EOPNOTSUPP');
    expectCode(() => a.ep.send(enc('x'), 'safe'), 'EOPNOTSUPP');
    a.ep.send(enc('x'), 'fifo');
    c.run();
    expect(a.rec.log.at(-1)).toBe('msg g from 1/101/1 fifo x');
  });

  it('propagates EAGAIN to send, queues joins and leaves, and retries them on writable', () => {
    const c = new Cluster([1, 2], { sendQueueMax: 1 });
    const wakes: number[] = [];
    const a = c.open(1); const b = c.open(2); const a2 = c.open(1);
    a.ep.bind('g'); b.ep.bind('g');
    c.run();
    a.ep.send(enc('1'), 'agreed');
    expectCode(() => a.ep.send(enc('2'), 'agreed'), 'EAGAIN');
    a2.ep.bind('g'); // the join waits in the service's queue
    expect(c.svc(1).stats().controlQueue).toBe(1);
    expectCode(() => a.ep.send(enc('3'), 'agreed'), 'EAGAIN'); // data never overtakes the join
    c.run();
    expect(c.svc(1).stats().controlQueue).toBe(0);
    expect(c.view(2, 'g')).toContain('1/101/3');
    a.ep.send(enc('4'), 'agreed');
    c.run();
    expect(b.rec.log.filter((l) => l.startsWith('msg')).map((l) => l.split(' ').at(-1))).toEqual(['1', '4']);
    expect(wakes).toEqual([]);
  });

  it('withdraws a join still queued when the socket unbinds, so nobody ever sees it', () => {
    const c = new Cluster([1, 2], { sendQueueMax: 1 });
    const a = c.open(1); const b = c.open(2); const a2 = c.open(1);
    b.ep.bind('g');
    c.run();
    a.ep.bind('g');           // in the bus
    a2.ep.bind('g');          // queued in the service
    a2.ep.unbind();           // withdrawn
    a2.ep.bind('h'); a2.ep.close();
    c.run();
    expect(b.rec.log.some((l) => l.includes('/3'))).toBe(false);
    expect(c.view(1, 'g')).toEqual(['1/101/1', '2/102/2']);
    expect(c.view(2, 'h')).toEqual([]);
  });

  const randomScenario = (fragmentBytes?: number) => () => {
    const seed = Number(process.env.GROUPS_SEED ?? 20261121);
    console.log(`groups random seed ${seed} (GROUPS_SEED=${seed} to replay)${fragmentBytes ? `, fragments of ${fragmentBytes} bytes` : ''}`);
    let r = seed;
    const rnd = (n: number): number => { r = (Math.imul(r, 1664525) + 1013904223) >>> 0; return r % n; };
    const nodes = [1, 2, 3, 4];
    const c = new Cluster(nodes, fragmentBytes ? { fragmentBytes } : {});
    for (let i = 0; i < 12; i++) c.open(nodes[i % 4], 200 + i);
    const groups = ['red', 'blue'];
    for (let step = 0; step < 400; step++) {
      const s = c.sockets[rnd(c.sockets.length)];
      const op = rnd(10);
      try {
        if (op < 3 && !s.ep.group()) s.ep.bind(groups[rnd(2)]);
        else if (op < 4 && s.ep.group()) s.ep.unbind();
        else if (op < 9 && s.ep.group()) s.ep.send(enc(`s${step}`), 'agreed');
      } catch (e) { if (!isClusterError(e, 'EAGAIN')) throw e; }
      if (rnd(40) === 0) {
        const split = rnd(2) === 0 ? [[1, 2], [3, 4]] : [[1, 2, 3, 4]];
        c.bus.configure(split, { flush: rnd(2) === 0 });
      }
      if (rnd(3) === 0) c.bus.step();
    }
    c.bus.configure([nodes]);
    c.run();
    let compared = 0;
    for (const g of groups) {
      for (const n of nodes) expect(c.view(n, g), `seed ${seed} node ${n} ${g}`).toEqual(c.view(1, g));
      compared += expectSameSequences(c.sockets, g);
    }
    expect(compared).toBeGreaterThan(200);
  };
  it('keeps every endpoint\'s sequence identical under random binds, sends, crashes and merges', randomScenario());
  it('keeps them identical when every message arrives in fragments', randomScenario(20));

  it('keeps sequences identical with crashes, restarts, procdown, overruns and EAGAIN in the mix', () => {
    const seed = Number(process.env.GROUPS_SEED ?? 777);
    console.log(`groups chaos seed ${seed} (GROUPS_SEED=${seed} to replay)`);
    let r = seed;
    const rnd = (n: number): number => { r = (Math.imul(r, 1664525) + 1013904223) >>> 0; return r % n; };
    const nodes = [1, 2, 3];
    const c = new Cluster(nodes, { sendQueueMax: 3 });
    const alive = new Set<TestSocket>();
    let pid = 300;
    const spawn = (n: number): void => { alive.add(c.open(n, pid++, rnd(4) === 0 ? 15 : Infinity)); };
    for (let i = 0; i < 9; i++) spawn(nodes[i % 3]);
    const down = new Set<number>();
    const orders = ['agreed', 'safe', 'fifo'] as const;
    for (let step = 0; step < 600; step++) {
      const live = [...alive];
      const s = live[rnd(live.length)];
      const op = rnd(20);
      try {
        if (op < 5 && !s.ep.group()) s.ep.bind(rnd(2) ? 'red' : 'blue');
        else if (op < 6 && s.ep.group()) s.ep.unbind();
        else if (op < 7) { c.svc(s.node).processDown(s.ep.member.pid); alive.delete(s); spawn(s.node); }
        else if (op < 16 && s.ep.group()) s.ep.send(enc(`s${step}`), orders[rnd(3)]);
      } catch (e) { if (!isClusterError(e, 'EAGAIN')) throw e; }
      if (rnd(60) === 0 && down.size === 0) {
        const n = nodes[rnd(3)];
        down.add(n);
        for (const x of [...alive]) if (x.node === n) alive.delete(x);
        c.bus.crash(n, { flush: rnd(2) === 0 });
      } else if (rnd(30) === 0 && down.size > 0) {
        const n = [...down][0];
        down.delete(n);
        c.boot(n);
        c.bus.configure([nodes], { flush: rnd(2) === 0 });
        spawn(n); spawn(n);
      }
      if (rnd(2) === 0) c.bus.step();
    }
    for (const n of down) c.boot(n);
    c.bus.configure([nodes]);
    c.run();
    let compared = 0;
    for (const g of ['red', 'blue']) {
      for (const n of nodes) expect(c.view(n, g), `seed ${seed} node ${n} ${g}`).toEqual(c.view(1, g));
      compared += expectSameSequences(c.sockets, g);
    }
    const reasons = new Set(c.sockets.flatMap((x) => x.rec.log.flatMap((l) => [...l.matchAll(/:(\w+)[\] ]/g)].map((m) => m[1]))));
    expect([...reasons].sort()).toEqual(['join', 'leave', 'nodedown', 'overrun', 'procdown']);
    expect(compared).toBeGreaterThan(50);
  });
});
