import { parseDigest } from '../digest/digest.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { Descriptor } from './oci-types.js';

/** How much of a bad entry an error message quotes. */
const QUOTE_CHARS = 120;

/**
 * The descriptors of a referrers answer: an image index whose `manifests` entries each name a
 * media type, a digest and a size (distribution-spec v1.1 "Listing Referrers"; image-spec
 * descriptor.md). `what` names the answer in errors. A body that is not such an index is the
 * registry's fault, said as ERR_REGISTRY with the entry at fault, never a bare SyntaxError: its
 * digests are what a caller goes on to fetch.
 */
export function parseReferrersIndex(bytes: Buffer, what: string): Descriptor[] {
  let index: unknown;
  try {
    index = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw notAnIndex(what, 'it is not JSON');
  }
  if (typeof index !== 'object' || index === null || Array.isArray(index)) {
    throw notAnIndex(what, 'it is not a JSON object');
  }
  const manifests = (index as { manifests?: unknown }).manifests;
  if (!Array.isArray(manifests)) throw notAnIndex(what, 'it has no "manifests" list');
  return manifests.map((entry: unknown, i) => {
    const problem = descriptorProblem(entry);
    if (problem !== undefined) {
      const quoted = JSON.stringify(entry)?.slice(0, QUOTE_CHARS) ?? String(entry);
      throw notAnIndex(what, `manifests[${i}] ${problem}: ${quoted}`);
    }
    return entry as Descriptor;
  });
}

function descriptorProblem(entry: unknown): string | undefined {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return 'is not an object';
  const { mediaType, digest, size } = entry as Record<string, unknown>;
  if (typeof mediaType !== 'string' || mediaType === '') return 'has no mediaType';
  if (typeof digest !== 'string') return 'has no digest';
  try {
    parseDigest(digest);
  } catch {
    return 'has a digest that is not one';
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return 'has no valid size';
  return undefined;
}

function notAnIndex(what: string, why: string): RegauthError {
  return new RegauthError(
    'ERR_REGISTRY',
    `${what}: the registry sent an answer that is not an image index (${why}); the registry or the referrers tag holds something else, so report it to its operator`,
  );
}
