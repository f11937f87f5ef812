// The headline figures of a node, picked from the daemon's STATS reply (node.*, bridge.*,
// groups.*, driver.*). Drivers name their counters their own way: each figure lists the
// names it accepts, first match wins.
import type { StatValue } from '../core/af/codec.ts';

export interface Headline {
  readonly node: number;
  readonly driver: string;
  readonly ringId: string;
  readonly members: string;
  readonly sent?: number;
  readonly delivered?: number;
  readonly retransmitted?: number;
  /** Per second, from two samples of a rotation counter (or a rate the driver gives). */
  readonly tokenRotationsPerSec?: number;
  readonly driverQueue?: number;
  readonly bridgeQueue: number;
  readonly bridgeQueueMax: number;
  readonly sockets: number;
  readonly groups: number;
}

const NAMES = {
  sent: ['sent', 'messagesSent', 'multicasts', 'mcastSent'],
  delivered: ['delivered', 'messagesDelivered'],
  retransmitted: ['retransmitted', 'retransmits', 'retransmissions', 'mcastRetransmits', 'resent'],
  // A node sees the token once per rotation.
  rotations: ['tokenRotations', 'rotations', 'tokensReceived', 'tokens'],
  rotationRate: ['tokenRotationsPerSec', 'rotationsPerSec'],
  driverQueue: ['queuedMessages', 'queued', 'sendQueue', 'sendQueueDepth'],
} as const;

function pick(stats: Readonly<Record<string, StatValue>>, names: readonly string[]): number | undefined {
  for (const n of names) {
    const v = stats[`driver.${n}`];
    if (typeof v === 'number') return v;
  }
  return undefined;
}

function num(stats: Readonly<Record<string, StatValue>>, key: string): number {
  const v = stats[key];
  return typeof v === 'number' ? v : 0;
}

export function headline(stats: Readonly<Record<string, StatValue>>, prev?: Readonly<Record<string, StatValue>>, dtMs?: number): Headline {
  let rate = pick(stats, NAMES.rotationRate);
  const rot = pick(stats, NAMES.rotations);
  const prevRot = prev ? pick(prev, NAMES.rotations) : undefined;
  if (rate === undefined && rot !== undefined && prevRot !== undefined && dtMs) rate = ((rot - prevRot) * 1000) / dtMs;
  return {
    node: num(stats, 'node.id'), driver: String(stats['node.driver'] ?? '?'), ringId: String(stats['node.ringId'] ?? '?'),
    members: String(stats['node.members'] ?? ''),
    sent: pick(stats, NAMES.sent), delivered: pick(stats, NAMES.delivered), retransmitted: pick(stats, NAMES.retransmitted),
    tokenRotationsPerSec: rate, driverQueue: pick(stats, NAMES.driverQueue),
    bridgeQueue: num(stats, 'bridge.queueDepth'), bridgeQueueMax: num(stats, 'bridge.queueDepthMax'),
    sockets: num(stats, 'bridge.sockets'), groups: Object.keys(stats).filter((k) => k.startsWith('group.')).length,
  };
}

/** True when the driver has a rotation counter, so a rate needs two samples. */
export function hasRotationCounter(stats: Readonly<Record<string, StatValue>>): boolean {
  return pick(stats, NAMES.rotationRate) === undefined && pick(stats, NAMES.rotations) !== undefined;
}

const dash = (v: number | undefined, digits = 0): string => (v === undefined ? '-' : v.toFixed(digits));

export const TABLE_HEADER = 'node  driver  ring          members    sent    delivered  retrans  tok/s   drvq  brq/max  socks groups';

export function tableRow(h: Headline): string {
  return [
    String(h.node).padEnd(5), h.driver.padEnd(7), h.ringId.padEnd(13), (h.members || '-').padEnd(10),
    dash(h.sent).padStart(7), dash(h.delivered).padStart(11), dash(h.retransmitted).padStart(8),
    dash(h.tokenRotationsPerSec, 1).padStart(7), dash(h.driverQueue).padStart(6),
    `${h.bridgeQueue}/${h.bridgeQueueMax}`.padStart(8), String(h.sockets).padStart(6), String(h.groups).padStart(6),
  ].join(' ');
}
