import { hkdfSync, type KeyObject } from 'node:crypto';
import { KeyedDigest } from './keyed-digest.js';

/**
 * A KeyedDigest every replica derives alike: HKDF-SHA256 (RFC 5869) over the signing key's
 * PKCS#8 encoding. Counters a shared store keeps per user are keyed by its digests, so each
 * replica must hash a name to the same key; a key made at random per process would give every
 * replica counters of its own. The secret stays secret (it comes from the private key), so a
 * reader of Redis still cannot test guesses of a name against the keys.
 *
 * Rotating the signing key changes the digest: counters start over, as after a Redis restart,
 * unless the store names a secret of its own (counterDigestSecret).
 */
export function sharedKeyedDigest(signingKey: KeyObject): KeyedDigest {
  return new KeyedDigest(sharedDigestSecret(signingKey));
}

/** The secret sharedKeyedDigest keys its digest with. */
export function sharedDigestSecret(signingKey: KeyObject): Buffer {
  const material = signingKey.export({ type: 'pkcs8', format: 'der' });
  return Buffer.from(hkdfSync('sha256', material, 'regauth', 'regauth shared counters v1', 32));
}
