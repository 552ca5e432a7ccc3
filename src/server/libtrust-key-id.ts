import { createHash, type KeyObject } from 'node:crypto';

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32_ALPHABET[(buffer >>> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * The key ID distribution 2.8 looks up in its `rootcertbundle` when a token header has a `kid`
 * (libtrust's KeyIDFromCryptoKey): SHA-256 of the public key's SubjectPublicKeyInfo DER, first
 * 240 bits, base32 without padding, 12 groups of 4 joined by ":" (docker/libtrust util.go `keyIDFromCryptoKey`).
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const digest = createHash('sha256').update(spki).digest().subarray(0, 30);
  return base32(digest).match(/.{4}/g)?.join(':') ?? '';
}
