// Per-node event logs written by the simulator and read by the EVS checker (docs/TOTEM.md, "Extended
// virtual synchrony"), the application payload format that makes every message identifiable, and the
// trace hash that proves a seed replays exactly.
import { createHash } from 'node:crypto';
import type { Configuration, Order } from '../core/driver/types.ts';
import { fnv1a } from '../core/wire/hash.ts';

export interface SendEvent {
  readonly type: 'send';
  readonly t: number;
  readonly node: number;
  /** Message id, from the payload header: `node.incarnation.counter`. */
  readonly id: string;
  readonly order: Order;
  readonly payloadHash: string;
  readonly size: number;
}

/** A driver's configuration change, as logged at `node` at time `t`. */
export interface ConfEvent extends Configuration {
  readonly type: 'conf';
  readonly t: number;
  readonly node: number;
}

export interface DeliverEvent {
  readonly type: 'deliver';
  readonly t: number;
  readonly node: number;
  readonly id: string;
  /** The sender the driver reported. */
  readonly sender: number;
  readonly order: Order;
  readonly payloadHash: string;
  readonly size: number;
}

export interface CrashEvent { readonly type: 'crash'; readonly t: number; readonly node: number }
export interface RestartEvent {
  readonly type: 'restart'; readonly t: number; readonly node: number; readonly incarnation: number;
}
export interface LeaveEvent { readonly type: 'leave'; readonly t: number; readonly node: number }

export type LogEvent = SendEvent | ConfEvent | DeliverEvent | CrashEvent | RestartEvent | LeaveEvent;

export interface NodeLog {
  readonly node: number;
  readonly events: readonly LogEvent[];
}

/** A host fault the simulator applied (a crash or restart is also in the node's own log). */
export interface HostFaultEvent {
  readonly type: 'host';
  readonly t: number;
  readonly node: number;
  readonly what: 'pause' | 'resume' | 'crash' | 'restart' | 'leave';
}

/** The network's state after a change: what the availability check needs to know whether
 *  two nodes could reach each other, and whether the network itself dropped datagrams. */
export interface NetFaultEvent {
  readonly type: 'net';
  readonly t: number;
  /** Partition groups, each ascending, ordered by first id (one group: no partition). */
  readonly groups: readonly (readonly number[])[];
  /** Random loss on every link without a rate of its own. */
  readonly loss: number;
  /** Some link is cut, clogged or has a loss rate of its own. */
  readonly linkFaults: boolean;
  /** A protocol-aware datagram filter is set (tests). */
  readonly filter: boolean;
  /** Senders' NICs have a finite bandwidth, so a full queue drops datagrams. */
  readonly finiteNic: boolean;
}

/** The fault timeline of a run, in time order (Simulation.faults()). */
export type FaultEvent = HostFaultEvent | NetFaultEvent;

// ---- payloads ----------------------------------------------------------------------------

/** 'AFSM' */
const MAGIC = 0x4146534d;
/** magic, node, incarnation, counter, total length: five u32, big-endian. */
export const PAYLOAD_HEADER_BYTES = 20;

export interface PayloadId { node: number; incarnation: number; counter: number }

export function formatMessageId(p: PayloadId): string {
  return `${p.node}.${p.incarnation}.${p.counter}`;
}

/** Build a payload of `size` bytes (at least the header) whose body is derived from its id. */
export function makePayload(id: PayloadId, size: number): Uint8Array {
  const n = Math.max(size, PAYLOAD_HEADER_BYTES);
  const out = new Uint8Array(n);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC);
  view.setUint32(4, id.node >>> 0);
  view.setUint32(8, id.incarnation >>> 0);
  view.setUint32(12, id.counter >>> 0);
  view.setUint32(16, n);
  let x = (Math.imul(id.node, 0x9e3779b1) ^ Math.imul(id.incarnation + 1, 0x85ebca6b) ^ id.counter) | 1;
  for (let i = PAYLOAD_HEADER_BYTES; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The message id a payload carries, or undefined when it is not a simulator payload. */
export function parsePayloadId(bytes: Uint8Array): PayloadId | undefined {
  if (bytes.length < PAYLOAD_HEADER_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== MAGIC || view.getUint32(16) !== bytes.length) return undefined;
  return { node: view.getUint32(4), incarnation: view.getUint32(8), counter: view.getUint32(12) };
}

/** Message id for the logs: the header's id, or a content hash for foreign payloads. */
export function messageIdOf(bytes: Uint8Array, hash: string): string {
  const p = parsePayloadId(bytes);
  return p ? formatMessageId(p) : `h${hash}`;
}

/** FNV-1a 32-bit over bytes, as 8 hex digits: cheap enough to run at every delivery. */
export function hashBytes(bytes: Uint8Array): string {
  return fnv1a(bytes).toString(16).padStart(8, '0');
}

// ---- printing and hashing ----------------------------------------------------------------

/** One canonical line per event: stable across runs, used for hashing and for --verbose. */
export function formatEvent(e: LogEvent): string {
  const t = e.t.toFixed(3);
  switch (e.type) {
    case 'send': return `${t} n${e.node} SEND ${e.id} ${e.order} ${e.size}B #${e.payloadHash}`;
    case 'deliver': return `${t} n${e.node} DELIVER ${e.id} from ${e.sender} ${e.order} ${e.size}B #${e.payloadHash}`;
    case 'conf': return `${t} n${e.node} CONF ${e.kind} ${e.ringId.rep}.${e.ringId.seq} [${e.members.join(',')}]`
      + ` left [${e.left.join(',')}] joined [${e.joined.join(',')}]`;
    case 'crash': return `${t} n${e.node} CRASH`;
    case 'restart': return `${t} n${e.node} RESTART incarnation ${e.incarnation}`;
    case 'leave': return `${t} n${e.node} LEAVE`;
  }
}

/** One line per fault-timeline entry, for --verbose. */
export function formatFault(f: FaultEvent): string {
  const t = f.t.toFixed(3);
  if (f.type === 'host') return `${t} n${f.node} FAULT ${f.what}`;
  const parts = [`groups ${f.groups.map((g) => `[${g.join(',')}]`).join(' ')}`, `loss ${f.loss}`];
  if (f.linkFaults) parts.push('link faults');
  if (f.filter) parts.push('filter');
  if (f.finiteNic) parts.push('finite NIC');
  return `${t} NET ${parts.join(', ')}`;
}

/** sha256 over the canonical lines of events in the order given (the simulator's global order). */
export function traceHashOf(events: readonly LogEvent[], extra = ''): string {
  const h = createHash('sha256');
  for (const e of events) h.update(formatEvent(e) + '\n');
  h.update(extra);
  return h.digest('hex').slice(0, 16);
}
