#!/usr/bin/env node
// Bundles the `afcluster` command (tools/main.ts and every module it loads) into dist/ with
// esbuild, so the daemon and the CLI run as plain JavaScript without the TypeScript loader (tsx
// costs ~35 MB of RSS per process and compiles at every start). Run by package.json "prepare"
// (npm install, npm ci) and by hand: `node tools/build.mjs`. The bin (tools/afcluster.mjs) runs
// the bundle only while bundleEntry() says it is fresh; otherwise it falls back to tsx.
// The same build writes the client library of the package (dist/lib/index.mjs for `afcluster`,
// dist/lib/node.mjs for `afcluster/node`); `node tools/build.mjs --types` (npm pack's prepack,
// before its prepare builds the bundle) writes only their type declarations, to types/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Loaded from node_modules at run time: native addon, wasm, and pino's worker-thread transports. */
const EXTERNAL = ['unix-dgram', 'libsodium-wrappers', 'pino'];
const MANIFEST = 'build.json';
const ENTRY = 'afcluster.mjs';

/**
 * The bundle's entry file when it may be run, else undefined (then run the sources with tsx).
 * Fresh means: every file the bundle was built from (sources, bundled packages, this script,
 * package.json) still exists and none was modified at or after the moment the build began, so an
 * edit during or after a build always sends the bin back to the sources. AFCLUSTER_TSX=1 forces tsx.
 */
export function bundleEntry(root = ROOT, dist = join(root, 'dist'), env = process.env) {
  if (env.AFCLUSTER_TSX === '1') return undefined;
  // An installed package ships the bundle without its sources: the bundle is all there is.
  if (!existsSync(join(root, 'tools', 'main.ts'))) return existsSync(join(dist, ENTRY)) ? join(dist, ENTRY) : undefined;
  try {
    const manifest = JSON.parse(readFileSync(join(dist, MANIFEST), 'utf8'));
    if (typeof manifest.started !== 'number' || !Array.isArray(manifest.inputs)) return undefined;
    for (const input of manifest.inputs) {
      if (statSync(join(root, input)).mtimeMs >= manifest.started) return undefined;
    }
    statSync(join(dist, ENTRY));
    return join(dist, ENTRY);
  } catch {
    return undefined; // no bundle, a half-written one, or an input gone: the sources are the truth
  }
}

/**
 * In the bundle every module runs from dist/, so import.meta.url would name dist/: modules that
 * find files beside themselves (workers, the bin, native requires) get the URL of their source
 * file instead, relative to the bundle's directory (the checkout can still move).
 */
function sourceLocations(root, dist) {
  return {
    name: 'source-locations',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        if (args.path.includes(`${sep}node_modules${sep}`) || !text.includes('import.meta.')) return undefined;
        const file = relative(dist, args.path).split(sep).join('/');
        const dir = relative(dist, dirname(args.path)).split(sep).join('/');
        const at = (rel) => `new URL(${JSON.stringify(rel)}, import.meta.url)`;
        const contents = text
          .replaceAll('import.meta.url', `${at(file)}.href`)
          .replaceAll('import.meta.dirname', `decodeURIComponent(${at(dir)}.pathname)`)
          .replaceAll('import.meta.filename', `decodeURIComponent(${at(file)}.pathname)`);
        return { contents, loader: 'ts', resolveDir: dirname(args.path) };
      });
    },
  };
}

/** Builds into a fresh sibling directory, then swaps it in: a reader sees an old bundle or none. */
export async function buildBundle(root = ROOT, dist = join(root, 'dist')) {
  const { build } = await import('esbuild');
  const started = Date.now();
  const tmp = `${dist}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const result = await build({
      absWorkingDir: root, entryPoints: { afcluster: join(root, 'tools/main.ts') },
      bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20',
      outdir: tmp, outExtension: { '.js': '.mjs' }, chunkNames: '[name]-[hash]',
      external: EXTERNAL, metafile: true, sourcemap: 'linked', logLevel: 'warning',
      // Chunks are ESM; a bundled CommonJS package may still call require() for node built-ins.
      banner: { js: "import { createRequire as __afcRequire } from 'node:module'; const require = __afcRequire(import.meta.url);" },
      plugins: [sourceLocations(root, dist)],
    });
    // The client library: every package a user installs stays external (their copies are used).
    const lib = await build({
      absWorkingDir: root, entryPoints: { index: join(root, 'sockapi/index.ts'), node: join(root, 'sockapi/node.ts') },
      bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external',
      outdir: join(tmp, 'lib'), outExtension: { '.js': '.mjs' }, chunkNames: '[name]-[hash]',
      metafile: true, sourcemap: 'linked', logLevel: 'warning',
    });
    const inputs = [...new Set([...Object.keys(result.metafile.inputs), ...Object.keys(lib.metafile.inputs), 'tools/build.mjs', 'package.json'])]
      .map((f) => relative(root, resolve(root, f)).split(sep).join('/'));
    writeFileSync(join(tmp, MANIFEST), `${JSON.stringify({ started, inputs }, null, 1)}\n`);
    rmSync(dist, { recursive: true, force: true });
    renameSync(tmp, dist);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return join(dist, ENTRY);
}

/**
 * Type declarations of the client library into `out` (tsconfig.types.json: sockapi/index.ts and
 * node.ts and what they import), with `.ts` import paths made `.js` so they resolve to the .d.ts.
 */
export function buildTypes(root = ROOT, out = join(root, 'types')) {
  rmSync(out, { recursive: true, force: true });
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.types.json'), '--outDir', out], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tsc could not write the declarations:\n${r.stdout}${r.stderr}`);
  const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  for (const file of walk(out).filter((f) => f.endsWith('.d.ts'))) {
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace(/((?:from|import)\s*\(?\s*['"]\.{1,2}\/[^'"]*?)\.ts(['"])/g, '$1.js$2'));
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  if (process.argv.includes('--types')) {
    console.log(`afcluster: wrote type declarations to ${relative(process.cwd(), buildTypes()) || '.'}`);
  } else {
    const entry = await buildBundle();
    console.log(`afcluster: built ${relative(process.cwd(), entry) || entry} and the client library (the bin runs the bundle while no source is newer)`);
  }
}
