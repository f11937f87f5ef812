// A drill worker process: one lock-service member on one node's daemon. The coordinator
// (tools/drill/run.ts) drives it over IPC: open, wait for everyone, race, hand over the record.
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterSocket } from '../../sockapi/client.ts';
import { LockClient } from '../../services/lock/lock.ts';
import type { DrillReply, DrillRequest } from './protocol.ts';
import { DrillRecorder } from './recorder.ts';
import { randomSource } from '../../sim/rng.ts';
import { runWorkload } from './workload.ts';

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
let sock: ClusterSocket | undefined;
let client: LockClient | undefined;
let recorder: DrillRecorder | undefined;
let failure: string | undefined;

function reply(r: DrillReply): void {
  process.send?.(r);
}

async function open(req: Extract<DrillRequest, { type: 'open' }>): Promise<DrillReply> {
  sock = await ClusterSocket.open({ path: req.socket });
  recorder = new DrillRecorder({ observer: req.observer, nodeId: sock.self.nodeId, self: sock.self }, nowUs);
  client = await LockClient.open(sock, {
    group: req.group, order: req.order, onOutput: recorder.onOutput, signal: AbortSignal.timeout(req.timeoutMs),
    onFailure: (e) => { failure = e.message; },
  });
  return { type: 'ready', nodeId: sock.self.nodeId, self: `${sock.self.nodeId}/${sock.self.pid}/${sock.self.port}` };
}

async function waitMembers(count: number, timeoutMs: number): Promise<DrillReply> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const n = Number(client?.table.stats().members ?? 0);
    if (n >= count) return { type: 'members', count: n };
    if (Date.now() > until) return { type: 'error', message: `only ${n} of ${count} workers joined the lock group in ${timeoutMs} ms${failure ? ` (${failure})` : ''}` };
    await sleep(20);
  }
}

async function run(req: Extract<DrillRequest, { type: 'run' }>): Promise<DrillReply> {
  if (!client || !recorder) return { type: 'error', message: 'run before open' };
  const rng = randomSource(req.seed);
  const pause = (maxMs: number) => (): Promise<void> => sleep(Math.floor(rng() * (maxMs + 1)));
  let result = { ops: 0, grants: 0, tryfails: 0 };
  try {
    result = await runWorkload(client, {
      names: req.names, rng, signal: AbortSignal.timeout(req.seconds * 1000), hold: pause(2), idle: pause(1), recorder,
    });
    return { type: 'done', result };
  } catch (e) {
    return { type: 'done', result, error: (e as Error).message };
  }
}

async function handle(req: DrillRequest): Promise<DrillReply> {
  switch (req.type) {
    case 'open': return open(req);
    case 'waitMembers': return waitMembers(req.count, req.timeoutMs);
    case 'run': return run(req);
    case 'record':
      if (!recorder || !client) return { type: 'error', message: 'record before open' };
      return { type: 'record', record: recorder.record(), truncated: recorder.truncated, table: client.table.stats() };
  }
}

process.on('message', (m) => {
  handle(m as DrillRequest).then(reply, (e: Error) => reply({ type: 'error', message: e.message }));
});
process.on('disconnect', () => {
  void (sock?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});
process.on('SIGTERM', () => {
  void (sock?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});
