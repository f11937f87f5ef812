// `afcluster up`: a whole local cluster in one command. Writes a generated config and key for N
// nodes on 127.0.0.1..N, runs one daemon process per node, says how to talk to each, shows a
// live view of membership and counters, and stops everything on Ctrl-C or SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeLocalCluster, DEFAULT_DRIVER, loadConfig } from '../core/config/index.ts';
import { builtinRegistry } from '../core/driver/builtin.ts';
import { ClusterError } from '../core/errors.ts';
import type { StatValue } from '../core/af/codec.ts';
import { ClusterSocket } from '../sockapi/client.ts';
import { intFlag, parseFlags, UsageError, type Command } from './command.ts';
import { headline, TABLE_HEADER, tableRow } from './stats-view.ts';
import { clearUpRecord, writeUpRecord, type UpRecord } from './target.ts';

const ENTRY = join(dirname(fileURLToPath(import.meta.url)), 'afcluster.mjs');
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

interface Node {
  readonly id: number;
  readonly config: string;
  readonly socket: string;
  readonly log: string;
  readonly child: ChildProcess;
  exited?: string;
  sock?: ClusterSocket;
  prev?: { stats: Record<string, StatValue>; at: number };
}

function spawnDaemon(id: number, config: string, dir: string, logLevel: string): Omit<Node, 'socket'> {
  const log = join(dir, `node${id}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, [ENTRY, 'daemon', '--config', config, '--log-level', logLevel], {
    stdio: ['ignore', fd, fd], env: process.env,
  });
  return { id, config, log, child };
}

function tail(path: string, lines = 15): string {
  try { return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return '(no log)'; }
}

/** Wait until the node's daemon answers on its socket (or its process ends). */
async function waitReady(node: Node, deadline: number): Promise<void> {
  for (;;) {
    if (node.exited) throw new ClusterError('ECONNREFUSED', `node ${node.id}'s daemon exited (${node.exited}); its log ${node.log}:\n${tail(node.log)}`);
    if (existsSync(node.socket)) {
      try {
        node.sock = await ClusterSocket.open({ path: node.socket, timeoutMs: 2000 });
        return;
      } catch { /* not answering yet */ }
    }
    if (Date.now() > deadline) throw new ClusterError('ETIMEDOUT', `node ${node.id}'s daemon did not open ${node.socket} in ${START_TIMEOUT_MS} ms; its log ${node.log}:\n${tail(node.log)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function howTo(nodes: readonly Node[], dir: string, driver: string): string {
  const lines = [`afcluster up: ${nodes.length} nodes, driver ${driver}, configs, key and logs in ${dir}`, ''];
  for (const n of nodes) lines.push(`  node ${n.id}  127.0.0.${n.id}  socket ${n.socket}  (pid ${n.child.pid})`);
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

async function sample(n: Node): Promise<Sample> {
  const plain = (text: string): Sample => ({ text, stable: text });
  if (n.exited) return plain(`${String(n.id).padEnd(5)} down (${n.exited})`);
  try {
    n.sock ??= await ClusterSocket.open({ path: n.socket, timeoutMs: 2000 });
    const stats = await n.sock.stats({ signal: AbortSignal.timeout(2000) });
    const now = Date.now();
    const h = headline(stats, n.prev?.stats, n.prev ? now - n.prev.at : undefined);
    n.prev = { stats, at: now };
    const groups = Object.entries(stats).filter(([k]) => k.startsWith('group.')).map(([k, v]) => `${k.slice(6)}: ${v}`);
    const more = groups.length ? `\n      groups  ${groups.join(' | ')}` : '';
    return { text: tableRow(h) + more, stable: tableRow({ ...h, tokenRotationsPerSec: undefined }) + more };
  } catch (e) {
    n.sock = undefined;
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

async function stopAll(nodes: Node[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.sock?.close()));
  await Promise.all(nodes.map((n) => new Promise<void>((res) => {
    if (n.exited) return res();
    const t = setTimeout(() => { n.child.kill('SIGKILL'); }, STOP_TIMEOUT_MS);
    n.child.once('exit', () => { clearTimeout(t); res(); });
    n.child.kill('SIGTERM');
  })));
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
    const dir = resolve(values.dir ?? mkdtempSync(join(tmpdir(), 'afcluster-up-')));
    const keepDir = values.keep === true || values.dir !== undefined;
    const { configs } = writeLocalCluster({ dir, nodes: count, driver, crypto: true, basePort });
    const nodes: Node[] = configs.map((config, i) => {
      const socket = loadConfig(config, registry).node.socket;
      const n: Node = { ...spawnDaemon(i + 1, config, dir, values['log-level'] ?? 'info'), socket };
      n.child.once('exit', (code, sig) => { n.exited = sig ? `signal ${sig}` : `exit ${code}`; });
      return n;
    });
    let stop!: () => void;
    const stopped = new Promise<void>((r) => { stop = r; });
    let signals = 0;
    const onSignal = (): void => {
      if (++signals === 1) return stop();
      console.error('second signal: killing every node now');
      for (const n of nodes) n.child.kill('SIGKILL');
      process.exit(1);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const deadline = Date.now() + START_TIMEOUT_MS;
      await Promise.all(nodes.map((n) => waitReady(n, deadline)));
      const rec: UpRecord = { pid: process.pid, dir, driver, nodes: nodes.map((n) => ({ id: n.id, socket: n.socket, config: n.config, pid: n.child.pid ?? 0 })) };
      writeUpRecord(rec);
      console.log(howTo(nodes, dir, driver));
      await liveView(nodes, stopped);
      console.log('stopping every node...');
      return 0;
    } finally {
      await stopAll(nodes);
      clearUpRecord(process.pid);
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
      else console.log(`configs, key and logs kept in ${dir}`);
    }
  },
};
