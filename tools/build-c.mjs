#!/usr/bin/env node
// Builds the C client (clients/c: libafcluster.a, afc-listen, afc-bench) with make into
// clients/c/build. Run by package.json "prepare" (npm install, npm ci) after the bundle, and by
// hand: `npm run build:c`. The C client is optional: on a machine without a C compiler ($CC, else
// cc) or make, or when the build fails, this prints a warning and exits 0, so npm install goes on.
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIR = join(ROOT, 'clients/c');
const cc = process.env.CC || 'cc';
const works = (cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;

if (!works(cc) || !works('make')) {
  console.warn(`afcluster: no C compiler (${cc}) or no make here: the C client (clients/c) was not built; install them, then npm run build:c`);
} else {
  const r = spawnSync('make', ['-s', '-C', DIR], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status === 0) console.log('afcluster: built the C client into clients/c/build (libafcluster.a, afc-listen, afc-bench)');
  else console.warn('afcluster: the C client (clients/c) did not build (see above); everything else is installed');
}
