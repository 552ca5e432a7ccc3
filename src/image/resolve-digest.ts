import type { RegistryClient, RequestOptions } from '../registry/registry-client.js';

/**
 * The digest a tag (or digest) names in a repository: the registry's Docker-Content-Digest from
 * a HEAD, or where a registry leaves that header out, the hash of the manifest a GET serves.
 */
export async function resolveDigest(
  client: RegistryClient,
  repository: string,
  reference: string,
  options: RequestOptions = {},
): Promise<string> {
  const head = await client.headManifest(repository, reference, options);
  return head.digest ?? (await client.getManifest(repository, reference, options)).digest;
}
