// Proves sealed datagrams round-trip, interoperate with libsodium's own AEAD, carry an authenticated stamp, and that forged, truncated, tampered, wrong-version, wrong-mode, other-cluster, misaddressed, replayed and stale-incarnation datagrams are dropped and counted by reason.
import { beforeAll, describe, expect, it } from 'vitest';
import sodium from 'libsodium-wrappers';
import { randomBytes } from 'node:crypto';
import {
  createSealer, cryptoReady, clusterNameHash, readHeader, HEADER_BYTES, NATIVE_AEAD_MIN_BYTES, NONCE_BYTES, PREFIX_BYTES, TAG_BYTES, TO_ALL,
  type Sealer, type SealerOptions, type SealerStats,
} from './sealer.ts';

beforeAll(async () => {
  await cryptoReady();
});

const key = randomBytes(32);
const payload = Buffer.from('the quick brown fox jumps over the lazy dog');
const nodes = [1, 2, 3];

function drops(s: Sealer): Partial<SealerStats> {
  const st = s.stats();
  return Object.fromEntries(Object.entries(st).filter(([k, v]) => k.startsWith('dropped') && v > 0));
}

/** Node `nodeId` of cluster "alpha" (or as overridden). */
type Make = (nodeId: number, extra?: Partial<SealerOptions>) => Sealer;
const encrypted: Make = (nodeId, extra = {}) => createSealer({ clusterName: 'alpha', key, nodeId, nodes, incarnation: 1000, ...extra });
const plaintext: Make = (nodeId, extra = {}) => createSealer({ clusterName: 'alpha', nodeId, nodes, incarnation: 1000, ...extra });

describe.each([['encrypted', encrypted], ['plaintext', plaintext]] as const)('%s sealer', (name, make) => {
  it('round-trips payloads of every size, empty to the UDP maximum', () => {
    const a = make(1);
    const b = make(2);
    for (const n of [0, 1, 100, 1400, 65_507 - a.overheadBytes, 65_507]) {
      const p = randomBytes(n);
      const d = a.seal(p, n % 2 ? 2 : TO_ALL);
      expect(d.length).toBe(n + a.overheadBytes);
      expect(Buffer.from(b.open(d, 1)!)).toEqual(p);
    }
    expect(b.stats()).toMatchObject({ opened: 6, incarnationsSeen: 1 });
    expect(drops(b)).toEqual({});
    expect(a.stats().sealed).toBe(6);
  });

  it('stamps sender, destination, incarnation and a growing sequence number', () => {
    const a = make(1, { incarnation: 2 ** 48 - 3 });
    expect(readHeader(a.seal(payload, 3))).toEqual({ version: 2, mode: name === 'encrypted' ? 1 : 0,
      clusterHash: clusterNameHash('alpha'), stamp: { sender: 1, destination: 3, incarnation: 2 ** 48 - 3, seq: 1 } });
    expect(readHeader(a.seal(payload, TO_ALL))?.stamp).toEqual({ sender: 1, destination: 0, incarnation: 2 ** 48 - 3, seq: 2 });
    expect(a.incarnation).toBe(2 ** 48 - 3);
    expect(readHeader(Buffer.from('hello, world'))).toBeUndefined();
  });

  it('carries the sequence number across 2^32, and starts a new incarnation after 2^48', () => {
    const b = make(2);
    const a = make(1, { lastSeq: 2 ** 32 - 2 });
    const seqs = [0, 1, 2].map(() => readHeader(a.seal(payload, 2))!.stamp!);
    expect(seqs.map((x) => [x.incarnation, x.seq])).toEqual([[1000, 2 ** 32 - 1], [1000, 2 ** 32 + 1], [1000, 2 ** 32 + 2]]);
    const z = make(1, { lastSeq: 2 ** 48 - 2 });
    const last = z.seal(payload, 2);
    const next = z.seal(payload, 2);
    expect([readHeader(last)!.stamp, readHeader(next)!.stamp]).toMatchObject([{ incarnation: 1000, seq: 2 ** 48 - 1 }, { incarnation: 1001, seq: 1 }]);
    expect(z.incarnation).toBe(1001);
    expect(b.open(last, 1)).toBeDefined();
    expect(b.open(next, 1)).toBeDefined(); // the new incarnation is accepted at once
  });

  it('drops another cluster\'s datagrams as otherCluster', () => {
    const other = make(1, { clusterName: 'beta' });
    const s = make(2);
    expect(s.open(other.seal(payload, 2), 1)).toBeUndefined();
    expect(drops(s)).toEqual({ droppedOtherCluster: 1 });
    expect(s.lastDrop).toBe('droppedOtherCluster');
  });

  it('drops wrong versions, garbage and truncated datagrams by reason', () => {
    const s = make(2);
    const d = Buffer.from(make(1).seal(payload, 2));
    const wrongVersion = Buffer.from(d);
    wrongVersion[2] = 1; // the format before the stamp
    expect(s.open(wrongVersion, 1)).toBeUndefined();
    expect(s.lastDrop).toBe('droppedVersion');
    expect(s.open(Buffer.from('GET / HTTP/1.1\r\n\r\n'), 1)).toBeUndefined();
    expect(s.open(d.subarray(0, 5), 1)).toBeUndefined();
    expect(s.open(d.subarray(0, HEADER_BYTES - 1), 1)).toBeUndefined();
    expect(s.open(new Uint8Array(0), 1)).toBeUndefined();
    expect(drops(s)).toEqual({ droppedVersion: 1, droppedGarbage: 1, droppedTruncated: 3 });
    expect(Buffer.from(s.open(d, 1)!)).toEqual(payload); // and the original still opens
  });

  it('never throws on random bytes', () => {
    const s = make(2);
    for (let i = 0; i < 2000; i++) {
      const junk = randomBytes(i % 97);
      if (i % 3 === 0 && junk.length >= 2) { junk[0] = 0xaf; junk[1] = 0xc1; }
      expect(s.open(junk, 1 + (i % 3))).toBeUndefined();
    }
    expect(s.stats().opened).toBe(0);
  });

  it('drops a replayed datagram, and one sent from another node\'s address or to another node', () => {
    const a = make(1);
    const b = make(2);
    const c = make(3);
    const toB = a.seal(payload, 2);
    const toAll = a.seal(payload, TO_ALL);
    expect(b.open(toB, 1)).toBeDefined();
    expect(b.open(toB, 1)).toBeUndefined();
    expect(b.lastDrop).toBe('droppedReplay');
    expect(b.open(toAll, 3)).toBeUndefined(); // node 1's datagram from node 3's address
    expect(b.lastDrop).toBe('droppedWrongSender');
    expect(b.open(toAll, 2)).toBeUndefined(); // its own id: never a peer
    expect(c.open(toB, 1)).toBeUndefined(); // a unicast to 2 replayed to 3
    expect(c.lastDrop).toBe('droppedWrongDestination');
    expect(b.open(toAll, 1)).toBeDefined();
    expect(c.open(toAll, 1)).toBeDefined(); // a broadcast opens once at every node
    expect(c.open(toAll, 1)).toBeUndefined();
    expect(drops(b)).toEqual({ droppedReplay: 1, droppedWrongSender: 2 });
    expect(drops(c)).toEqual({ droppedWrongDestination: 1, droppedReplay: 1 });
  });

  it('accepts late datagrams within the window once, and drops what fell behind it', () => {
    const a = make(1);
    const b = make(2);
    const ds = Array.from({ length: 1100 }, () => a.seal(payload, 2));
    expect(b.open(ds[0], 1)).toBeDefined(); // seq 1: first contact
    expect(b.open(ds[1099], 1)).toBeDefined(); // seq 1100
    expect(b.open(ds[999], 1)).toBeDefined(); // 100 behind: late, not seen yet
    expect(b.open(ds[999], 1)).toBeUndefined();
    expect(b.open(ds[10], 1)).toBeUndefined(); // 1089 behind: cannot tell
    expect(drops(b)).toEqual({ droppedReplay: 1, droppedBehindWindow: 1 });
  });

  it('accepts a restarted sender at once and drops its earlier incarnation for good', () => {
    const b = make(2);
    const before = make(1, { incarnation: 5000 });
    const old = [before.seal(payload, 2), before.seal(payload, 2)];
    expect(b.open(old[0], 1)).toBeDefined();
    const after = make(1, { incarnation: 5001 });
    expect(b.open(after.seal(payload, 2), 1)).toBeDefined(); // seq 1 again, a new incarnation
    expect(b.open(old[1], 1)).toBeUndefined(); // never accepted, but from the earlier life
    expect(b.lastDrop).toBe('droppedStaleIncarnation');
    expect(b.peerIncarnation(1)).toBe(5001);
    expect(b.peerIncarnation(3)).toBeUndefined();
    expect(b.stats()).toMatchObject({ opened: 2, incarnationsSeen: 2, droppedStaleIncarnation: 1 });
  });

  it('drops what a peer sent before this node first heard from it, and, after a restart, what the previous run accepted', () => {
    const a = make(1);
    const b = make(2);
    const ds = Array.from({ length: 10 }, () => a.seal(payload, TO_ALL));
    expect(b.open(ds[4], 1)).toBeDefined();
    expect(b.open(ds[3], 1)).toBeUndefined(); // sent before b listened: cannot tell, dropped
    expect(b.lastDrop).toBe('droppedBehindWindow');
    expect(b.open(ds[6], 1)).toBeDefined();
    // b restarts, restoring the marks it saved: what it accepted stays dropped from its first moment.
    const b2 = make(2, { incarnation: 1001 });
    b2.restoreMarks(b.marks());
    expect(b2.open(ds[6], 1)).toBeUndefined();
    expect(b2.open(ds[5], 1)).toBeUndefined(); // never accepted, but older than the marks
    expect(b2.open(ds[8], 1)).toBeDefined();
    expect(b2.open(ds[7], 1)).toBeUndefined(); // sent while b was down
    expect(drops(b2)).toEqual({ droppedBehindWindow: 3 });
    expect(b2.peerIncarnation(1)).toBe(1000);
    const junk = make(2);
    for (const m of [new Uint8Array(0), Uint8Array.of(9, 1, 2), Uint8Array.of(1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1)]) junk.restoreMarks(m);
    expect(junk.open(ds[0], 1)).toBeDefined(); // malformed marks, or marks of node 9: ignored
  });

  it('drops plaintext datagrams at an encrypting node and the reverse (mode)', () => {
    const other = name === 'encrypted' ? plaintext : encrypted;
    const s = make(2);
    expect(s.open(other(1).seal(payload, 2), 1)).toBeUndefined();
    expect(drops(s)).toEqual({ droppedMode: 1 });
  });
});

describe('sealing into room the caller left (reserved)', () => {
  it('without a key writes only the header, into the room, and the datagram is the caller\'s buffer', () => {
    const a = plaintext(1);
    const twin = plaintext(1);
    expect(a.headroom).toBe(HEADER_BYTES);
    const room = new Uint8Array(a.headroom + payload.length);
    room.set(payload, a.headroom);
    const plain = room.subarray(a.headroom);
    const d = a.seal(plain, TO_ALL, true);
    expect(d.buffer).toBe(room.buffer);
    expect(d.byteOffset).toBe(room.byteOffset);
    expect(d.length).toBe(room.length);
    expect(Buffer.from(plain).equals(payload)).toBe(true);
    // The same bytes as the copying seal of a sealer at the same sequence number: the wire is unchanged.
    expect(Buffer.from(d).equals(Buffer.from(twin.seal(payload, TO_ALL)))).toBe(true);
    expect(Buffer.from(plaintext(2).open(d, 1)!).equals(payload)).toBe(true);
  });

  it('with a key wants no room: the encryption writes a new datagram and leaves the payload as it was', () => {
    const a = encrypted(1);
    expect(a.headroom).toBe(0);
    const plain = Uint8Array.from(payload);
    const d = a.seal(plain, TO_ALL, true);
    expect(d.buffer).not.toBe(plain.buffer);
    expect(Buffer.from(plain).equals(payload)).toBe(true);
    expect(Buffer.from(encrypted(2).open(d, 1)!).equals(payload)).toBe(true);
  });
});

describe('encrypted sealer', () => {
  it('is readable by libsodium-wrappers with the header and cluster name as authenticated data', () => {
    // Small payloads are sealed by libsodium, large ones by OpenSSL (NATIVE_AEAD_MIN_BYTES): both.
    for (const body of [payload, randomBytes(NATIVE_AEAD_MIN_BYTES), randomBytes(60_000)]) {
      const s = encrypted(1);
      const d = s.seal(body, 2);
      const ad = Buffer.concat([Buffer.from(d.subarray(0, HEADER_BYTES)), Buffer.from('alpha')]);
      const nonce = d.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
      const plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, d.subarray(HEADER_BYTES + NONCE_BYTES), ad, nonce, key);
      expect(Buffer.from(plain)).toEqual(body);
      // and the other way round: what libsodium seals, we open
      const nonce2 = randomBytes(NONCE_BYTES);
      const c = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(body, ad, null, nonce2, key);
      expect(Buffer.from(encrypted(2).open(Buffer.concat([d.subarray(0, HEADER_BYTES), nonce2, c]), 1)!)).toEqual(body);
    }
  });

  it('uses a fresh nonce for every datagram, so equal payloads never look equal', () => {
    const s = encrypted(1);
    const a = Buffer.from(s.seal(payload, 2));
    const b = Buffer.from(s.seal(payload, 2));
    expect(a.subarray(HEADER_BYTES)).not.toEqual(b.subarray(HEADER_BYTES));
    const nonces = new Set<string>();
    for (let i = 0; i < 1000; i++) nonces.add(Buffer.from(s.seal(payload, 2).subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES)).toString('hex'));
    expect(nonces.size).toBe(1000); // across several refills of the nonce pool
  });

  it('drops a datagram with any single bit of the stamp or body flipped (tampered), by what the flip hits', () => {
    const a = encrypted(1);
    const d = Buffer.from(a.seal(payload, 2));
    const counts: Record<string, number> = {};
    for (let bit = PREFIX_BYTES * 8; bit < d.length * 8; bit++) {
      const s = encrypted(2); // fresh: every flip is judged against an empty window
      const t = Buffer.from(d);
      t[bit >> 3] ^= 0x80 >> (bit & 7);
      expect(s.open(t, 1)).toBeUndefined();
      counts[s.lastDrop!] = (counts[s.lastDrop!] ?? 0) + 1;
    }
    // Sender bits: another node. Destination bits: another node (or, for the one bit that makes
    // 2 into 0, every node: then authentication fails). Incarnation and seq bits: authentication.
    expect(counts).toEqual({ droppedWrongSender: 32, droppedWrongDestination: 31, droppedAuth: 1 + 96 + (d.length - HEADER_BYTES) * 8 });
    expect(Buffer.from(encrypted(2).open(d, 1)!)).toEqual(payload); // the original still opens
  });

  it('drops a forged datagram (right header, wrong key) and one cut short; neither moves the window', () => {
    const s = encrypted(2);
    const forger = encrypted(1, { key: randomBytes(32), incarnation: 9999 });
    expect(s.open(forger.seal(payload, 2), 1)).toBeUndefined();
    const a = encrypted(1);
    const d = a.seal(payload, 2);
    expect(s.open(d.subarray(0, d.length - 1), 1)).toBeUndefined(); // tag cut: authentication fails
    expect(s.open(d.subarray(0, HEADER_BYTES + NONCE_BYTES + TAG_BYTES - 1), 1)).toBeUndefined(); // no room for a tag
    expect(drops(s)).toEqual({ droppedAuth: 2, droppedTruncated: 1 });
    expect(s.peerIncarnation(1)).toBeUndefined(); // the forger's incarnation 9999 was not recorded
    expect(Buffer.from(s.open(d, 1)!)).toEqual(payload);
  });

  it('drops another cluster whose name hash collides: the full name is authenticated', () => {
    const s = encrypted(2);
    const other = Buffer.from(encrypted(1, { clusterName: 'alphb' }).seal(payload, 2));
    other.writeUInt32BE(clusterNameHash('alpha'), 4); // pretend the hash collided
    expect(s.open(other, 1)).toBeUndefined();
    expect(drops(s)).toEqual({ droppedAuth: 1 });
  });

  it('refuses a key of the wrong length, an empty cluster name, and a node not in the list', () => {
    expect(() => encrypted(1, { key: randomBytes(16) })).toThrow(/EINVAL.*32 bytes/);
    expect(() => plaintext(1, { clusterName: '' })).toThrow(/EINVAL/);
    expect(() => plaintext(4)).toThrow(/assertion failed/);
    expect(() => plaintext(1, { incarnation: 2 ** 48 })).toThrow(/assertion failed/);
  });

  it('reports its overhead: header, nonce and tag', () => {
    expect(encrypted(1).overheadBytes).toBe(HEADER_BYTES + NONCE_BYTES + TAG_BYTES);
    expect(plaintext(1).overheadBytes).toBe(HEADER_BYTES);
    expect(HEADER_BYTES).toBe(28);
  });
});

describe('memory a sealer makes is its own', () => {
  // A datagram or plaintext that spans all of its ArrayBuffer can go back the moment its last
  // holder lets go (core/wire/lease.ts own()); a slice of Node's shared pool (allocUnsafe and
  // Buffer.from below 4 KiB) waits for V8's collector.
  const whole = (b: Uint8Array) => b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;

  it('with a key: every datagram it seals and every plaintext it opens, small (libsodium) or large (OpenSSL)', () => {
    const a = encrypted(1);
    const b = encrypted(2);
    for (const n of [0, 1, 100, 1400, 4000, NATIVE_AEAD_MIN_BYTES - 1, NATIVE_AEAD_MIN_BYTES + 1000]) {
      const p = randomBytes(n);
      const d = a.seal(p, 2);
      expect(whole(d), `sealed ${n}`).toBe(true);
      const parts = a.sealParts(p, 2);
      for (const part of parts instanceof Uint8Array ? [parts] : parts) expect(whole(part), `a part of sealParts ${n}`).toBe(true);
      for (const datagram of [d, parts instanceof Uint8Array ? parts : Buffer.concat(parts)]) {
        const opened = b.open(datagram, 1)!;
        expect(Buffer.from(opened)).toEqual(p);
        expect(whole(opened), `opened ${n}`).toBe(true);
      }
    }
  });
});

describe('sealParts: a datagram as parts the kernel gathers', () => {
  it('gives a large payload\'s sealed datagram as header and nonce, ciphertext and tag, which open as one', () => {
    const a = encrypted(1);
    const b = encrypted(2);
    const body = randomBytes(NATIVE_AEAD_MIN_BYTES + 1000);
    const parts = a.sealParts(body, 2);
    expect(Array.isArray(parts)).toBe(true);
    const list = parts as readonly Uint8Array[];
    expect(list.map((p) => p.length)).toEqual([HEADER_BYTES + NONCE_BYTES, body.length, TAG_BYTES]);
    expect(Buffer.from(b.open(Buffer.concat(list), 1)!)).toEqual(body);
    expect(a.stats().sealed).toBe(1);
  });

  it('gives one array for a small payload, and without a key', () => {
    for (const s of [encrypted(1), plaintext(1)]) {
      const d = s.sealParts(payload, 2);
      expect(d instanceof Uint8Array).toBe(true);
      expect(Buffer.from((s.encrypted ? encrypted(2) : plaintext(2)).open(d as Uint8Array, 1)!)).toEqual(payload);
    }
    const big = randomBytes(NATIVE_AEAD_MIN_BYTES);
    expect(plaintext(1).sealParts(big, 2) instanceof Uint8Array).toBe(true);
  });
});
