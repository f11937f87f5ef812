// The line protocol of the bench's C clients (tools/bench/workers/bench-worker.h): cpg-bench.c, the
// corosync reference's, and afc-bench-worker.c, afcluster's C library (--client c). The bench's
// client requests (client-protocol.ts) as one command line each, and the client's one-line
// replies parsed back into the replies client-worker.ts gives, so driver-bench.ts measures
// corosync and either afcluster client with the same code (pure).
import type { ClientRequest, LatencyResult, ThroughputResult } from './client-protocol.ts';

export type CpgReply =
  | { type: 'ready'; nodeId: number; pid: number }
  | { type: 'members'; members: number }
  | ThroughputResult
  | LatencyResult
  | { type: 'drained'; rebound: boolean }
  | { type: 'closed' }
  | { type: 'error'; message: string };

/** corosync's cs_error_t names (corosync/corotypes.h), for messages. */
const CS_ERRORS: Record<number, string> = {
  1: 'CS_OK', 2: 'CS_ERR_LIBRARY', 3: 'CS_ERR_VERSION', 4: 'CS_ERR_INIT', 5: 'CS_ERR_TIMEOUT', 6: 'CS_ERR_TRY_AGAIN',
  7: 'CS_ERR_INVALID_PARAM', 8: 'CS_ERR_NO_MEMORY', 9: 'CS_ERR_BAD_HANDLE', 10: 'CS_ERR_BUSY', 11: 'CS_ERR_ACCESS',
  12: 'CS_ERR_NOT_EXIST', 13: 'CS_ERR_NAME_TOO_LONG', 14: 'CS_ERR_EXIST', 15: 'CS_ERR_NO_SPACE', 16: 'CS_ERR_INTERRUPT',
  17: 'CS_ERR_NAME_NOT_FOUND', 18: 'CS_ERR_NO_RESOURCES', 19: 'CS_ERR_NOT_SUPPORTED', 20: 'CS_ERR_BAD_OPERATION',
  21: 'CS_ERR_FAILED_OPERATION', 22: 'CS_ERR_MESSAGE_ERROR', 23: 'CS_ERR_QUEUE_FULL', 24: 'CS_ERR_QUEUE_NOT_AVAILABLE',
  25: 'CS_ERR_BAD_FLAGS', 26: 'CS_ERR_TOO_BIG', 27: 'CS_ERR_NO_SECTIONS', 28: 'CS_ERR_CONTEXT_NOT_FOUND',
  30: 'CS_ERR_TOO_MANY_GROUPS', 100: 'CS_ERR_SECURITY',
};

export function csErrorName(code: number): string {
  return CS_ERRORS[code] ?? `cs_error ${code}`;
}

const ms = (seconds: number): number => Math.round(seconds * 1000);

/** The command line for one request (without its newline). CPG sends in agreed order only, which the bench asks of corosync. */
export function cpgCommand(req: ClientRequest): string {
  switch (req.type) {
    case 'open': return `join ${req.group}`;
    case 'waitMembers': return `members ${req.members} ${req.timeoutMs}`;
    case 'throughput': return `throughput ${req.phase} ${req.size} ${Math.round(req.warmupMs)} ${ms(req.seconds)} ${req.send ? 1 : 0} ${req.ratePerSec ?? 0}`;
    case 'latency': return `latency ${req.phase} ${req.size} ${Math.round(req.warmupMs)} ${ms(req.seconds)} ${req.samplesMax}${req.intervalUs ? ` ${Math.round(req.intervalUs)}` : ''}`;
    case 'drain': return `drain ${req.quietMs} ${req.maxMs}`;
    case 'close': return 'quit';
  }
}

/** `key=value` words after the reply's first word. */
function fields(words: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq > 0) m.set(w.slice(0, eq), w.slice(eq + 1));
  }
  return m;
}

function count(f: Map<string, string>, key: string, line: string): number {
  const v = f.get(key);
  if (v === undefined || !/^\d+$/.test(v)) throw new Error(`bench client: no integer ${key}= in "${line.slice(0, 120)}"`);
  return Number(v);
}

/** Send failures the client reported, as messages. */
function failures(f: Map<string, string>): string[] {
  const out: string[] = [];
  const fail = f.get('fail');
  if (fail !== undefined) out.push(`cpg_mcast_joined or cpg_dispatch failed: ${csErrorName(Number(fail))}`);
  const errno = f.get('errno'); // afc-bench-worker: the C library's errno name
  if (errno !== undefined) out.push(`afc_send or afc_recv failed: ${errno}`);
  if (f.get('overrun') === '1') out.push('ENOBUFS: this socket fell behind and was removed from its group; it binds again after the row');
  const lost = f.get('lost');
  if (lost !== undefined) out.push(`message ${lost} did not come back within 5 s`);
  return out;
}

function samples(v: string | undefined, line: string): number[] {
  if (v === undefined) throw new Error(`bench client: no samples_us= in "${line.slice(0, 120)}"`);
  if (v === '') return [];
  return v.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n < 0) throw new Error(`bench client: bad latency sample "${s}"`);
    return n;
  });
}

/** One reply line of a C client. A line it could not have written throws (a bug, not a measurement). */
export function parseCpgReply(line: string): CpgReply {
  const text = line.trim();
  const [kind, ...rest] = text.split(' ');
  const f = fields(rest);
  switch (kind) {
    case 'ready': return { type: 'ready', nodeId: count(f, 'nodeid', text), pid: count(f, 'pid', text) };
    case 'members': return { type: 'members', members: count(f, 'n', text) };
    case 'throughput': return {
      type: 'throughput', written: count(f, 'written', text), delivered: count(f, 'delivered', text),
      elapsedS: count(f, 'elapsed_us', text) / 1e6, errors: failures(f),
    };
    case 'latency': return { type: 'latency', samplesUs: samples(f.get('samples_us'), text), errors: failures(f) };
    case 'drained': return { type: 'drained', rebound: f.get('rebound') === '1' };
    case 'closed': return { type: 'closed' };
    case 'error': return { type: 'error', message: rest.join(' ') || 'failed' };
    default: throw new Error(`bench client: unexpected reply "${text.slice(0, 120)}"`);
  }
}
