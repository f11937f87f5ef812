// Proves sealed datagrams round-trip, interoperate with libsodium's own AEAD, and that forged, truncated, tampered, wrong-version, wrong-mode and other-cluster datagrams are dropped and counted.
import { beforeAll, describe, expect, it } from 'vitest';
import sodium from 'libsodium-wrappers';
import { randomBytes } from 'node:crypto';
import {
  createSealer, cryptoReady, clusterNameHash, HEADER_BYTES, NONCE_BYTES, TAG_BYTES, type Sealer, type SealerStats,
} from './sealer.ts';

beforeAll(async () => {
  await cryptoReady();
});

const key = randomBytes(32);
const payload = Buffer.from('the quick brown fox jumps over the lazy dog');

function drops(s: Sealer): Partial<SealerStats> {
  const st = s.stats();
  return Object.fromEntries(Object.entries(st).filter(([k, v]) => k.startsWith('dropped') && v > 0));
}

describe.each([
  ['encrypted', () => createSealer({ clusterName: 'alpha', key })],
  ['plaintext', () => createSealer({ clusterName: 'alpha' })],
])('%s sealer', (_name, make) => {
  it('round-trips payloads of every size, empty to the UDP maximum', () => {
    const a = make();
    const b = make();
    for (const n of [0, 1, 100, 1400, 65_507 - a.overheadBytes, 65_507]) {
      const p = randomBytes(n);
      const d = a.seal(p);
      expect(d.length).toBe(n + a.overheadBytes);
      expect(Buffer.from(b.open(d)!)).toEqual(p);
    }
    expect(b.stats().opened).toBe(6);
    expect(drops(b)).toEqual({});
  });

  it('drops another cluster\'s datagrams as otherCluster', () => {
    const other = _name === 'encrypted' ? createSealer({ clusterName: 'beta', key }) : createSealer({ clusterName: 'beta' });
    const s = make();
    expect(s.open(other.seal(payload))).toBeUndefined();
    expect(drops(s)).toEqual({ droppedOtherCluster: 1 });
  });

  it('drops wrong versions, garbage and truncated datagrams by reason', () => {
    const s = make();
    const d = Buffer.from(s.seal(payload));
    const wrongVersion = Buffer.from(d);
    wrongVersion[2] = 2;
    expect(s.open(wrongVersion)).toBeUndefined();
    expect(s.open(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBeUndefined();
    expect(s.open(d.subarray(0, 5))).toBeUndefined();
    expect(s.open(new Uint8Array(0))).toBeUndefined();
    expect(drops(s)).toEqual({ droppedVersion: 1, droppedGarbage: 1, droppedTruncated: 2 });
  });

  it('never throws on random bytes', () => {
    const s = make();
    for (let i = 0; i < 2000; i++) {
      const junk = randomBytes(i % 97);
      if (i % 3 === 0 && junk.length >= 2) { junk[0] = 0xaf; junk[1] = 0xc1; }
      expect(s.open(junk)).toBeUndefined();
    }
    expect(s.stats().opened).toBe(0);
  });
});

describe('encrypted sealer', () => {
  it('is readable by libsodium-wrappers with the header and cluster name as authenticated data', () => {
    const s = createSealer({ clusterName: 'alpha', key });
    const d = s.seal(payload);
    const ad = Buffer.concat([Buffer.from(d.subarray(0, HEADER_BYTES)), Buffer.from('alpha')]);
    const nonce = d.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
    const plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, d.subarray(HEADER_BYTES + NONCE_BYTES), ad, nonce, key);
    expect(Buffer.from(plain)).toEqual(payload);
    // and the other way round: what libsodium seals, we open
    const nonce2 = randomBytes(NONCE_BYTES);
    const c = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(payload, ad, null, nonce2, key);
    expect(Buffer.from(s.open(Buffer.concat([d.subarray(0, HEADER_BYTES), nonce2, c]))!)).toEqual(payload);
  });

  it('uses a fresh nonce for every datagram, so equal payloads never look equal', () => {
    const s = createSealer({ clusterName: 'alpha', key });
    const a = Buffer.from(s.seal(payload));
    const b = Buffer.from(s.seal(payload));
    expect(a.subarray(HEADER_BYTES)).not.toEqual(b.subarray(HEADER_BYTES));
    const nonces = new Set<string>();
    for (let i = 0; i < 1000; i++) nonces.add(Buffer.from(s.seal(payload).subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES)).toString('hex'));
    expect(nonces.size).toBe(1000); // across several refills of the nonce pool
  });

  it('drops a datagram with any single bit flipped (tampered) as droppedAuth', () => {
    const s = createSealer({ clusterName: 'alpha', key });
    const d = Buffer.from(s.seal(payload));
    for (let byte = HEADER_BYTES; byte < d.length; byte++) {
      const t = Buffer.from(d);
      t[byte] ^= 1 << (byte % 8);
      expect(s.open(t)).toBeUndefined();
    }
    expect(drops(s)).toEqual({ droppedAuth: d.length - HEADER_BYTES });
    expect(Buffer.from(s.open(d)!)).toEqual(payload); // the original still opens
  });

  it('drops a forged datagram (right header, wrong key) and one cut short', () => {
    const s = createSealer({ clusterName: 'alpha', key });
    const forger = createSealer({ clusterName: 'alpha', key: randomBytes(32) });
    expect(s.open(forger.seal(payload))).toBeUndefined();
    const d = s.seal(payload);
    expect(s.open(d.subarray(0, d.length - 1))).toBeUndefined(); // tag cut: authentication fails
    expect(s.open(d.subarray(0, HEADER_BYTES + NONCE_BYTES + TAG_BYTES - 1))).toBeUndefined(); // no room for a tag
    expect(drops(s)).toEqual({ droppedAuth: 2, droppedTruncated: 1 });
  });

  it('drops another cluster whose name hash collides: the full name is authenticated', () => {
    const s = createSealer({ clusterName: 'alpha', key });
    const other = Buffer.from(createSealer({ clusterName: 'alphb', key }).seal(payload));
    other.writeUInt32BE(clusterNameHash('alpha'), 4); // pretend the hash collided
    expect(s.open(other)).toBeUndefined();
    expect(drops(s)).toEqual({ droppedAuth: 1 });
  });

  it('drops plaintext datagrams at an encrypting node and the reverse (mode)', () => {
    const enc = createSealer({ clusterName: 'alpha', key });
    const plain = createSealer({ clusterName: 'alpha' });
    expect(enc.open(plain.seal(payload))).toBeUndefined();
    expect(plain.open(enc.seal(payload))).toBeUndefined();
    expect(drops(enc)).toEqual({ droppedMode: 1 });
    expect(drops(plain)).toEqual({ droppedMode: 1 });
  });

  it('refuses a key of the wrong length and an empty cluster name', () => {
    expect(() => createSealer({ clusterName: 'alpha', key: randomBytes(16) })).toThrow(/EINVAL.*32 bytes/);
    expect(() => createSealer({ clusterName: '' })).toThrow(/EINVAL/);
  });

  it('reports its overhead: header, nonce and tag', () => {
    expect(createSealer({ clusterName: 'a', key }).overheadBytes).toBe(HEADER_BYTES + NONCE_BYTES + TAG_BYTES);
    expect(createSealer({ clusterName: 'a' }).overheadBytes).toBe(HEADER_BYTES);
  });
});
