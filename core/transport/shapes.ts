// Object shapes the message path needs to outlive a full collection. V8 keeps an object's shape
// (its hidden class) only while some object has it or a few of its own collections after; a full
// collection that is asked for (the memory governor's, core/af/memory.ts) or that reduces memory
// (V8's own, once a load stops) drops the shapes no live object has at that moment (those reached
// only through another shape's transitions, as a Buffer made in C++ is; a shape a live function
// or object still holds survives, as UDP's rinfo did), and throws away the optimised code of every
// function that met one: under load, most of the message path, which then runs unoptimised until
// it is compiled again (the idle round trip's tail after a load, docs/BENCH.md). Shapes made per
// message in the project's own code are kept where they are made (Reader, Writer); these are Node's.
import { serialize } from 'node:v8';

let kept: readonly object[] | undefined;

/** Keeps one object of each shape alive, for the process's life (idempotent). Called by the
 *  sockets that receive (UDP, unix), before their first datagram. */
export function keepShapes(): void {
  if (kept) return;
  // A Buffer made by Node's C++ side, as every datagram a socket receives is (UDP, unix, the
  // native helper's): a Uint8Array given Buffer's prototype, a shape apart from the Buffers made
  // in JavaScript. v8.serialize returns one.
  const received = serialize(0);
  // An Immediate (setImmediate): the bridge defers each burst's work with one.
  const immediate = setImmediate(() => undefined);
  clearImmediate(immediate);
  kept = [received, immediate];
}
