#!/usr/bin/env node
// The `afcluster` command: runs the JavaScript bundle in dist/ (built by `npm install`/`npm ci`
// through tools/build.mjs) while no file it was built from has changed since; otherwise the
// TypeScript sources through tsx, so an edited tree never runs a stale bundle.
// AFCLUSTER_TSX=1 always runs the sources.
import { bundleEntry } from './build.mjs';

const entry = bundleEntry();
if (entry) {
  await import(entry);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./main.ts');
}
