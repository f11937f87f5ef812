// Entry point of the `afcluster` command: dispatches to sub-commands, loaded on demand.
import { UsageError, type Command } from './command.ts';

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
    'usage: afcluster COMMAND [options]   (afcluster COMMAND --help for details)', '', 'commands:'];
  for (const name of Object.keys(COMMANDS)) {
    const cmd = await load(name);
    if (cmd) lines.push(`  ${name.padEnd(10)} ${cmd.summary}`);
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(await mainHelp());
    return name === undefined ? 2 : 0;
  }
  const cmd = await load(name);
  if (!cmd) {
    console.error(`afcluster: unknown command "${name}"; commands: ${Object.keys(COMMANDS).join(', ')}`);
    return 2;
  }
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

process.exitCode = await main(process.argv.slice(2));
