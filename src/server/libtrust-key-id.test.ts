import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { libtrustKeyId } from './libtrust-key-id.js';

/** The example key of distribution's docs/spec/auth/jwt.md. */
const JWT_MD_KEY = {
  kty: 'EC',
  crv: 'P-256',
  x: 'm7zUpx3b-zmVE5cymSs64POG9QcyEpJaYCD82-549_Q',
  y: 'dU3biz8sZ_8GPB-odm8Wxz3lNDr1xcAQQPQaOcr1fmc',
};

const KEY_ID_RE = /^[A-Z2-7]{4}(?::[A-Z2-7]{4}){11}$/;

describe('libtrustKeyId', () => {
  it('gives the key ID of the jwt.md example key', () => {
    const key = createPublicKey({ key: JWT_MD_KEY, format: 'jwk' });
    expect(libtrustKeyId(key)).toBe('PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6');
  });

  it('gives 12 groups of 4 base32 characters for an RSA key', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(libtrustKeyId(publicKey)).toMatch(KEY_ID_RE);
  });

  it('encodes the first 30 bytes of the SPKI digest in RFC 4648 base32', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const digest = createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest();
    // Decode the ID back to bytes, independently of the encoder under test.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    const bits = [...libtrustKeyId(publicKey).replaceAll(':', '')]
      .map((c) => alphabet.indexOf(c).toString(2).padStart(5, '0'))
      .join('');
    const bytes = Buffer.from(bits.match(/.{8}/g)?.map((b) => Number.parseInt(b, 2)) ?? []);
    expect(bytes).toEqual(digest.subarray(0, 30));
  });

  it('gives different keys different IDs', () => {
    const a = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const b = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(libtrustKeyId(a)).not.toBe(libtrustKeyId(b));
  });
});
