// Sealing and opening datagrams: every datagram carries a small header naming the wire format
// version and a hash of the cluster name, so datagrams of another cluster, of another format
// version, or plain garbage are dropped and counted instead of reaching a driver. With a key,
// the body is XChaCha20-Poly1305-IETF (libsodium) under a random 24-byte nonce, and the header
// plus the full cluster name are the authenticated data: two clusters never mix, and a forged,
// truncated or tampered datagram never opens.
//
// Wire format, version 1 (all integers big-endian):
//   0  u8[2] magic 0xAF 0xC1
//   2  u8    format version (1)
//   3  u8    mode: 0 = plaintext, 1 = XChaCha20-Poly1305-IETF
//   4  u32   FNV-1a hash of the UTF-8 cluster name
//   8  plaintext: payload
//      sealed:    nonce[24] ciphertext[payload length] tag[16]
import { randomFillSync } from 'node:crypto';
import { assert, ClusterError } from '../api/errors.ts';
import { fnv1a } from '../wire/hash.ts';

export const WIRE_MAGIC_0 = 0xaf;
export const WIRE_MAGIC_1 = 0xc1;
export const WIRE_VERSION = 1;
export const MODE_PLAIN = 0;
export const MODE_SEALED = 1;
export const HEADER_BYTES = 8;
export const KEY_BYTES = 32;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;
/** Largest payload a sealer accepts: a UDP datagram's payload can never be larger. */
export const SEAL_PAYLOAD_MAX = 65_507;
/** Longest cluster name (UTF-8 bytes) that fits the authenticated data. */
export const CLUSTER_NAME_BYTES_MAX = 255;

export interface SealerStats {
  sealed: number;
  opened: number;
  /** Shorter than the header, or than header + nonce + tag. */
  droppedTruncated: number;
  /** Longer than any datagram a sealer produces. */
  droppedOversize: number;
  /** Wrong magic: not ours at all. */
  droppedGarbage: number;
  /** Another wire format version. */
  droppedVersion: number;
  /** Plaintext at an encrypting node, or sealed at a plaintext node. */
  droppedMode: number;
  /** Another cluster's name hash. */
  droppedOtherCluster: number;
  /** Authentication failed: forged, tampered, wrong key or another cluster with a colliding hash. */
  droppedAuth: number;
}

export interface Sealer {
  /** Bytes a sealed datagram adds to its payload. */
  readonly overheadBytes: number;
  /** True when datagrams are encrypted and authenticated. */
  readonly encrypted: boolean;
  /** Returns a fresh buffer holding header and (sealed) payload; `plain` is not kept. */
  seal(plain: Uint8Array): Uint8Array;
  /** The payload, or undefined (counted by reason) for anything that is not a valid datagram. */
  open(datagram: Uint8Array): Uint8Array | undefined;
  stats(): SealerStats;
}

/** The raw libsodium module under libsodium-wrappers (emscripten; 64-bit lengths as lo, hi). */
interface RawSodium {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _crypto_aead_xchacha20poly1305_ietf_encrypt(c: number, clenP: number, m: number, mlenLo: number, mlenHi: number,
    ad: number, adlenLo: number, adlenHi: number, nsec: number, npub: number, k: number): number;
  _crypto_aead_xchacha20poly1305_ietf_decrypt(m: number, mlenP: number, nsec: number, c: number, clenLo: number,
    clenHi: number, ad: number, adlenLo: number, adlenHi: number, npub: number, k: number): number;
}

/** Scratch space in the wasm heap, allocated once and shared by every sealer (single-threaded). */
interface Scratch {
  readonly lib: RawSodium;
  readonly key: number;
  readonly nonce: number;
  readonly ad: number;
  readonly buf: number;
}

let scratch: Scratch | undefined;

/** Random nonces drawn from the OS CSPRNG in batches: one syscall-sized fill per 256 datagrams. */
const noncePool = Buffer.alloc(NONCE_BYTES * 256);
let noncePoolNext = noncePool.length;

function nextNonce(into: Buffer, at: number): void {
  if (noncePoolNext === noncePool.length) {
    randomFillSync(noncePool);
    noncePoolNext = 0;
  }
  noncePool.copy(into, at, noncePoolNext, noncePoolNext + NONCE_BYTES);
  noncePool.fill(0, noncePoolNext, noncePoolNext + NONCE_BYTES); // a used nonce never lingers for reuse
  noncePoolNext += NONCE_BYTES;
}

/** Initialises libsodium; await it once before creating an encrypting sealer. */
export async function cryptoReady(): Promise<void> {
  if (scratch) return;
  // Loaded here, not at import: a node without a key never instantiates the wasm module.
  const sodium = (await import('libsodium-wrappers')).default;
  await sodium.ready;
  if (scratch) return;
  const lib = (sodium as unknown as { libsodium: RawSodium }).libsodium;
  assert(lib && typeof lib._malloc === 'function', 'libsodium-wrappers exposes its raw module');
  const adMax = HEADER_BYTES + CLUSTER_NAME_BYTES_MAX;
  const base = lib._malloc(KEY_BYTES + NONCE_BYTES + adMax + SEAL_PAYLOAD_MAX + TAG_BYTES);
  assert(base !== 0, 'libsodium scratch allocation');
  scratch = { lib, key: base, nonce: base + KEY_BYTES, ad: base + KEY_BYTES + NONCE_BYTES,
    buf: base + KEY_BYTES + NONCE_BYTES + adMax };
}

/** FNV-1a, 32-bit: cheap, stable, good enough to tell cluster names apart before any crypto. */
export function clusterNameHash(name: string): number {
  return fnv1a(Buffer.from(name, 'utf8'));
}

function makeHeader(clusterName: string, mode: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h[0] = WIRE_MAGIC_0;
  h[1] = WIRE_MAGIC_1;
  h[2] = WIRE_VERSION;
  h[3] = mode;
  h.writeUInt32BE(clusterNameHash(clusterName), 4);
  return h;
}

function emptyStats(): SealerStats {
  return { sealed: 0, opened: 0, droppedTruncated: 0, droppedOversize: 0, droppedGarbage: 0, droppedVersion: 0,
    droppedMode: 0, droppedOtherCluster: 0, droppedAuth: 0 };
}

/** Shared header checks; counts the reason and returns false when the datagram is not for us. */
function headerOk(d: Uint8Array, header: Uint8Array, minBytes: number, st: SealerStats): boolean {
  if (d.length < HEADER_BYTES) return count(st, 'droppedTruncated');
  if (d[0] !== header[0] || d[1] !== header[1]) return count(st, 'droppedGarbage');
  if (d[2] !== header[2]) return count(st, 'droppedVersion');
  if (d[3] !== header[3]) return count(st, 'droppedMode');
  if (d[4] !== header[4] || d[5] !== header[5] || d[6] !== header[6] || d[7] !== header[7]) {
    return count(st, 'droppedOtherCluster');
  }
  if (d.length < minBytes) return count(st, 'droppedTruncated');
  if (d.length > minBytes + SEAL_PAYLOAD_MAX) return count(st, 'droppedOversize');
  return true;
}

function count(st: SealerStats, reason: keyof SealerStats): false {
  st[reason]++;
  return false;
}

class PlainSealer implements Sealer {
  readonly overheadBytes = HEADER_BYTES;
  readonly encrypted = false;
  private readonly header: Buffer;
  private readonly st = emptyStats();

  constructor(clusterName: string) {
    this.header = makeHeader(clusterName, MODE_PLAIN);
  }

  seal(plain: Uint8Array): Uint8Array {
    assert(plain.length <= SEAL_PAYLOAD_MAX, `datagram payload ${plain.length} > ${SEAL_PAYLOAD_MAX}`);
    const out = Buffer.allocUnsafe(HEADER_BYTES + plain.length);
    out.set(this.header, 0);
    out.set(plain, HEADER_BYTES);
    this.st.sealed++;
    return out;
  }

  open(d: Uint8Array): Uint8Array | undefined {
    if (!headerOk(d, this.header, HEADER_BYTES, this.st)) return undefined;
    this.st.opened++;
    return d.subarray(HEADER_BYTES);
  }

  stats(): SealerStats {
    return { ...this.st };
  }
}

class AeadSealer implements Sealer {
  readonly overheadBytes = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;
  readonly encrypted = true;
  private readonly header: Buffer;
  /** Authenticated data: the header (version, mode, name hash) and the full cluster name. */
  private readonly ad: Buffer;
  private readonly key: Uint8Array;
  private readonly st = emptyStats();

  constructor(clusterName: string, key: Uint8Array, private readonly s: Scratch) {
    this.header = makeHeader(clusterName, MODE_SEALED);
    const name = Buffer.from(clusterName, 'utf8');
    this.ad = Buffer.concat([this.header, name]);
    this.key = Uint8Array.from(key);
  }

  seal(plain: Uint8Array): Uint8Array {
    const len = plain.length;
    assert(len <= SEAL_PAYLOAD_MAX, `datagram payload ${len} > ${SEAL_PAYLOAD_MAX}`);
    const s = this.s;
    const lib = s.lib;
    const out = Buffer.allocUnsafe(this.overheadBytes + len);
    out.set(this.header, 0);
    nextNonce(out, HEADER_BYTES);
    this.load(out.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES), plain);
    // In place: libsodium allows the ciphertext to overlap the message exactly.
    const rc = lib._crypto_aead_xchacha20poly1305_ietf_encrypt(s.buf, 0, s.buf, len, 0, s.ad, this.ad.length, 0, 0,
      s.nonce, s.key);
    assert(rc === 0, 'xchacha20poly1305 encrypt');
    out.set(lib.HEAPU8.subarray(s.buf, s.buf + len + TAG_BYTES), HEADER_BYTES + NONCE_BYTES);
    this.st.sealed++;
    return out;
  }

  open(d: Uint8Array): Uint8Array | undefined {
    if (!headerOk(d, this.header, this.overheadBytes, this.st)) return undefined;
    const s = this.s;
    const lib = s.lib;
    const clen = d.length - HEADER_BYTES - NONCE_BYTES;
    this.load(d.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES), d.subarray(HEADER_BYTES + NONCE_BYTES));
    const rc = lib._crypto_aead_xchacha20poly1305_ietf_decrypt(s.buf, 0, 0, s.buf, clen, 0, s.ad, this.ad.length, 0,
      s.nonce, s.key);
    if (rc !== 0) {
      this.st.droppedAuth++;
      return undefined;
    }
    this.st.opened++;
    // The one copy out of the wasm heap: the caller may keep the payload.
    return Buffer.from(lib.HEAPU8.subarray(s.buf, s.buf + clen - TAG_BYTES));
  }

  stats(): SealerStats {
    return { ...this.st };
  }

  /** Key, nonce, authenticated data and body into the wasm scratch (re-read HEAPU8: memory may grow). */
  private load(nonce: Uint8Array, body: Uint8Array): void {
    const heap = this.s.lib.HEAPU8;
    heap.set(this.key, this.s.key);
    heap.set(nonce, this.s.nonce);
    heap.set(this.ad, this.s.ad);
    heap.set(body, this.s.buf);
  }
}

export interface SealerOptions {
  readonly clusterName: string;
  /** 32-byte key: encrypt and authenticate. Absent: plaintext with the header only. */
  readonly key?: Uint8Array;
}

/** Builds the sealer for a cluster. With a key, `await cryptoReady()` must have run. */
export function createSealer(opts: SealerOptions): Sealer {
  const nameBytes = Buffer.byteLength(opts.clusterName, 'utf8');
  if (nameBytes === 0 || nameBytes > CLUSTER_NAME_BYTES_MAX) {
    throw new ClusterError('EINVAL', `cluster name must be 1 to ${CLUSTER_NAME_BYTES_MAX} bytes, got ${nameBytes}`);
  }
  if (opts.key === undefined) return new PlainSealer(opts.clusterName);
  if (opts.key.length !== KEY_BYTES) {
    throw new ClusterError('EINVAL', `a cluster key is ${KEY_BYTES} bytes, got ${opts.key.length}`);
  }
  assert(scratch !== undefined, 'await cryptoReady() before creating an encrypting sealer');
  return new AeadSealer(opts.clusterName, opts.key, scratch);
}
