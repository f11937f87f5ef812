// One bench client: a real process that opens a cluster socket on its node's daemon over the
// bridge protocol (ClusterSocket, the code users run), sends the bench's messages and counts
// the deliveries it receives. Driven over IPC by driver-bench.ts.
import { ClusterSocket, SEND_WINDOW, SEND_WINDOW_MAX } from '../../sockapi/client.ts';
import type { Order, SocketEvent } from '../../core/api/types.ts';
import type { ClientRequest, LatencyResult, ThroughputResult } from './client-protocol.ts';
import { readTag, writeTag } from './client-protocol.ts';

/** Sends in flight to the daemon at once: the library's default window, what an application that
 *  sends without waiting gets (docs/BENCH.md has 64 against 256). AFC_BENCH_PIPELINE in the
 *  environment sets another depth (up to SEND_WINDOW_MAX; the socket's window is opened that deep
 *  when it is over the default), for experiments. */
const PIPELINE = Math.min(SEND_WINDOW_MAX, Math.max(1, Number(process.env.AFC_BENCH_PIPELINE) || SEND_WINDOW));

let sock: ClusterSocket | undefined;
let group = '';
/** The daemon removed this socket from the group (ENOBUFS: it fell behind) during this phase: it
 *  binds again at once (rebind), and the drain after the phase says so. */
let overrun = false;
/** The bind again in progress, if any. */
let rebinding: Promise<void> | undefined;
let members = 0;
let selfKey = '';
/** Counting state of the current phase. */
let phase = -1;
let counting = false;
let delivered = 0;
/** A message came since drain() last looked. */
let deliveredSinceCheck = false;
const errors: string[] = [];
/** Latency: the sequence number awaited back, and who to tell. */
let awaiting: { seq: number; resolve: (at: bigint) => void } | undefined;
const memberWaiters: (() => void)[] = [];

function reply(msg: object): void {
  process.send?.(msg);
}

function onEvent(ev: SocketEvent): void {
  switch (ev.type) {
    case 'message': {
      deliveredSinceCheck = true; // not a clock read per message: drain() looks every 20 ms
      const tag = readTag(ev.data);
      if (!tag || tag.phase !== phase) return;
      if (counting) delivered++;
      const s = ev.sender;
      if (awaiting && tag.seq === awaiting.seq && `${s.nodeId}.${s.pid}.${s.port}` === selfKey) {
        const a = awaiting;
        awaiting = undefined;
        a.resolve(process.hrtime.bigint());
      }
      return;
    }
    case 'membership':
      members = ev.members.length;
      for (const w of memberWaiters.splice(0)) w();
      return;
    case 'error':
      if (ev.code === 'ENOBUFS') { overrun = true; rebind(); }
      if (errors.length < 20) errors.push(`${ev.code}: ${ev.message}`);
      return;
  }
}

async function open(req: Extract<ClientRequest, { type: 'open' }>): Promise<void> {
  sock = await ClusterSocket.open({ path: req.socket, timeoutMs: 30_000, sendWindow: Math.max(SEND_WINDOW, PIPELINE) });
  const me = sock.self;
  selfKey = `${me.nodeId}.${me.pid}.${me.port}`;
  group = req.group;
  await sock.bind(req.group);
  // Every event to onEvent as it arrives, with no promise per event (the library's listen()).
  sock.listen(onEvent);
  reply({ type: 'ready', nodeId: me.nodeId, driver: sock.daemon.driver, messageSizeMax: sock.daemon.messageSizeMax });
}

/** Binds again after the daemon removed this socket (ENOBUFS), as soon as it says so: a removal
 *  can come after the drain that follows a phase (the daemon's stall rule, a while after the load),
 *  and the other clients then wait for this one (waitMembers). */
function rebind(): void {
  if (rebinding || !sock) return;
  members = 0;
  rebinding = sock.bind(group)
    .catch((e: Error) => { if (errors.length < 20) errors.push(`bind again after ENOBUFS: ${e.message}`); })
    .finally(() => { rebinding = undefined; });
}

async function waitMembers(req: Extract<ClientRequest, { type: 'waitMembers' }>): Promise<void> {
  await rebinding;
  const deadline = Date.now() + req.timeoutMs;
  while (members < req.members) {
    if (Date.now() > deadline) throw new Error(`the bench group has ${members} of ${req.members} members after ${req.timeoutMs} ms`);
    await new Promise<void>((r) => {
      memberWaiters.push(r);
      setTimeout(r, 100);
    });
  }
  reply({ type: 'members', members });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** For Atomics.wait: a paced latency row's exact pause between round trips. */
const pause = new Int32Array(new SharedArrayBuffer(4));

/** Sends in flight at most for a sender paced to a rate (the load of the latency rows): after a
 *  stall it catches up that many at once. The same as before the unpaced rows went to the
 *  library's window: 256 sends of 64 KiB at once put 16 MiB in front of the round trip measured
 *  (its p99 under load 1.5-1.9 ms against 0.9-1.1 at 64; docs/BENCH.md), a burst no paced
 *  application makes. */
const PACED_MAX = Math.min(PIPELINE, 64);

/** Keeps up to PIPELINE sends in flight, or PACED_MAX paced to ratePerSec when given. */
function startSender(s: ClusterSocket, buf: Uint8Array, req: { order: Order; ratePerSec?: number }) {
  const st = { on: true, inflight: 0, acked: 0, started: 0, failed: '' };
  const t0 = performance.now();
  const allowed = () => (req.ratePerSec === undefined ? Infinity : Math.floor(((performance.now() - t0) / 1000) * req.ratePerSec));
  const depth = req.ratePerSec === undefined ? PIPELINE : PACED_MAX;
  const opts = { order: req.order };
  // One callback for every send (send's callback form: no promise per message).
  const onDone = (e: Error | null) => {
    st.inflight--;
    if (e) { st.failed ||= e.message; return; }
    st.acked++;
    fill();
  };
  const fill = () => {
    while (st.on && st.inflight < depth && st.started < allowed()) {
      st.inflight++;
      st.started++;
      s.send(buf, opts, onDone);
    }
  };
  fill();
  const pacer = req.ratePerSec === undefined ? undefined : setInterval(fill, 1);
  return { st, stop: () => { st.on = false; if (pacer) clearInterval(pacer); } };
}

async function throughput(req: Extract<ClientRequest, { type: 'throughput' }>): Promise<void> {
  const s = need();
  phase = req.phase;
  errors.length = 0;
  const buf = new Uint8Array(req.size).fill(0x61);
  writeTag(buf, req.phase, 0);
  const sender = req.send ? startSender(s, buf, req) : undefined;
  await sleep(req.warmupMs);
  delivered = 0;
  const ackedAtStart = sender?.st.acked ?? 0;
  counting = true;
  const t0 = performance.now();
  await sleep(req.seconds * 1000);
  counting = false;
  const elapsedS = (performance.now() - t0) / 1000;
  const written = (sender?.st.acked ?? 0) - ackedAtStart;
  sender?.stop();
  if (sender?.st.failed && !overrun) errors.push(sender.st.failed);
  const r: ThroughputResult = { type: 'throughput', written, delivered, elapsedS, errors: [...errors] };
  reply(r);
}

async function latency(req: Extract<ClientRequest, { type: 'latency' }>): Promise<void> {
  const s = need();
  phase = req.phase;
  errors.length = 0;
  const samples: number[] = [];
  const end = performance.now() + req.warmupMs + req.seconds * 1000;
  const measureFrom = performance.now() + req.warmupMs;
  const intervalMs = (req.intervalUs ?? 0) / 1000;
  for (let seq = 1; performance.now() < end && samples.length < req.samplesMax; seq++) {
    const startedMs = performance.now();
    const buf = new Uint8Array(req.size).fill(0x62);
    writeTag(buf, req.phase, seq);
    const back = new Promise<bigint>((resolve) => { awaiting = { seq, resolve }; });
    const t0 = process.hrtime.bigint();
    await s.send(buf, { order: req.order });
    let timer: NodeJS.Timeout | undefined;
    const t1 = await Promise.race([back, new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), 5000); })]);
    clearTimeout(timer);
    if (t1 === undefined) {
      awaiting = undefined;
      errors.push(`message ${seq} did not come back within 5 s`);
      break;
    }
    const us = Number(t1 - t0) / 1000;
    if (performance.now() >= measureFrom) samples.push(us);
    // Paced: the next round trip starts intervalMs after this one started. A futex wait, as
    // exact as cpg-bench's clock_nanosleep: Node's timers fire up to a millisecond early or late.
    // Nothing else is due meanwhile (an idle row has no load to count).
    const wait = startedMs + intervalMs - performance.now();
    if (wait > 0) Atomics.wait(pause, 0, 0, wait);
  }
  const r: LatencyResult = { type: 'latency', samplesUs: samples, errors: [...errors] };
  reply(r);
}

/** Waits for quiet; says whether this socket was removed for falling behind (it has bound again: rebind). */
async function drain(req: Extract<ClientRequest, { type: 'drain' }>): Promise<void> {
  const end = performance.now() + req.maxMs;
  let lastDeliveryAt = performance.now();
  deliveredSinceCheck = false;
  while (performance.now() < end && performance.now() - lastDeliveryAt < req.quietMs) {
    await sleep(20);
    if (deliveredSinceCheck) { deliveredSinceCheck = false; lastDeliveryAt = performance.now(); }
  }
  await rebinding;
  const rebound = overrun;
  overrun = false;
  reply({ type: 'drained', rebound });
}

function need(): ClusterSocket {
  if (!sock) throw new Error('the client has not opened its socket');
  return sock;
}

async function handle(m: ClientRequest): Promise<void> {
  switch (m.type) {
    case 'open': return open(m);
    case 'waitMembers': return waitMembers(m);
    case 'throughput': return throughput(m);
    case 'latency': return latency(m);
    case 'drain': return drain(m);
    case 'close':
      await sock?.close();
      reply({ type: 'closed' });
      process.exit(0);
  }
}

process.on('message', (m: ClientRequest) => {
  handle(m).catch((e: Error) => reply({ type: 'error', message: e.message }));
});
process.on('disconnect', () => process.exit(0));
