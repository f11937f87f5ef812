// Sealing and opening datagrams. Every datagram opens with a header naming the wire format
// version, the mode and a hash of the cluster name, so datagrams of another cluster, of another
// format version, or plain garbage are dropped and counted instead of reaching a driver. The
// header also carries a stamp: the sender's node id, the destination (one node, or every node),
// the sender's incarnation (grows across its restarts: incarnation.ts) and a sequence number
// (grows with every datagram of the incarnation). A receiver keeps, per configured sender, the
// newest incarnation seen and a window of the sequence numbers accepted (replay.ts), and drops a
// datagram that names another sender than its source address, another destination, an older
// incarnation, or a sequence number already accepted or behind the window: before any driver sees
// it. With a key the body is XChaCha20-Poly1305-IETF (libsodium) under a random 24-byte nonce, and
// the whole header plus the full cluster name are the authenticated data: the stamp cannot be
// forged, two clusters never mix, and a forged, truncated or tampered datagram never opens.
// Without a key the stamp is plain text: it stops duplicated and stale datagrams, not an attacker
// (docs/SECURITY.md).
//
// Wire format, version 2 (all integers big-endian):
//   0  u8[2] magic 0xAF 0xC1
//   2  u8    format version (2)            \ the same 8 bytes in every version, so a node can
//   3  u8    mode: 0 = plaintext, 1 = XChaCha20-Poly1305-IETF       tell a version it does not
//   4  u32   FNV-1a hash of the UTF-8 cluster name                   speak from garbage
//   8  u32   sender node id
//  12  u32   destination node id, 0 = every node
//  16  u48   sender's incarnation
//  22  u48   sequence number (from 1, per incarnation)
//  28  plaintext: payload
//      sealed:    nonce[24] ciphertext[payload length] tag[16]; authenticated data: bytes 0-27
//                 and the cluster name
// Version 1 (before the stamp) had only bytes 0-7 before the payload or nonce.
import { randomFillSync } from 'node:crypto';
import { assert, ClusterError } from '../api/errors.ts';
import { fnv1a } from '../wire/hash.ts';
import { U48_MAX } from './incarnation.ts';
import { ReplayWindow } from './replay.ts';
import { xchachaOpen, xchachaSeal, xchachaSealInto } from './xchacha.ts';
import { allocApartToFill, readU32, writeU32, type ByteParts as DatagramBytes } from '../wire/bytes.ts';

export const WIRE_MAGIC_0 = 0xaf;
export const WIRE_MAGIC_1 = 0xc1;
export const WIRE_VERSION = 2;
export const MODE_PLAIN = 0;
export const MODE_SEALED = 1;
/** Magic, version, mode and cluster name hash: the part every format version shares. */
export const PREFIX_BYTES = 8;
/** The whole header: prefix and stamp. A plaintext datagram's overhead. */
export const HEADER_BYTES = 28;
/** The destination of a datagram for every node. */
export const TO_ALL = 0;
export const KEY_BYTES = 32;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;
/** Largest payload a sealer accepts: a UDP datagram's payload can never be larger. */
export const SEAL_PAYLOAD_MAX = 65_507;
/** Payloads from this size are sealed and opened by OpenSSL (xchacha.ts), smaller ones by
 *  libsodium: the same bytes either way; OpenSSL costs ~10 us more a call, libsodium's wasm ~3x
 *  as much a byte (at 64 KiB: 64 against 200 us a seal on this project's machine). */
export const NATIVE_AEAD_MIN_BYTES = 8192;
/** Longest cluster name (UTF-8 bytes) that fits the authenticated data. */
export const CLUSTER_NAME_BYTES_MAX = 255;

export interface SealerStats {
  sealed: number;
  opened: number;
  /** Incarnations of peers seen for the first time: first contact, and every restart of a peer. */
  incarnationsSeen: number;
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
  /** The stamp names another sender than the node the source address belongs to. */
  droppedWrongSender: number;
  /** Addressed to another node (a unicast replayed elsewhere). */
  droppedWrongDestination: number;
  /** From an incarnation of the sender older than the newest seen (a replay across its restart). */
  droppedStaleIncarnation: number;
  /** A sequence number already accepted: a replay, or a duplicate made by the network. */
  droppedReplay: number;
  /** A sequence number too far behind the newest to tell (more than the window, 1024): dropped. */
  droppedBehindWindow: number;
  /** Authentication failed: forged, tampered, wrong key or another cluster with a colliding hash. */
  droppedAuth: number;
}

/** Why open() dropped a datagram: the name of the counter it went to. */
export type DropReason = Exclude<keyof SealerStats, 'sealed' | 'opened' | 'incarnationsSeen'>;

export interface Sealer {
  /** Bytes a sealed datagram adds to its payload. */
  readonly overheadBytes: number;
  /** True when datagrams are encrypted and authenticated. */
  readonly encrypted: boolean;
  readonly nodeId: number;
  /** This node's incarnation, stamped on every datagram. */
  readonly incarnation: number;
  /** Why the last open() that returned undefined dropped its datagram. */
  readonly lastDrop: DropReason | undefined;
  /**
   * Bytes of room in front of a payload that seal() with `reserved` writes its header into, so
   * that sealing copies nothing: HEADER_BYTES without a key; 0 with one (the encryption writes a
   * new datagram, and the payload must stay as it is: a driver keeps its frames to resend them).
   */
  readonly headroom: number;
  /**
   * The datagram of `plain` for node `to` (or TO_ALL). Without `reserved`, a fresh buffer
   * holding header and (sealed) payload, and `plain` is not kept. With it, the `headroom` bytes
   * before `plain` in `plain.buffer` are room the caller left for the header: it is written
   * there and the datagram is a view from it through `plain`, whose bytes are not touched.
   */
  seal(plain: Uint8Array, to: number, reserved?: boolean): Uint8Array;
  /**
   * seal(), for a transport that sends a list of parts as one datagram: with a key and a payload
   * of NATIVE_AEAD_MIN_BYTES or more, [header and nonce, ciphertext, tag] as the encryption wrote
   * them, with no copy to join them; otherwise seal()'s one array.
   */
  sealParts(plain: Uint8Array, to: number, reserved?: boolean): DatagramBytes;
  /**
   * The payload of a datagram whose source address is node `from`'s, or undefined (counted by
   * reason, see lastDrop) for anything that is not a valid, new datagram from `from` to this node.
   */
  open(datagram: Uint8Array, from: number): Uint8Array | undefined;
  /** The newest incarnation accepted from node `id`, if any datagram of it was. */
  peerIncarnation(id: number): number | undefined;
  /** The newest incarnation and sequence number accepted from each peer: save them at a stop. */
  marks(): Uint8Array;
  /** Starts from the marks of an earlier run of this node (before any datagram is opened);
   *  anything malformed or about nodes not configured now is ignored. */
  restoreMarks(bytes: Uint8Array): void;
  /** The configured node list changed (a reload): replay windows for exactly these peers. */
  setNodes(nodes: readonly number[]): void;
  stats(): SealerStats;
}

export interface SealerOptions {
  readonly clusterName: string;
  /** 32-byte key: encrypt and authenticate. Absent: plaintext with the header only. */
  readonly key?: Uint8Array;
  /** This node, the sender of what it seals and the destination of what it opens. */
  readonly nodeId: number;
  /** Every configured node id (this one included): a replay window for each of the others. */
  readonly nodes: readonly number[];
  /** This run's incarnation (nextIncarnation()), below 2^48. */
  readonly incarnation: number;
  /** The sequence number to continue after (default 0: the first datagram is 1); for tests. */
  readonly lastSeq?: number;
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
  /** The sealer whose key is in the scratch now: the others load theirs first. */
  keyOf: object | undefined;
}

let scratch: Scratch | undefined;

/** Random nonces drawn from the OS CSPRNG in batches: one syscall-sized fill per 256 datagrams. */
const noncePool = Buffer.alloc(NONCE_BYTES * 256);
let noncePoolNext = noncePool.length;

function nextNonce(into: Uint8Array, at: number): void {
  if (noncePoolNext === noncePool.length) {
    randomFillSync(noncePool);
    noncePoolNext = 0;
  }
  for (let i = 0; i < NONCE_BYTES; i++) {
    into[at + i] = noncePool[noncePoolNext + i];
    noncePool[noncePoolNext + i] = 0; // a used nonce never lingers for reuse
  }
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
    buf: base + KEY_BYTES + NONCE_BYTES + adMax, keyOf: undefined };
}

/** FNV-1a, 32-bit: cheap, stable, good enough to tell cluster names apart before any crypto. */
export function clusterNameHash(name: string): number {
  return fnv1a(Buffer.from(name, 'utf8'));
}

/** A datagram's header fields, for logs, tools and tests; the stamp only in the current version. */
export interface DatagramHeader {
  readonly version: number;
  readonly mode: number;
  readonly clusterHash: number;
  readonly stamp?: { readonly sender: number; readonly destination: number; readonly incarnation: number; readonly seq: number };
}

/** Reads the header of anything with our magic (never throws); undefined for anything else. */
export function readHeader(d: Uint8Array): DatagramHeader | undefined {
  if (d.length < PREFIX_BYTES || d[0] !== WIRE_MAGIC_0 || d[1] !== WIRE_MAGIC_1) return undefined;
  const h = { version: d[2], mode: d[3], clusterHash: readU32(d, 4) };
  if (d[2] !== WIRE_VERSION || d.length < HEADER_BYTES) return h;
  return { ...h, stamp: { sender: readU32(d, 8), destination: readU32(d, 12), incarnation: readU48(d, 16), seq: readU48(d, 22) } };
}

function readU48(b: Uint8Array, at: number): number {
  return ((b[at] << 8) | b[at + 1]) * 0x1_0000_0000 + readU32(b, at + 2);
}

function writeU48(b: Uint8Array, at: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  b[at] = hi >>> 8;
  b[at + 1] = hi;
  writeU32(b, at + 2, v >>> 0);
}

/** Saved marks: u8 version, then per peer u32 node id, u48 incarnation, u48 newest seq. */
const MARKS_VERSION = 1;
const MARKS_HEADER_BYTES = 1;
const MARK_BYTES = 16;

function emptyStats(): SealerStats {
  return { sealed: 0, opened: 0, incarnationsSeen: 0, droppedTruncated: 0, droppedOversize: 0, droppedGarbage: 0,
    droppedVersion: 0, droppedMode: 0, droppedOtherCluster: 0, droppedWrongSender: 0, droppedWrongDestination: 0,
    droppedStaleIncarnation: 0, droppedReplay: 0, droppedBehindWindow: 0, droppedAuth: 0 };
}

/** The header, the stamp and the replay windows; the subclasses add what the mode does to the body. */
abstract class StampingSealer implements Sealer {
  abstract readonly overheadBytes: number;
  abstract readonly encrypted: boolean;
  readonly nodeId: number;
  lastDrop: DropReason | undefined;
  protected readonly st = emptyStats();
  private inc: number;
  /** The last sequence number, as two halves: the high one (and the incarnation) rarely changes,
   *  so a seal writes 8 bytes of stamp, not 20. */
  private seqLo = 0;
  private seqHi = 0;
  private readonly windows = new Map<number, ReplayWindow>();

  /** `head`: HEADER_BYTES, rewritten by every seal(); the subclass decides where it lives. */
  constructor(opts: SealerOptions, mode: number, protected readonly head: Uint8Array) {
    this.nodeId = opts.nodeId;
    this.inc = opts.incarnation;
    this.seqHi = Math.floor((opts.lastSeq ?? 0) / 0x1_0000_0000);
    this.seqLo = (opts.lastSeq ?? 0) >>> 0;
    for (const id of opts.nodes) if (id !== opts.nodeId) this.windows.set(id, new ReplayWindow());
    head[0] = WIRE_MAGIC_0;
    head[1] = WIRE_MAGIC_1;
    head[2] = WIRE_VERSION;
    head[3] = mode;
    writeU32(head, 4, clusterNameHash(opts.clusterName));
    writeU32(head, 8, opts.nodeId);
    writeU48(head, 16, this.inc);
    writeU48(head, 22, opts.lastSeq ?? 0);
  }

  get incarnation(): number {
    return this.inc;
  }

  /** The configured node list changed (a reload): a window for each new peer, none for a removed one. */
  setNodes(nodes: readonly number[]): void {
    for (const id of [...this.windows.keys()]) if (!nodes.includes(id)) this.windows.delete(id);
    for (const id of nodes) if (id !== this.nodeId && !this.windows.has(id)) this.windows.set(id, new ReplayWindow());
  }

  abstract readonly headroom: number;
  abstract seal(plain: Uint8Array, to: number, reserved?: boolean): Uint8Array;

  sealParts(plain: Uint8Array, to: number, reserved?: boolean): DatagramBytes {
    return this.seal(plain, to, reserved);
  }

  /** Stamps the header for the next datagram. */
  protected stamp(to: number): void {
    const h = this.head;
    writeU32(h, 12, to);
    if (this.seqLo === 0xffff_ffff) {
      this.seqLo = 0;
      if (++this.seqHi > 0xffff) {
        // 2^48 datagrams: a new incarnation, as after a restart (peers accept it at once).
        this.seqHi = 0;
        writeU48(h, 16, ++this.inc);
      }
      h[22] = this.seqHi >>> 8;
      h[23] = this.seqHi;
    }
    writeU32(h, 24, ++this.seqLo);
    this.st.sealed++;
  }

  open(d: Uint8Array, from: number): Uint8Array | undefined {
    this.lastDrop = undefined;
    const h = this.head;
    if (d.length < PREFIX_BYTES) return this.drop('droppedTruncated');
    if (d[0] !== WIRE_MAGIC_0 || d[1] !== WIRE_MAGIC_1) return this.drop('droppedGarbage');
    if (d[2] !== WIRE_VERSION) return this.drop('droppedVersion');
    if (d[3] !== h[3]) return this.drop('droppedMode');
    if (d[4] !== h[4] || d[5] !== h[5] || d[6] !== h[6] || d[7] !== h[7]) return this.drop('droppedOtherCluster');
    if (d.length < this.overheadBytes) return this.drop('droppedTruncated');
    if (d.length > this.overheadBytes + SEAL_PAYLOAD_MAX) return this.drop('droppedOversize');
    // The stamp: checked before the (costly) authentication, recorded only after it.
    if (readU32(d, 8) !== from) return this.drop('droppedWrongSender');
    const to = readU32(d, 12);
    if (to !== TO_ALL && to !== this.nodeId) return this.drop('droppedWrongDestination');
    const w = this.windows.get(from);
    if (w === undefined) return this.drop('droppedWrongSender'); // not a configured peer
    const inc = readU48(d, 16);
    const seq = readU48(d, 22);
    const verdict = w.check(inc, seq);
    if (verdict !== 'new') return this.drop(verdict);
    const plain = this.body(d);
    if (plain === undefined) return this.drop('droppedAuth');
    if (inc > w.incarnation) this.st.incarnationsSeen++;
    w.accept(inc, seq);
    this.st.opened++;
    return plain;
  }

  peerIncarnation(id: number): number | undefined {
    const inc = this.windows.get(id)?.incarnation;
    return inc === undefined || inc < 0 ? undefined : inc;
  }

  marks(): Uint8Array {
    const known = [...this.windows].filter(([, w]) => w.incarnation >= 0);
    const out = new Uint8Array(MARKS_HEADER_BYTES + known.length * MARK_BYTES);
    out[0] = MARKS_VERSION;
    let at = MARKS_HEADER_BYTES;
    for (const [id, w] of known) {
      writeU32(out, at, id);
      writeU48(out, at + 4, w.incarnation);
      writeU48(out, at + 10, w.top);
      at += MARK_BYTES;
    }
    return out;
  }

  restoreMarks(bytes: Uint8Array): void {
    if (bytes.length < MARKS_HEADER_BYTES || bytes[0] !== MARKS_VERSION || (bytes.length - MARKS_HEADER_BYTES) % MARK_BYTES !== 0) return;
    for (let at = MARKS_HEADER_BYTES; at < bytes.length; at += MARK_BYTES) {
      this.windows.get(readU32(bytes, at))?.restore(readU48(bytes, at + 4), readU48(bytes, at + 10));
    }
  }

  stats(): SealerStats {
    return { ...this.st };
  }

  /** The payload of a datagram whose header checked out, or undefined if it does not authenticate. */
  protected abstract body(d: Uint8Array): Uint8Array | undefined;

  private drop(reason: DropReason): undefined {
    this.st[reason]++;
    this.lastDrop = reason;
    return undefined;
  }
}

class PlainSealer extends StampingSealer {
  readonly overheadBytes = HEADER_BYTES;
  readonly encrypted = false;
  readonly headroom = HEADER_BYTES;

  constructor(opts: SealerOptions) {
    super(opts, MODE_PLAIN, new Uint8Array(HEADER_BYTES));
  }

  seal(plain: Uint8Array, to: number, reserved = false): Uint8Array {
    assert(plain.length <= SEAL_PAYLOAD_MAX, `datagram payload ${plain.length} > ${SEAL_PAYLOAD_MAX}`);
    this.stamp(to);
    if (reserved) {
      assert(plain.byteOffset >= HEADER_BYTES, 'room for the header in front of the payload');
      const datagram = new Uint8Array(plain.buffer, plain.byteOffset - HEADER_BYTES, HEADER_BYTES + plain.length);
      datagram.set(this.head, 0);
      return datagram;
    }
    const out = Buffer.allocUnsafe(HEADER_BYTES + plain.length);
    out.set(this.head, 0);
    out.set(plain, HEADER_BYTES);
    return out;
  }

  protected body(d: Uint8Array): Uint8Array {
    return d.subarray(HEADER_BYTES);
  }
}

class AeadSealer extends StampingSealer {
  readonly overheadBytes = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;
  readonly encrypted = true;
  readonly headroom = 0;
  /** Authenticated data of what this node seals: its header (this.head is a view of it) and the cluster name. */
  private readonly sealAd: Buffer;
  /** Authenticated data of what it opens: the datagram's header is copied in front of the name. */
  private readonly openAd: Buffer;
  private readonly key: Uint8Array;

  constructor(opts: SealerOptions, key: Uint8Array, private readonly s: Scratch) {
    const name = Buffer.from(opts.clusterName, 'utf8');
    const sealAd = Buffer.alloc(HEADER_BYTES + name.length);
    super(opts, MODE_SEALED, sealAd.subarray(0, HEADER_BYTES));
    name.copy(sealAd, HEADER_BYTES);
    this.sealAd = sealAd;
    this.openAd = Buffer.from(sealAd);
    this.key = Uint8Array.from(key);
  }

  /** Room in front of `plain` (`reserved`) is of no use here: the ciphertext is written apart
   *  from the payload (OpenSSL's into a buffer of its own, libsodium's in the wasm heap, where
   *  the payload is copied first) and copied into the new datagram.
   *  What a sealer makes (this datagram, sealParts' front, an opened plaintext) has memory of its
   *  own at any size, never a slice of Node's pool (allocUnsafe and Buffer.from below 4 KiB): the
   *  runtime owns it, and it goes back the moment its last holder lets go (core/wire/lease.ts),
   *  where a slice waited for V8's collector. Under back-to-back round trips with a key, such
   *  slices (with the send queue's lone frames) piled up between collections and raised a
   *  daemon's peak by 10 to 16 MB (docs/BENCH.md). */
  seal(plain: Uint8Array, to: number): Uint8Array {
    const len = plain.length;
    assert(len <= SEAL_PAYLOAD_MAX, `datagram payload ${len} > ${SEAL_PAYLOAD_MAX}`);
    this.stamp(to);
    const s = this.s;
    const lib = s.lib;
    const out = allocApartToFill(this.overheadBytes + len);
    out.set(this.head, 0);
    nextNonce(out, HEADER_BYTES);
    if (len >= NATIVE_AEAD_MIN_BYTES) {
      xchachaSealInto(this.key, this.sealAd, plain, out, HEADER_BYTES);
      return out;
    }
    this.load(out, this.sealAd, plain);
    // In place: libsodium allows the ciphertext to overlap the message exactly.
    const rc = lib._crypto_aead_xchacha20poly1305_ietf_encrypt(s.buf, 0, s.buf, len, 0, s.ad, this.sealAd.length, 0, 0,
      s.nonce, s.key);
    assert(rc === 0, 'xchacha20poly1305 encrypt');
    out.set(lib.HEAPU8.subarray(s.buf, s.buf + len + TAG_BYTES), HEADER_BYTES + NONCE_BYTES);
    return out;
  }

  /** A large payload's datagram as header and nonce, then OpenSSL's ciphertext and tag as they are. */
  override sealParts(plain: Uint8Array, to: number): DatagramBytes {
    if (plain.length < NATIVE_AEAD_MIN_BYTES) return this.seal(plain, to);
    assert(plain.length <= SEAL_PAYLOAD_MAX, `datagram payload ${plain.length} > ${SEAL_PAYLOAD_MAX}`);
    this.stamp(to);
    const front = allocApartToFill(HEADER_BYTES + NONCE_BYTES);
    front.set(this.head, 0);
    nextNonce(front, HEADER_BYTES);
    const [body, tag] = xchachaSeal(this.key, this.sealAd, plain, front, HEADER_BYTES);
    return [front, body, tag];
  }

  protected body(d: Uint8Array): Uint8Array | undefined {
    const s = this.s;
    const lib = s.lib;
    const ad = this.openAd;
    for (let i = PREFIX_BYTES; i < HEADER_BYTES; i++) ad[i] = d[i]; // the prefix is ours: checked
    const clen = d.length - HEADER_BYTES - NONCE_BYTES;
    if (clen - TAG_BYTES >= NATIVE_AEAD_MIN_BYTES) return xchachaOpen(this.key, ad, d, HEADER_BYTES, d.subarray(HEADER_BYTES + NONCE_BYTES));
    this.load(d, ad, d.subarray(HEADER_BYTES + NONCE_BYTES));
    const rc = lib._crypto_aead_xchacha20poly1305_ietf_decrypt(s.buf, 0, 0, s.buf, clen, 0, s.ad, ad.length, 0,
      s.nonce, s.key);
    if (rc !== 0) return undefined;
    // The one copy out of the wasm heap: the caller may keep the payload.
    const plain = allocApartToFill(clen - TAG_BYTES);
    plain.set(lib.HEAPU8.subarray(s.buf, s.buf + clen - TAG_BYTES));
    return plain;
  }

  /** Key (unless it is there), the nonce of `d`, authenticated data and body into the wasm scratch
   *  (HEAPU8 re-read: memory may grow). */
  private load(d: Uint8Array, ad: Uint8Array, body: Uint8Array): void {
    const s = this.s;
    const heap = s.lib.HEAPU8;
    if (s.keyOf !== this) {
      heap.set(this.key, s.key);
      s.keyOf = this;
    }
    for (let i = 0; i < NONCE_BYTES; i++) heap[s.nonce + i] = d[HEADER_BYTES + i];
    heap.set(ad, s.ad);
    heap.set(body, s.buf);
  }
}

/** Builds the sealer for a cluster. With a key, `await cryptoReady()` must have run. */
export function createSealer(opts: SealerOptions): Sealer {
  const nameBytes = Buffer.byteLength(opts.clusterName, 'utf8');
  if (nameBytes === 0 || nameBytes > CLUSTER_NAME_BYTES_MAX) {
    throw new ClusterError('EINVAL', `cluster name must be 1 to ${CLUSTER_NAME_BYTES_MAX} bytes, got ${nameBytes}`);
  }
  const isId = (n: number) => Number.isInteger(n) && n >= 1 && n <= 0xffff_ffff;
  assert(isId(opts.nodeId) && opts.nodes.every(isId) && opts.nodes.includes(opts.nodeId), 'the node id is one of the configured node ids');
  assert(Number.isInteger(opts.incarnation) && opts.incarnation >= 0 && opts.incarnation < U48_MAX, 'an incarnation is a u48');
  assert(opts.lastSeq === undefined || (Number.isInteger(opts.lastSeq) && opts.lastSeq >= 0 && opts.lastSeq <= U48_MAX), 'a sequence number is a u48');
  if (opts.key === undefined) return new PlainSealer(opts);
  if (opts.key.length !== KEY_BYTES) {
    throw new ClusterError('EINVAL', `a cluster key is ${KEY_BYTES} bytes, got ${opts.key.length}`);
  }
  assert(scratch !== undefined, 'await cryptoReady() before creating an encrypting sealer');
  return new AeadSealer(opts, opts.key, scratch);
}
