import { createHash } from 'node:crypto';
import { RegauthError } from '../errors/regauth-error.js';

/** The digest algorithms the OCI image spec registers (descriptor.md, "Registered algorithms"). */
export type DigestAlgorithm = 'sha256' | 'sha512';
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** A digest taken apart: `sha256:<hex>` is `{ algorithm: 'sha256', hex }`. */
export interface ParsedDigest {
  /** The algorithm the encoded part was made with. */
  readonly algorithm: DigestAlgorithm;
  /** The encoded part: lowercase hex of the hash. */
  readonly hex: string;
}

/**
 * Parses `sha256:<64 hex>` or `sha512:<128 hex>` (OCI image-spec descriptor.md). The digests it
 * sees come from manifests, layouts and registry headers (a user's reference is checked by
 * parseReference), so a bad one is ERR_INVALID_DIGEST, not a usage error.
 */
export function parseDigest(text: string): ParsedDigest {
  const colon = text.indexOf(':');
  const algorithm = text.slice(0, colon) as DigestAlgorithm;
  const hex = text.slice(colon + 1);
  if (
    colon < 0 ||
    !(algorithm in HEX_LENGTH) ||
    hex.length !== HEX_LENGTH[algorithm] ||
    !/^[0-9a-f]+$/.test(hex)
  ) {
    throw new RegauthError(
      'ERR_INVALID_DIGEST',
      `invalid digest ${JSON.stringify(text.slice(0, 140))}: expected sha256:<64 lowercase hex> or sha512:<128 lowercase hex>`,
    );
  }
  return { algorithm, hex };
}

/** The digest of `bytes` with the algorithm of `like` (default sha256). */
export function computeDigest(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Throws ERR_DIGEST_MISMATCH unless `bytes` hash to `expected`. */
export function verifyDigest(bytes: Uint8Array, expected: string, what: string): void {
  const { algorithm } = parseDigest(expected);
  const actual = computeDigest(bytes, algorithm);
  if (actual !== expected) {
    throw new RegauthError(
      'ERR_DIGEST_MISMATCH',
      `${what}: the registry sent content with digest ${actual}, not the ${expected} asked for; nothing was written`,
    );
  }
}
