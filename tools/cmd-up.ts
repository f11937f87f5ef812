// `afcluster up`: a whole local cluster in one command. Writes a generated config and key for N
// nodes on 127.0.0.1..N, runs one daemon process per node, says how to talk to each, shows a
// live view of membership and counters, and stops everything on Ctrl-C or SIGTERM.
import { DEFAULT_DRIVER } from '../core/config/index.ts';
import { builtinRegistry } from '../drivers/builtin.ts';
import type { StatValue } from '../core/af/codec.ts';
import { ClusterSocket } from '../sockapi/client.ts';
import { intFlag, parseFlags, UsageError, type Command } from './command.ts';
import { killAllNow, LocalCluster, portTaken, type LocalNode } from './local-cluster.ts';
import { headline, TABLE_HEADER, tableRow } from './stats-view.ts';
import { clearUpRecord, writeUpRecord, type UpRecord } from './target.ts';

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

/** One node as the live view sees it: its daemon, the socket it reads counters on, the last sample. */
interface Node {
  readonly n: LocalNode;
  sock?: ClusterSocket;
  prev?: { stats: Record<string, StatValue>; at: number };
}

function howTo(nodes: readonly LocalNode[], dir: string, driver: string): string {
  const lines = [`afcluster up: ${nodes.length} nodes, driver ${driver}, configs, key and logs in ${dir}`, ''];
  for (const n of nodes) lines.push(`  node ${n.id}  127.0.0.${n.id}  socket ${n.socket}  (pid ${n.proc?.pid})`);
  lines.push('', 'talk to it (from another terminal):',
    '  afcluster listen demo --node 1            # print messages and membership of group "demo"',
    '  afcluster send demo "hello" --node 2      # send one message',
    '  afcluster status --node 3 [--json]        # counters of one node',
    `  python3 examples/python-client.py ${nodes[0]?.socket ?? 'SOCKET'} demo hello`,
    "  TypeScript: const s = await ClusterSocket.open({ path: '<socket>' }); await s.bind('demo'); for await (const ev of s) ...",
    '', 'Ctrl-C stops every node.', '');
  return lines.join('\n');
}

interface Sample { readonly text: string; /** The text without rates, to tell a change apart from noise. */ readonly stable: string }

async function sample(v: Node): Promise<Sample> {
  const plain = (text: string): Sample => ({ text, stable: text });
  const n = v.n;
  if (n.exited) return plain(`${String(n.id).padEnd(5)} down (${n.exited})`);
  try {
    v.sock ??= await ClusterSocket.open({ path: n.socket, timeoutMs: 2000 });
    const stats = await v.sock.stats({ signal: AbortSignal.timeout(2000) });
    const now = Date.now();
    const h = headline(stats, v.prev?.stats, v.prev ? now - v.prev.at : undefined);
    v.prev = { stats, at: now };
    const groups = Object.entries(stats).filter(([k]) => k.startsWith('group.')).map(([k, v]) => `${k.slice(6)}: ${v}`);
    const more = groups.length ? `\n      groups  ${groups.join(' | ')}` : '';
    return { text: tableRow(h) + more, stable: tableRow({ ...h, tokenRotationsPerSec: undefined }) + more };
  } catch (e) {
    v.sock = undefined;
    return plain(`${String(n.id).padEnd(5)} not answering (${(e as Error).message})`);
  }
}

/** Refresh the view every second until `stopped` resolves. A TTY is redrawn in place; else plain lines when they change. */
async function liveView(nodes: Node[], stopped: Promise<void>): Promise<void> {
  const tty = process.stdout.isTTY === true;
  let last = '';
  let printedLines = 0;
  let done = false;
  void stopped.then(() => { done = true; });
  while (!done) {
    const rows = await Promise.all(nodes.map(sample));
    const text = [TABLE_HEADER, ...rows.map((r) => r.text)].join('\n');
    const stable = rows.map((r) => r.stable).join('\n');
    if (tty) {
      const clear = printedLines ? `\x1b[${printedLines}A\x1b[J` : '';
      process.stdout.write(`${clear}${new Date().toISOString().slice(11, 19)}\n${text}\n`);
      printedLines = text.split('\n').length + 1;
    } else if (stable !== last) {
      process.stdout.write(`${new Date().toISOString()}\n${text}\n`);
    }
    last = stable;
    await Promise.race([stopped, new Promise((r) => setTimeout(r, 1000))]);
  }
}

export const command: Command = {
  name: 'up',
  summary: 'run a local cluster of N daemons on 127.0.0.1..N with a live view',
  help: `usage: afcluster up [--nodes N] [--driver totem|cman] [--dir D] [--port P] [--keep] [--log-level L]

Writes a generated config and key for N nodes (127.0.0.1 .. 127.0.0.N, one UDP port) into a
temporary directory (or D), starts one daemon per node, prints each node's socket and how to
talk to it, and shows a live view of membership and counters refreshed every second (plain
lines when the output is not a terminal). Ctrl-C or SIGTERM stops every node.
Other commands reach node K of this cluster with --node K (the cluster is recorded in
$XDG_RUNTIME_DIR or the temp dir, under afcluster-up-UID/current).

options:
  --nodes N            number of nodes, 1..254 (default 3)
  --driver NAME        cluster driver (default ${DEFAULT_DRIVER})
  --dir D              write configs, key, sockets and logs to D (kept afterwards)
  --port P             UDP port of every node (default 5405)
  --keep               keep the temporary directory after stopping
  --log-level L        daemons' log level (default info); logs are D/nodeK.log`,
  async run(argv) {
    const { values } = parseFlags(argv, {
      nodes: { type: 'string' }, driver: { type: 'string' }, dir: { type: 'string' }, port: { type: 'string' },
      keep: { type: 'boolean' }, 'log-level': { type: 'string' },
    });
    const count = intFlag(values.nodes, 'nodes', 3, 1, 254);
    const basePort = intFlag(values.port, 'port', 5405, 1, 65535);
    const driver = values.driver ?? DEFAULT_DRIVER;
    const registry = builtinRegistry();
    if (!registry.has(driver)) throw new UsageError(`--driver ${driver}: registered drivers are ${registry.names().join(', ') || '(none)'}`);
    const taken = await portTaken(basePort, count);
    if (taken) {
      throw new UsageError(`UDP port ${basePort} is already in use on ${taken} (another "afcluster up", or a daemon, runs there); choose another port: afcluster up --port ${basePort === 65535 ? 5505 : basePort + 100}`);
    }
    const cluster = new LocalCluster({ nodes: count, driver, basePort, dir: values.dir, keep: values.keep, prefix: 'afcluster-up-', logLevel: values['log-level'] ?? 'info' });
    const { dir, nodes } = cluster;
    cluster.startAll();
    let stop!: () => void;
    const stopped = new Promise<void>((r) => { stop = r; });
    let signals = 0;
    const onSignal = (): void => {
      if (++signals === 1) return stop();
      console.error('second signal: killing every node now');
      killAllNow();
      process.exit(1);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const views: Node[] = nodes.map((n) => ({ n }));
    try {
      const deadline = Date.now() + START_TIMEOUT_MS;
      try {
        await Promise.all(views.map(async (v) => { v.sock = await cluster.waitAnswering(v.n.id, deadline); }));
      } catch (e) {
        // The message quotes the log; its file goes with the temporary directory, so say so.
        if (!cluster.keepDir) (e as Error).message = `${(e as Error).message.replace(/its log \S+:/, 'its log (removed with the temporary directory; --keep keeps it):')}`;
        if (/EADDRINUSE|address in use/.test((e as Error).message)) (e as Error).message += `\nanother process holds UDP port ${basePort}: choose another with --port P`;
        throw e;
      }
      const rec: UpRecord = { pid: process.pid, dir, driver, nodes: nodes.map((n) => ({ id: n.id, socket: n.socket, config: n.config, pid: n.proc?.pid ?? 0 })) };
      writeUpRecord(rec);
      console.log(howTo(nodes, dir, driver));
      await liveView(views, stopped);
      console.log('stopping every node...');
      return 0;
    } finally {
      await Promise.all(views.map((v) => v.sock?.close()));
      await cluster.stop(STOP_TIMEOUT_MS);
      clearUpRecord(process.pid);
      if (cluster.keepDir) console.log(`configs, key and logs kept in ${dir}`);
    }
  },
};
