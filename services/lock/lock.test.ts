// Proves the LockClient over an ideal ordered bus: grants resolve in delivery order, waiters
// queue, trylock/abort/crash behave, and a seeded random race of clients on several nodes
// (one joining late) gives zero double grants and zero disagreements.
import { describe, expect, it } from 'vitest';
import { checkDrill } from '../../tools/drill/checker.ts';
import { DrillRecorder } from '../../tools/drill/recorder.ts';
import { randomSource } from '../../sim/rng.ts';
import { runWorkload } from '../../tools/drill/workload.ts';
import { OrderedBus } from '../../test/support/ordered-bus.ts';
import { LockClient } from './lock.ts';

const later = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('LockClient over an ordered bus', () => {
  it('grants in delivery order; the second locker waits for the unlock', async () => {
    const bus = new OrderedBus();
    const a = await LockClient.open(bus.socket(1));
    const b = await LockClient.open(bus.socket(2));
    const ga = await a.lock('x');
    let bGranted = false;
    const pb = b.lock('x').then((g) => { bGranted = true; return g; });
    await bus.settle();
    expect(bGranted).toBe(false);
    expect(await b.trylock('x')).toBeNull();
    await a.unlock(ga);
    const gb = await pb;
    expect(gb).toMatchObject({ name: 'x', mode: 'exclusive' });
    expect(b.holding()).toEqual([gb]);
    expect(a.holding()).toEqual([]);
  });

  it('shares a shared lock; an aborted wait is cancelled everywhere', async () => {
    const bus = new OrderedBus();
    const [a, b, c] = [await LockClient.open(bus.socket(1)), await LockClient.open(bus.socket(2)), await LockClient.open(bus.socket(3))];
    await a.lock('x', 'shared');
    await b.lock('x', 'shared');
    const ac = new AbortController();
    const pc = c.lock('x', 'exclusive', { signal: ac.signal });
    await bus.settle();
    expect(a.table.waiters('x')).toHaveLength(1);
    ac.abort();
    await expect(pc).rejects.toMatchObject({ code: 'ECANCELED' });
    await bus.settle();
    for (const t of [a.table, b.table, c.table]) expect(t.waiters('x')).toEqual([]);
  });

  it('a crashed holder\'s lock goes to the next waiter at the procdown event', async () => {
    const bus = new OrderedBus();
    const s1 = bus.socket(1);
    const a = await LockClient.open(s1);
    const b = await LockClient.open(bus.socket(2));
    await a.lock('x');
    const pb = b.lock('x');
    await bus.settle();
    bus.crash(s1);
    await expect(pb).resolves.toMatchObject({ name: 'x' });
  });

  it('a holder cut off with its node: its side stops at once (ENOLCK); the others wait the fencing delay, then the lowest sends FENCED', async () => {
    const bus = new OrderedBus();
    const lost: string[] = [];
    const a = await LockClient.open(bus.socket(1), { fenceDelayMs: 150 });
    const sb = bus.socket(2);
    const b = await LockClient.open(sb, { fenceDelayMs: 150, onFailure: (e) => lost.push(e.code) });
    const c = await LockClient.open(bus.socket(3), { fenceDelayMs: 150 });
    await b.lock('x');
    let granted = false;
    const pc = c.lock('x').then((g) => { granted = true; return g; });
    await bus.settle();
    const t0 = performance.now();
    bus.cutOff(sb, { quorate: false, votes: 1, expected: 3, quorum: 2, flags: [] });
    await bus.settle();
    expect(lost).toEqual(['ENOLCK']); // told at once
    expect(b.holding()).toEqual([]);
    expect(granted).toBe(false); // the others keep its hold: it may still be running
    expect(a.table.fencingMembers().map((f) => f.member.nodeId)).toEqual([2]);
    await expect(pc).resolves.toMatchObject({ name: 'x' });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140); // not before the delay (timers never fire early)
    expect(a.table.fencingMembers()).toEqual([]);
  });

  it('with a fence hook the lowest member fences the node and the lock goes at once', async () => {
    const bus = new OrderedBus();
    const fenced: number[] = [];
    const a = await LockClient.open(bus.socket(1), { fenceDelayMs: 600_000, fence: async (m) => { fenced.push(m.nodeId); return true; } });
    const sb = bus.socket(2);
    const b = await LockClient.open(sb, { fenceDelayMs: 600_000 });
    const c = await LockClient.open(bus.socket(3), { fenceDelayMs: 600_000 });
    await b.lock('x');
    const pc = c.lock('x');
    await bus.settle();
    bus.cutOff(sb);
    await expect(pc).resolves.toMatchObject({ name: 'x' });
    expect(fenced).toEqual([2]);
    void a;
  });

  it('a late joiner gets the table and waits behind the current holder', async () => {
    const bus = new OrderedBus();
    const a = await LockClient.open(bus.socket(1));
    const ga = await a.lock('x');
    const c = await LockClient.open(bus.socket(3));
    expect(c.table.holders('x')).toEqual(a.table.holders('x'));
    expect(await c.trylock('x')).toBeNull();
    const pc = c.lock('x');
    await a.unlock(ga);
    await expect(pc).resolves.toMatchObject({ name: 'x' });
  });

  it('refuses agreed order on an unordered bus with a message that says what to do', async () => {
    const bus = new OrderedBus({ rng: randomSource(1) });
    const a = await LockClient.open(bus.socket(1));
    await expect(a.lock('x')).rejects.toMatchObject({ code: 'EOPNOTSUPP', message: expect.stringMatching(/fifo/) });
  });

  it('a seeded random race gives zero double grants and zero disagreements', async () => {
    const seed = Number(process.env.LOCK_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`lock race seed ${seed} (replay: LOCK_SEED=${seed} npx vitest run services/lock/lock.test.ts)`);
    const rng = randomSource(seed);
    const bus = new OrderedBus();
    let tick = 0;
    const nowUs = (): number => ++tick;
    const names = ['a', 'b', 'c'];
    const workers: { rec: DrillRecorder; done: Promise<unknown> }[] = [];
    const start = async (nodeId: number, pid: number): Promise<void> => {
      const sock = bus.socket(nodeId, pid);
      const rec = new DrillRecorder({ observer: `w${nodeId}.${pid}`, nodeId, self: sock.self }, nowUs);
      const client = await LockClient.open(sock, { onOutput: rec.onOutput });
      const hold = async (): Promise<void> => { for (let i = Math.floor(rng() * 4); i > 0; i--) await later(); };
      const done = runWorkload(client, { names, rng, signal: new AbortController().signal, hold, idle: later, recorder: rec, opsMax: 120 });
      workers.push({ rec, done });
    };
    for (let node = 1; node <= 3; node++) for (let p = 0; p < 2; p++) await start(node, 100 * node + p);
    for (let i = 0; i < 40; i++) await later();
    await start(4, 400); // joins while the others race: gets the table by snapshot
    const results = await Promise.all(workers.map((w) => w.done));
    const report = checkDrill(workers.map((w) => w.rec.record()));
    console.log(`lock race seed ${seed}: ${JSON.stringify({ ...report, examples: undefined })}`, results);
    expect(report.grants).toBeGreaterThan(100);
    expect(report.pairsCompared).toBe(21);
    expect(report.doubleGrants).toBe(0);
    expect(report.disagreements).toBe(0);
  });

  it('without agreed order (an unordered bus, order fifo) the same code lets members disagree, and the checker sees it', async () => {
    const seed = 1; // fixed: this run is known to diverge; the point is that the checker reports it
    const rng = randomSource(seed);
    const bus = new OrderedBus({ rng: randomSource(seed + 100) });
    let tick = 0;
    const stop = new AbortController();
    const workers: { rec: DrillRecorder; done: Promise<unknown> }[] = [];
    for (let node = 1; node <= 3; node++) {
      for (let p = 0; p < 2; p++) {
        const sock = bus.socket(node, 100 * node + p);
        const rec = new DrillRecorder({ observer: `w${node}.${p}`, nodeId: node, self: sock.self }, () => ++tick);
        const client = await LockClient.open(sock, { onOutput: rec.onOutput, order: 'fifo' });
        const done = runWorkload(client, { names: ['a', 'b', 'c'], rng, signal: stop.signal, hold: later, idle: later, recorder: rec, opsMax: 100 });
        workers.push({ rec, done });
      }
    }
    // Diverged tables can leave a waiter that no view will ever grant: stop once the bus is quiet.
    for (let last = -1; bus.delivered !== last;) {
      last = bus.delivered;
      await bus.settle();
    }
    stop.abort();
    await Promise.all(workers.map((w) => w.done));
    const report = checkDrill(workers.map((w) => w.rec.record()));
    console.log(`unordered race seed ${seed}: ${JSON.stringify(report)}`);
    expect(report.disagreements).toBeGreaterThan(0);
  });
});
