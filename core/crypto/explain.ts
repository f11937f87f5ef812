// What to tell an operator about a dropped datagram: a line naming the source and the likely
// cause. The runtime logs it, rate-limited per source (core/transport/ratelimit.ts).
import { clusterNameHash, readHeader, MODE_SEALED, WIRE_VERSION, type DropReason } from './sealer.ts';

/** Reasons worth a log line. Replays and datagrams behind the window are only counted: the
 *  network makes a few of them too (duplicates, reordering). */
export function dropIsLogged(reason: DropReason): boolean {
  return reason !== 'droppedReplay' && reason !== 'droppedBehindWindow';
}

export interface DropContext {
  /** "127.0.0.2:5405 (node 2)". */
  readonly source: string;
  readonly from: number;
  readonly nodeId: number;
  readonly clusterName: string;
  readonly encrypted: boolean;
  /** The newest incarnation this node has seen from `from`, if any. */
  readonly knownIncarnation?: number;
}

/** One line (no trailing period) for a datagram open() dropped with `reason`. */
export function explainDrop(reason: DropReason, d: Uint8Array, c: DropContext): string {
  const h = readHeader(d);
  const src = `datagram from ${c.source}`;
  switch (reason) {
    case 'droppedAuth':
      return `${src} failed authentication: a different key, or a different cluster name? Every node needs the same [crypto] key_file and cluster.name (or it is forged)`;
    case 'droppedOtherCluster':
      return `${src} belongs to another cluster (name hash ${hex(h?.clusterHash ?? 0)}, this node's "${c.clusterName}" is ${hex(clusterNameHash(c.clusterName))}): a different cluster name? cluster.name must be the same on every node`;
    case 'droppedMode':
      return c.encrypted
        ? `${src} is not encrypted, and this node has a key: is [crypto] key_file set on every node?`
        : `${src} is encrypted, and this node has no key: set the same [crypto] key_file on this node`;
    case 'droppedVersion':
      return `${src} has wire format version ${h?.version ?? '?'}, this node speaks version ${WIRE_VERSION}: run the same afcluster version on every node`;
    case 'droppedGarbage':
      return `${src} is not an afcluster datagram (no magic): something else is sending to this port from a node's address`;
    case 'droppedTruncated':
    case 'droppedOversize':
      return `${src} has an impossible length (${d.length} bytes${h?.mode === MODE_SEALED ? ', sealed' : ''}): cut short or padded on the way`;
    case 'droppedWrongSender':
      return `${src} says it was sent by node ${h?.stamp?.sender ?? '?'}: a spoofed source address, or two nodes with the same address or node.id?`;
    case 'droppedWrongDestination':
      return `${src} is addressed to node ${h?.stamp?.destination ?? '?'}, not this node (${c.nodeId}): a datagram replayed from another node's traffic, or a wrong node.id?`;
    case 'droppedStaleIncarnation':
      return `${src} belongs to an earlier incarnation of node ${c.from} (${h?.stamp?.incarnation ?? '?'}) than the one already seen (${c.knownIncarnation ?? '?'}): a replay, or node ${c.from} restarted with its clock set back and its node.state_dir lost (restart this node to forget the newer one)`;
    case 'droppedReplay':
    case 'droppedBehindWindow':
      return `${src} was already accepted, or is too old to tell (seq ${h?.stamp?.seq ?? '?'}): a replay or a network duplicate`;
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
