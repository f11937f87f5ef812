// XChaCha20-Poly1305-IETF through Node's own crypto (OpenSSL) for large datagrams: the same
// construction and bytes as libsodium's crypto_aead_xchacha20poly1305_ietf (the sealer's small
// datagrams still go through libsodium, whose one call costs less than setting up an OpenSSL
// context). OpenSSL has ChaCha20-Poly1305 (RFC 8439) but not the extended-nonce variant, so the
// extension is done here as draft-irtf-cfrg-xchacha specifies it: HChaCha20 of the key and the
// nonce's first 16 bytes gives a subkey, and the nonce's last 8 bytes behind 4 zero bytes are
// the 12-byte nonce of ChaCha20-Poly1305 under that subkey. HChaCha20 is 20 ChaCha rounds over
// constants, key and those 16 bytes, without the final addition (one block, about a microsecond);
// xchacha.test.ts checks every size against libsodium byte for byte.
import { createCipheriv, createDecipheriv } from 'node:crypto';

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]; // "expand 32-byte k"

function readLe32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/** HChaCha20: a 32-byte subkey from a 32-byte key and a 16-byte input. */
export function hchacha20(key: Uint8Array, input: Uint8Array, inputAt = 0): Buffer {
  const x = new Uint32Array(16);
  for (let i = 0; i < 4; i++) x[i] = SIGMA[i];
  for (let i = 0; i < 8; i++) x[4 + i] = readLe32(key, 4 * i);
  for (let i = 0; i < 4; i++) x[12 + i] = readLe32(input, inputAt + 4 * i);
  const qr = (a: number, b: number, c: number, d: number): void => {
    x[a] += x[b]; x[d] ^= x[a]; x[d] = (x[d] << 16) | (x[d] >>> 16);
    x[c] += x[d]; x[b] ^= x[c]; x[b] = (x[b] << 12) | (x[b] >>> 20);
    x[a] += x[b]; x[d] ^= x[a]; x[d] = (x[d] << 8) | (x[d] >>> 24);
    x[c] += x[d]; x[b] ^= x[c]; x[b] = (x[b] << 7) | (x[b] >>> 25);
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15);
    qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14);
  }
  const out = Buffer.allocUnsafe(32);
  for (let i = 0; i < 4; i++) out.writeUInt32LE(x[i], 4 * i);
  for (let i = 0; i < 4; i++) out.writeUInt32LE(x[12 + i], 16 + 4 * i);
  return out;
}

const TAG_BYTES = 16;

/** The ChaCha20-Poly1305 nonce of an XChaCha20 nonce: 4 zero bytes and its last 8 bytes. */
function innerNonce(nonce: Uint8Array, at: number): Buffer {
  const n = Buffer.alloc(12);
  n.set(nonce.subarray(at + 16, at + 24), 4);
  return n;
}

/** Encrypts `plain` under `key` and the 24-byte nonce at `nonce[nonceAt]`, authenticating `ad`:
 *  the ciphertext and the tag, in buffers of their own (OpenSSL writes the ciphertext once). */
export function xchachaSeal(key: Uint8Array, ad: Uint8Array, plain: Uint8Array, nonce: Uint8Array, nonceAt: number): [Buffer, Buffer] {
  const c = createCipheriv('chacha20-poly1305', hchacha20(key, nonce, nonceAt), innerNonce(nonce, nonceAt), { authTagLength: TAG_BYTES });
  c.setAAD(ad, { plaintextLength: plain.length });
  const body = c.update(plain);
  c.final();
  return [body, c.getAuthTag()];
}

/** xchachaSeal with ciphertext and tag written into `out` just after the nonce. */
export function xchachaSealInto(key: Uint8Array, ad: Uint8Array, plain: Uint8Array, out: Uint8Array, nonceAt: number): void {
  const [body, tag] = xchachaSeal(key, ad, plain, out, nonceAt);
  out.set(body, nonceAt + 24);
  out.set(tag, nonceAt + 24 + body.length);
}

/** Opens ciphertext-and-tag `sealed` under `key` and the 24-byte nonce at `d[nonceAt]`; undefined if it does not authenticate. */
export function xchachaOpen(key: Uint8Array, ad: Uint8Array, d: Uint8Array, nonceAt: number, sealed: Uint8Array): Buffer | undefined {
  if (sealed.length < TAG_BYTES) return undefined;
  const clen = sealed.length - TAG_BYTES;
  const dc = createDecipheriv('chacha20-poly1305', hchacha20(key, d, nonceAt), innerNonce(d, nonceAt), { authTagLength: TAG_BYTES });
  dc.setAAD(ad, { plaintextLength: clen });
  dc.setAuthTag(sealed.subarray(clen));
  const plain = dc.update(sealed.subarray(0, clen));
  try {
    dc.final();
  } catch {
    return undefined;
  }
  return plain;
}
