// FNV-1a, 32 bits: the one non-cryptographic hash of the project (config and node-list digests,
// key ids, the simulator's trace hashes and stream labels). Pure.

export const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** One more byte (or 32-bit value folded in as one step) into a running FNV-1a hash. */
export function fnvStep(h: number, v: number): number {
  return Math.imul(h ^ v, FNV_PRIME) >>> 0;
}

/** FNV-1a of bytes, or of a string's UTF-16 code units. */
export function fnv1a(input: Uint8Array | string, seed = FNV_OFFSET): number {
  let h = seed;
  if (typeof input === 'string') for (let i = 0; i < input.length; i++) h = fnvStep(h, input.charCodeAt(i));
  else for (let i = 0; i < input.length; i++) h = fnvStep(h, input[i]);
  return h;
}
