#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=2 --initial-old-space-size=64 --retain-maps-for-n-gc=16
// The `afcluster` command: runs the JavaScript bundle in dist/ (built by `npm install`/`npm ci`
// through tools/build.mjs) while no file it was built from has changed since; otherwise the
// TypeScript sources through tsx, so an edited tree never runs a stale bundle.
// AFCLUSTER_TSX=1 always runs the sources.
// --max-semi-space-size=2 (MiB, in the line above; it must be given at start-up): V8's young
// generation otherwise grows to 2 x 16 MiB of resident memory under load although a daemon's
// short-lived garbage is a few MB at a time; smaller semi-spaces mean more, cheaper scavenges,
// never an out-of-memory error (survivors just move to the old space, which is not capped).
// The price: a busy daemon scavenges every 8 to 15 ms, so buffers the ring holds for some
// milliseconds (frames until the token has gone round twice, queued messages) can meet two
// scavenges and go to the old generation; with every node sending 1300-byte messages that was a
// full collection about twice a second per daemon in some runs. 8 MiB removed those, but cost
// 15-20% at 100 B and gained nothing at 1300 B here (docs/BENCH.md, "Full collections under
// every node's load").
// --initial-old-space-size=64 (MiB): a daemon's live heap is 10 to 15 MB, and V8 set the old
// generation's limit a megabyte or two above it, so under a stream of large messages it ran a
// full collection every 30 to 70 ms (141 in 8 s on the sender, pauses of up to 7 ms) that freed
// nothing; from 64 MiB they are a sixth as many, and 1 MiB messages move at twice the rate for
// about 40 MB more peak RSS (docs/BENCH.md, "Frames of the link's MTU").
// --retain-maps-for-n-gc=16: V8 drops an object shape no live object has after 2 of its full
// collections (the default), and with it the optimised code that met the shape. Under 64 KiB and
// 1 MiB messages it collects every 150 ms or so, and the token path's shapes, unused while the
// frames are large, went within a second: the idle round trips after such a load ran on
// unoptimised code until V8 compiled it again. Kept for 16 collections, they stay (docs/BENCH.md,
// "Idle round trips in steady state").
// MALLOC_ARENA_MAX=2 (glibc reads it when the process starts; a later mallopt does not undo the
// arenas threads already have): the main thread's malloc arena and one more, which node's helper
// threads (V8's compilers and collector, libuv's pool) share. By default each of them gets an
// arena of its own, and what a compile's zones freed stayed there, about 2 MB an arena, four or
// five of them: 6 to 8 MB of a daemon's peak under load went to memory no thread used. With one
// arena for them all, the next compile reuses it; the main thread keeps its arena to itself, so
// it never waits for their lock. In turns the daemons moved as many messages (docs/BENCH.md,
// "One malloc arena for node's helper threads"). C libraries other than glibc ignore the variable.
// Processes that start this file as `node tools/afcluster.mjs` should pass the flags and the
// variable themselves (DAEMON_V8_FLAGS and DAEMON_ENV in tools/local-cluster.ts).
import { bundleEntry } from './build.mjs';

const entry = bundleEntry();
if (entry) {
  await import(entry);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./main.ts');
}
