#!/usr/bin/env -S node --max-semi-space-size=2
// The `afcluster` command: runs the JavaScript bundle in dist/ (built by `npm install`/`npm ci`
// through tools/build.mjs) while no file it was built from has changed since; otherwise the
// TypeScript sources through tsx, so an edited tree never runs a stale bundle.
// AFCLUSTER_TSX=1 always runs the sources.
// --max-semi-space-size=2 (MiB, in the line above; it must be given at start-up): V8's young
// generation otherwise grows to 2 x 16 MiB of resident memory under load although a daemon's
// short-lived garbage is a few MB at a time; smaller semi-spaces mean more, cheaper scavenges,
// never an out-of-memory error (survivors just move to the old space, which is not capped).
// Processes that start this file as `node tools/afcluster.mjs` should pass the flag themselves.
import { bundleEntry } from './build.mjs';

const entry = bundleEntry();
if (entry) {
  await import(entry);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./main.ts');
}
