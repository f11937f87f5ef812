import { describe, expect, it } from 'vitest';
import sodium from 'libsodium-wrappers';
import { randomSource } from '../../sim/rng.ts';
import { hchacha20, xchachaOpen, xchachaSealInto } from './xchacha.ts';

const SEED = 4711;

function bytes(rng: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(rng() * 256));
}

describe('XChaCha20-Poly1305 through node:crypto', () => {
  it('HChaCha20 gives draft-irtf-cfrg-xchacha-03 section 2.2.1\'s test vector', () => {
    const key = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
    const input = Buffer.from('000000090000004a0000000031415927', 'hex');
    expect(hchacha20(key, input).toString('hex')).toBe('82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
  });

  it(`seals and opens the same bytes as libsodium, at every size class (seed ${SEED})`, async () => {
    await sodium.ready;
    const rng = randomSource(SEED);
    for (const size of [0, 1, 15, 16, 63, 64, 65, 1000, 1400, 4096, 65_000]) {
      const key = bytes(rng, 32);
      const nonce = bytes(rng, 24);
      const ad = bytes(rng, 28 + Math.floor(rng() * 40));
      const plain = bytes(rng, size);
      const theirs = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, ad, null, nonce, key);
      const out = new Uint8Array(3 + 24 + size + 16);
      out.set(nonce, 3);
      xchachaSealInto(key, ad, plain, out, 3);
      expect(Buffer.from(out.subarray(27)).equals(Buffer.from(theirs)), `size ${size}`).toBe(true);
      const opened = xchachaOpen(key, ad, out, 3, out.subarray(27));
      expect(opened && Buffer.from(opened).equals(Buffer.from(plain)), `size ${size}`).toBe(true);
      // Anything changed does not open: a body bit, the tag, the authenticated data, the nonce.
      const flipped = Uint8Array.from(out);
      flipped[27 + Math.floor(rng() * (size + 16))] ^= 1;
      expect(xchachaOpen(key, ad, flipped, 3, flipped.subarray(27))).toBeUndefined();
      const otherAd = Uint8Array.from(ad);
      otherAd[0] ^= 0x80;
      expect(xchachaOpen(key, otherAd, out, 3, out.subarray(27))).toBeUndefined();
      const otherNonce = Uint8Array.from(out);
      otherNonce[3 + 20] ^= 1;
      expect(xchachaOpen(key, ad, otherNonce, 3, otherNonce.subarray(27))).toBeUndefined();
    }
  });

  it('refuses a body shorter than a tag', () => {
    expect(xchachaOpen(new Uint8Array(32), new Uint8Array(28), new Uint8Array(40), 0, new Uint8Array(15))).toBeUndefined();
  });
});
