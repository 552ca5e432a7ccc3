import type { RegistryClient, RequestOptions } from '../registry/registry-client.js';

export interface TaggedImage {
  /** The digest of the manifest now under every new tag. */
  readonly digest: string;
  readonly mediaType: string;
}

/**
 * Puts the manifest `source` names under each of `tags` in the same repository: the exact bytes
 * and media type the registry serves, so the digest stays and no blob moves (crane tag does the
 * same: https://github.com/google/go-containerregistry/blob/main/cmd/crane/doc/crane_tag.md).
 * Tags are written in the order given; the first failure stops the rest.
 */
export async function tagImage(
  client: RegistryClient,
  repository: string,
  source: string,
  tags: readonly string[],
  options: RequestOptions = {},
): Promise<TaggedImage> {
  const manifest = await client.getManifest(repository, source, options);
  for (const tag of tags)
    await client.putManifest(repository, tag, manifest.bytes, manifest.mediaType, options);
  return { digest: manifest.digest, mediaType: manifest.mediaType };
}
