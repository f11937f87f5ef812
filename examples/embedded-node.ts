// The group API with no daemon: three embedded nodes in this one process (127.0.0.1..3), one
// socket each in group "chat". Run: npx tsx examples/embedded-node.ts [totem|cman]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, writeLocalCluster } from '../core/config/index.ts';
import { builtinRegistry } from '../drivers/builtin.ts';
import { createNode, type EmbeddedNode } from '../sockapi/node.ts';

const driver = process.argv[2] ?? 'totem';
const registry = builtinRegistry();
const dir = mkdtempSync(join(tmpdir(), 'afcluster-embedded-'));
const { configs } = writeLocalCluster({ dir, nodes: 3, driver, basePort: 5505, crypto: true });
const nodes: EmbeddedNode[] = [];
try {
  for (const path of configs) nodes.push(await createNode({ config: loadConfig(path, registry), registry }));
  const sockets = await Promise.all(nodes.map((n) => n.socket()));
  const order = driver === 'cman' ? 'fifo' : 'agreed';
  await Promise.all(sockets.map((s) => s.bind('chat')));
  const done = sockets.map(async (s, i) => {
    let messages = 0;
    for await (const ev of s) {
      if (ev.type === 'membership') console.log(`node ${i + 1}: ${ev.kind} ${ev.group} members ${ev.members.map((m) => m.nodeId).join(',')}`);
      if (ev.type === 'message') console.log(`node ${i + 1}: from ${ev.sender.nodeId}: ${new TextDecoder().decode(ev.data)}`);
      if (ev.type === 'message' && ++messages === 3) return;
    }
  });
  // Send once everyone sees everyone, so each socket gets all three messages.
  while ((await Promise.all(sockets.map((s) => s.members()))).some((m) => m.length < 3)) await new Promise((r) => setTimeout(r, 20));
  await Promise.all(sockets.map((s, i) => s.send(`hello from node ${i + 1}`, { order })));
  await Promise.all(done);
} finally {
  for (const n of nodes) await n.close();
  rmSync(dir, { recursive: true, force: true });
}
