#!/usr/bin/env node
// Builds the native helper (core/native: the unix datagram sockets of the daemon and the client,
// and malloc_trim, so a daemon gives the memory freed after a load back to the kernel) with
// node-gyp into core/native/build. Run by package.json
// "install" (npm install and npm ci here, and where the package is installed) and by hand:
// `npm run build:native`. The helper is optional: when
// node-gyp or a C compiler is missing, or the build fails, this prints a warning and exits 0; the
// daemon and the client then run on unix-dgram's sockets at bridge protocol version 4, and the
// daemon keeps freed memory (STATS: process.mallocTrims stays 0).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIR = join(ROOT, 'core/native');

/** node-gyp: the one npm names to its scripts, else the one bundled with npm. */
function nodeGyp() {
  const named = process.env.npm_config_node_gyp;
  if (named && existsSync(named)) return named;
  const npm = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  const bundled = npm.status === 0 ? join(npm.stdout.trim(), 'npm/node_modules/node-gyp/bin/node-gyp.js') : '';
  return bundled && existsSync(bundled) ? bundled : undefined;
}

/** Node's headers: where npm's config says (a distribution's Node sets nodedir), else node-gyp
 *  downloads them. */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const r = spawnSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' });
  const dir = r.status === 0 ? r.stdout.trim() : '';
  return dir && dir !== 'undefined' && dir !== 'null' ? [`--nodedir=${dir}`] : [];
}

const gyp = nodeGyp();
if (!gyp) {
  console.warn('afcluster: node-gyp not found: the daemon\'s native helper (core/native) was not built; the daemon and the client run on unix-dgram (protocol version 4) and without returning freed memory to the kernel');
} else {
  const r = spawnSync(process.execPath, [gyp, 'rebuild', '--loglevel=error', ...nodedirArgs()], { cwd: DIR, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status === 0) console.log('afcluster: built the daemon\'s native helper into core/native/build');
  else console.warn('afcluster: the daemon\'s native helper (core/native) did not build (see above); the daemon and the client run on unix-dgram (protocol version 4) and without malloc_trim');
}
