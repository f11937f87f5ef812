// Proves that the shapes keepShapes() keeps survive a full collection asked for from JavaScript
// (as the memory governor asks for one): code optimised for a Buffer received from a socket and
// for Node's Immediate stays optimised across gc() once keepShapes() ran, and (the Buffer's) is
// thrown away without it. V8's
// optimisation is awaited with natives syntax, in a process of its own, so no timing decides it.
// (esbuild, which tsx brings, bundles the modules for it.)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'afc-shapes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const src = (rel: string): string => JSON.stringify(fileURLToPath(new URL(rel, import.meta.url)));

// The modules under test, bundled (plain node runs the probe: a loader would hold Buffers of its own).
const bundle = join(dir, 'modules.mjs');
buildSync({
  stdin: { contents: `export { keepShapes } from ${src('./shapes.ts')};`, resolveDir: dir, loader: 'ts' },
  bundle: true, format: 'esm', platform: 'node', outfile: bundle, logLevel: 'silent',
});
const script = `
import { serialize } from 'node:v8';
import { keepShapes } from ${JSON.stringify(bundle)};
if (process.argv[2] === 'keep') keepShapes();
const probes = {
  received: (b) => b[0] + b.length,
  immediate: () => { const i = setImmediate(() => {}); clearImmediate(i); return i.hasRef(); },
};
const arg = { received: () => serialize(1), immediate: () => 0 };
const out = {};
// In a function of its own, so that no frame holds the last argument at the collection.
// (Never optimised itself, so the probe is optimised on its own, not inlined here.)
function exercise(f, make) { for (let i = 0; i < 20000; i++) f(make()); }
%NeverOptimizeFunction(exercise);
for (const [name, f] of Object.entries(probes)) {
  // Optimised as V8 would (TurboFan, concurrently): code forced with %OptimizeFunctionOnNextCall
  // after a few calls survived gc() here either way, so it would not show the difference.
  exercise(f, arg[name]);
  %FinalizeOptimization(); // waits for the compile
  const before = (%GetOptimizationStatus(f) & 16) !== 0;
  gc();
  out[name] = { before, after: (%GetOptimizationStatus(f) & 16) !== 0 };
}
console.log(JSON.stringify(out));
`;

function run(mode: 'keep' | 'none'): Record<string, { before: boolean; after: boolean }> {
  const file = join(dir, 'probe.mjs');
  writeFileSync(file, script);
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--expose-gc', file, mode], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`probe failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, { before: boolean; after: boolean }>;
}

describe('keepShapes', () => {
  it('keeps optimised code for received Buffers and Immediates across a full collection asked for', () => {
    expect(run('keep')).toEqual({ received: { before: true, after: true }, immediate: { before: true, after: true } });
    // Without it, the received Buffers' shape dies with the last such Buffer, and the code with
    // it. (So does the Immediate's, unless Node has one of its own pending at that moment, as it
    // sometimes has on a busy machine: not asserted.)
    expect(run('none').received).toEqual({ before: true, after: false });
  });
});
