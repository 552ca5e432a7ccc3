import { RegauthError } from '../errors/regauth-error.js';
import { isIndexMediaType } from '../registry/media-types.js';
import type { Manifest, RegistryClient } from '../registry/registry-client.js';
import { hostPlatform, type Platform, selectPlatform } from '../registry/select-platform.js';

function parseJson(manifest: Manifest, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(manifest.bytes.toString('utf8')) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // Reported below.
  }
  throw new RegauthError('ERR_MANIFEST_INVALID', `${what} (${manifest.digest}) is not a JSON object`);
}

/**
 * The manifest of one image: `reference` itself when it is a single-platform manifest, else the
 * entry of its index for `platform` (the host's when left out).
 */
export async function getPlatformManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  platform?: Platform,
): Promise<Manifest> {
  const top = await client.getManifest(repository, reference);
  const what = `manifest ${client.registry}/${repository}`;
  if (!isIndexMediaType(top.mediaType) && !Array.isArray(parseJson(top, what).manifests)) return top;
  const entry = selectPlatform(parseJson(top, what) as { manifests?: [] }, platform ?? hostPlatform());
  return client.getManifest(repository, entry.digest);
}

/** The image config blob (JSON) of an image, verified against the digest its manifest names. */
export async function getImageConfig(
  client: RegistryClient,
  repository: string,
  reference: string,
  platform?: Platform,
): Promise<Buffer> {
  const manifest = await getPlatformManifest(client, repository, reference, platform);
  const body = parseJson(manifest, `manifest ${client.registry}/${repository}`);
  const config = body.config as { digest?: unknown } | undefined;
  if (typeof config?.digest !== 'string') {
    throw new RegauthError(
      'ERR_UNSUPPORTED',
      `manifest ${manifest.digest} of ${client.registry}/${repository} has no config (schema 1 or an artifact?)`,
    );
  }
  return client.getBlobBytes(repository, config.digest);
}
