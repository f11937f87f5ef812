// What the bench orchestrator and its client processes (client-worker.ts) say over IPC, and
// the tag every bench message carries (pure).
import type { Order } from '../../core/driver/types.ts';
import { readU32, writeU32 } from '../../core/wire/bytes.ts';

export type ClientRequest =
  /** Open a cluster socket on the node's daemon and bind the bench group. */
  | { type: 'open'; socket: string; group: string }
  /** Resolve once the group has `members` members (every node's client bound). */
  | { type: 'waitMembers'; members: number; timeoutMs: number }
  /**
   * Send (unless send is false) for warm-up + seconds, count deliveries of this phase during
   * the window. ratePerSec paces the sender (background load); absent = as fast as it can.
   */
  | { type: 'throughput'; phase: number; size: number; order: Order; warmupMs: number; seconds: number; send: boolean; ratePerSec?: number }
  /**
   * One message at a time, until its own delivery comes back: round trips in microseconds. With
   * intervalUs (absent or 0: back to back) each round trip starts that long after the one before
   * started, or at once if that one took longer.
   */
  | { type: 'latency'; phase: number; size: number; order: Order; warmupMs: number; seconds: number; samplesMax: number; intervalUs?: number }
  /** Resolve once no delivery has arrived for quietMs (or maxMs passed). */
  | { type: 'drain'; quietMs: number; maxMs: number }
  | { type: 'close' };

export interface ThroughputResult {
  type: 'throughput';
  /** Messages this client wrote (send acknowledged by the daemon) during the window. */
  written: number;
  /** Messages of this phase delivered to this client during the window. */
  delivered: number;
  elapsedS: number;
  /** Asynchronous socket errors (e.g. ENOBUFS) seen during the phase. */
  errors: string[];
}

export interface LatencyResult {
  type: 'latency';
  samplesUs: number[];
  errors: string[];
}

/** Bytes at the start of every bench message: phase (u32) and sequence (u32), big-endian. */
export const TAG_BYTES = 8;
/** Smallest message the bench sends (room for the tag). */
export const SIZE_MIN = TAG_BYTES;

// Byte by byte, not through a DataView: the receiving clients read a tag per message, and a
// DataView over a Buffer's .buffer (a call into C++, and an object) was 5% of such a client at
// 100 B, the bench's own cost counted as the library's.
export function writeTag(buf: Uint8Array, phase: number, seq: number): void {
  writeU32(buf, 0, phase);
  writeU32(buf, 4, seq);
}

export function readTag(buf: Uint8Array): { phase: number; seq: number } | undefined {
  if (buf.length < TAG_BYTES) return undefined; // length, not byteLength: a typed array getter optimized code loads generically
  return { phase: readU32(buf, 0), seq: readU32(buf, 4) };
}
