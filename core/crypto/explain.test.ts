// Proves every drop reason has a line naming the source and a likely cause, and that only replays and datagrams behind the window go unlogged (the network makes those too).
import { beforeAll, describe, expect, it } from 'vitest';
import { createSealer, cryptoReady, type DropReason, type SealerStats } from './sealer.ts';
import { dropIsLogged, explainDrop } from './explain.ts';

beforeAll(async () => {
  await cryptoReady();
});

const REASONS: DropReason[] = ['droppedTruncated', 'droppedOversize', 'droppedGarbage', 'droppedVersion', 'droppedMode',
  'droppedOtherCluster', 'droppedWrongSender', 'droppedWrongDestination', 'droppedStaleIncarnation', 'droppedReplay',
  'droppedBehindWindow', 'droppedAuth'];

describe('explainDrop', () => {
  it('covers every counter the sealer drops by', () => {
    const st: SealerStats = createSealer({ clusterName: 'a', nodeId: 1, nodes: [1], incarnation: 1 }).stats();
    expect(Object.keys(st).filter((k) => k.startsWith('dropped')).sort()).toEqual([...REASONS].sort());
  });

  it('names the source and hints at the cause', () => {
    const d = createSealer({ clusterName: 'beta', key: new Uint8Array(32), nodeId: 2, nodes: [1, 2, 3], incarnation: 7 }).seal(Uint8Array.of(1), 3);
    const ctx = { source: '127.0.0.2:5405 (node 2)', from: 2, nodeId: 1, clusterName: 'alpha', encrypted: true, knownIncarnation: 9 };
    const lines = Object.fromEntries(REASONS.map((r) => [r, explainDrop(r, d, ctx)]));
    for (const l of Object.values(lines)) expect(l).toMatch(/^datagram from 127\.0\.0\.2:5405 \(node 2\) /);
    expect(lines.droppedAuth).toContain('a different key, or a different cluster name?');
    expect(lines.droppedOtherCluster).toMatch(/another cluster \(name hash 0x[0-9a-f]{8}, this node's "alpha" is 0x[0-9a-f]{8}\): a different cluster name\?/);
    expect(lines.droppedVersion).toContain('wire format version 2, this node speaks version 2');
    expect(lines.droppedMode).toContain('is not encrypted, and this node has a key');
    expect(explainDrop('droppedMode', d, { ...ctx, encrypted: false })).toContain('is encrypted, and this node has no key');
    expect(lines.droppedWrongSender).toContain('says it was sent by node 2');
    expect(lines.droppedWrongDestination).toContain('is addressed to node 3, not this node (1)');
    expect(lines.droppedStaleIncarnation).toContain('earlier incarnation of node 2 (7) than the one already seen (9)');
    expect(explainDrop('droppedGarbage', Uint8Array.of(1, 2), ctx)).toContain('not an afcluster datagram');
    expect(REASONS.filter((r) => !dropIsLogged(r))).toEqual(['droppedReplay', 'droppedBehindWindow']);
  });
});
