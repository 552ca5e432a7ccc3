import type { RegistryClient, RequestOptions } from '../registry/registry-client.js';
import { type Platform, selectPlatform } from '../registry/select-platform.js';
import { type FetchedManifest, fetched } from './collect-manifests.js';
import { verifyImagePlatform } from './verify-image-platform.js';

/** Fetches a repository's manifests by descriptor, parsed: what collectManifests follows. */
export function manifestLoader(
  client: RegistryClient,
  repository: string,
  options: RequestOptions = {},
): (d: { digest: string; platform?: Readonly<Record<string, unknown>> }) => Promise<FetchedManifest> {
  const where = `${client.registry}/${repository}`;
  return async (d) =>
    fetched(
      await client.getManifest(repository, d.digest, options),
      `manifest ${where}@${d.digest}`,
      d.platform,
    );
}

export interface ManifestForPlatformOptions extends RequestOptions {
  /** The platform asked for. A single-platform image of another platform is refused. */
  readonly platform?: Platform;
  /** The index entry taken when no platform is asked for. Left out: the index itself. */
  readonly indexDefault?: Platform;
}

/**
 * The manifest a transfer starts from: for an index, its entry for the platform asked for (else
 * `indexDefault`, else the index whole); a single-platform image as it is, once its config shows
 * it is the platform asked for (skopeo only warns; a pull of the wrong architecture fails later
 * and further from the cause).
 */
export async function manifestForPlatform(
  client: RegistryClient,
  repository: string,
  reference: string,
  options: ManifestForPlatformOptions = {},
): Promise<FetchedManifest> {
  const what = `${client.registry}/${repository}:${reference}`;
  const request: RequestOptions = options.signal === undefined ? {} : { signal: options.signal };
  const root = fetched(await client.getManifest(repository, reference, request), `manifest ${what}`);
  const wanted = options.platform ?? options.indexDefault;
  if (root.parsed.kind === 'index') {
    return wanted === undefined
      ? root
      : manifestLoader(client, repository, request)(selectPlatform(root.parsed, wanted, what));
  }
  if (root.parsed.kind === 'image' && options.platform !== undefined) {
    await verifyImagePlatform(client, repository, root.parsed.config, options.platform, what, request);
  }
  return root;
}
