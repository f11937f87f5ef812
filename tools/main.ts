// Entry point of the `afcluster` command: dispatches to sub-commands, loaded on demand. Every
// run ends with an exit status (0 done, 1 failed, 2 usage), whatever a command left open.
import { readFileSync } from 'node:fs';
import { UsageError, type Command } from './command.ts';

/** The package's version (package.json sits one level above tools/, in a checkout and installed). */
function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Sub-commands and the module that implements each (loaded lazily: startup stays fast). */
const COMMANDS: Record<string, () => Promise<{ command: Command }>> = {
  keygen: () => import('./cmd-keygen.ts'),
  daemon: () => import('./cmd-daemon.ts'),
  up: () => import('./cmd-up.ts'),
  status: () => import('./cmd-status.ts'),
  quorum: () => import('./cmd-quorum.ts'),
  send: () => import('./cmd-send.ts'),
  listen: () => import('./cmd-listen.ts'),
  lock: () => import('./cmd-lock.ts'),
  drill: () => import('./cmd-drill.ts'),
  faults: () => import('./cmd-faults.ts'),
  sim: () => import('./cmd-sim.ts'),
  bench: () => import('./cmd-bench.ts'),
};

async function load(name: string): Promise<Command | undefined> {
  const loader = COMMANDS[name];
  return loader ? (await loader()).command : undefined;
}

async function mainHelp(): Promise<string> {
  const lines = ['afcluster: cluster sockets and process groups over the totem or cman driver', '',
    'usage: afcluster COMMAND [options]   (afcluster help COMMAND, or afcluster COMMAND --help, for details)',
    '       afcluster --version', '', 'commands:'];
  for (const name of Object.keys(COMMANDS)) {
    const cmd = await load(name);
    if (cmd) lines.push(`  ${name.padEnd(10)} ${cmd.summary}`);
  }
  return lines.join('\n');
}

/** Edit distance (insertions, deletions, substitutions, swaps of neighbours), for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

function unknown(name: string): number {
  const near = Object.keys(COMMANDS).find((c) => distance(c, name) <= 2);
  console.error(`afcluster: unknown command "${name}"${near ? ` (did you mean "${near}"?)` : ''}; commands: ${Object.keys(COMMANDS).join(', ')}\n(afcluster --help lists them)`);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    console.log(`afcluster ${version()}`);
    return 0;
  }
  if (name === 'help' && rest.length > 0) {
    const cmd = await load(rest[0]);
    if (!cmd) return unknown(rest[0]);
    console.log(cmd.help);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(await mainHelp());
    return name === undefined ? 2 : 0;
  }
  if (name.startsWith('-')) {
    console.error(`afcluster: "${name}" is not a command; options come after the command (afcluster COMMAND ${name}), or try afcluster --help`);
    return 2;
  }
  const cmd = await load(name);
  if (!cmd) return unknown(name);
  // Flags after `--` belong to a command the sub-command runs (afcluster lock X -- grep --help).
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (own.includes('--help') || own.includes('-h')) {
    console.log(cmd.help);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`afcluster ${name}: ${e.message}\n(afcluster ${name} --help for usage)`);
      return 2;
    }
    const err = e as { code?: string; message?: string };
    console.error(`afcluster ${name}: ${err.message ?? String(e)}`);
    return 1;
  }
}

// Exit now: a socket or timer a failed command left behind must not keep the process waiting
// (standard output and error are written synchronously to files, pipes and terminals).
process.exit(await main(process.argv.slice(2)));
