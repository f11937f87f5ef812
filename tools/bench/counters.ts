// The driver counters next to each throughput row, from two STATS snapshots of every daemon
// (pure). Drivers name their counters their own way; each figure lists the names it accepts.
import type { StatValue } from '../../core/af/codec.ts';
import type { DriverCounters } from './results.ts';

type Stats = Readonly<Record<string, StatValue>>;

const NAMES = {
  retransmissions: ['mcastRetransmits', 'resent', 'retransmitted', 'retransmits', 'retransmissions'],
  rotations: ['tokens', 'tokenRotations', 'rotations', 'tokensReceived'],
  messagesFramed: ['messagesFramed'],
  framesSent: ['framesSent'],
  mcastSent: ['mcastSent'],
  delivered: ['delivered', 'messagesDelivered'],
  tokenRetransmissions: ['tokenRetransmits'],
  configurations: ['rings', 'configurations'],
} as const;

function pick(s: Stats, names: readonly string[]): number | undefined {
  for (const n of names) {
    const v = s[`driver.${n}`];
    if (typeof v === 'number') return v;
  }
  return undefined;
}

/** Sum over nodes of after - before; undefined if any node lacks the counter. */
function delta(before: readonly Stats[], after: readonly Stats[], names: readonly string[]): number | undefined {
  let sum = 0;
  for (let i = 0; i < after.length; i++) {
    const a = pick(after[i], names);
    const b = pick(before[i] ?? {}, names);
    if (a === undefined || b === undefined) return undefined;
    sum += a - b;
  }
  return sum;
}

export function driverCounters(before: readonly Stats[], after: readonly Stats[], seconds: number): DriverCounters {
  const n = after.length;
  const rot = delta(before, after, NAMES.rotations);
  const framed = delta(before, after, NAMES.messagesFramed);
  const frames = delta(before, after, NAMES.framesSent);
  const mcast = delta(before, after, NAMES.mcastSent);
  const delivered = delta(before, after, NAMES.delivered);
  let perDatagram: number | undefined;
  if (framed !== undefined && frames !== undefined && frames > 0) perDatagram = framed / frames;
  // Every node delivers every message once: messages = delivered per node; datagrams = all frames sent.
  else if (mcast !== undefined && delivered !== undefined && mcast > 0) perDatagram = delivered / n / mcast;
  return {
    retransmissions: delta(before, after, NAMES.retransmissions),
    // Each node sees the token once per rotation.
    tokenRotationsPerSec: rot === undefined || seconds <= 0 ? undefined : rot / n / seconds,
    messagesPerDatagram: perDatagram,
    tokenRetransmissions: delta(before, after, NAMES.tokenRetransmissions),
    configurations: delta(before, after, NAMES.configurations),
  };
}
