import { parseDigest } from '../digest/digest.js';

/**
 * The tag under which registries without the referrers API keep a manifest's referrers, as an
 * image index: `<alg>-<ref>` with the algorithm cut to 32 characters and the encoded part to 64,
 * so that it fits the tag grammar (OCI distribution 1.1, "Referrers Tag Schema":
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#referrers-tag-schema).
 */
export function referrersTag(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${algorithm.slice(0, 32)}-${hex.slice(0, 64)}`;
}
