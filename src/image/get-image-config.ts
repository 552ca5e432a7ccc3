import { RegauthError } from '../errors/regauth-error.js';
import { isIndexMediaType } from '../registry/media-types.js';
import type { Manifest, RegistryClient, RequestOptions } from '../registry/registry-client.js';
import { hostPlatform, type Platform, selectPlatform } from '../registry/select-platform.js';
import { verifyImagePlatform } from './verify-image-platform.js';

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
 * The manifest of one image (as getPlatformManifest picks it), and its config blob when checking
 * the platform fetched it already: a caller that wants the config too need not fetch it again.
 */
export async function platformManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  platform: Platform | undefined,
  options: RequestOptions,
): Promise<{ manifest: Manifest; config?: Buffer }> {
  const top = await client.getManifest(repository, reference, options);
  const where = `${client.registry}/${repository}`;
  const what = `manifest ${where}`;
  const body = parseJson(top, what);
  if (!isIndexMediaType(top.mediaType) && !Array.isArray(body.manifests)) {
    const config = body.config as { digest?: unknown; mediaType?: unknown } | undefined;
    if (platform === undefined || typeof config?.digest !== 'string') return { manifest: top };
    const bytes = await verifyImagePlatform(
      client,
      repository,
      {
        digest: config.digest,
        ...(typeof config.mediaType === 'string' ? { mediaType: config.mediaType } : {}),
      },
      platform,
      `${where}:${reference}`,
      options,
    );
    return bytes === undefined ? { manifest: top } : { manifest: top, config: bytes };
  }
  const entry = selectPlatform(
    body as { manifests?: [] },
    platform ?? hostPlatform(),
    `${where}:${reference}`,
  );
  return { manifest: await client.getManifest(repository, entry.digest, options) };
}

/**
 * The manifest of one image: `reference` itself when it is a single-platform manifest, else the
 * entry of its index for `platform` (the host's when left out). A single-platform image whose
 * config names another platform than `platform`, when given, is refused.
 */
export async function getPlatformManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  platform?: Platform,
  options: RequestOptions = {},
): Promise<Manifest> {
  return (await platformManifest(client, repository, reference, platform, options)).manifest;
}

/** The image config blob (JSON) of an image, verified against the digest its manifest names. */
export async function getImageConfig(
  client: RegistryClient,
  repository: string,
  reference: string,
  platform?: Platform,
  options: RequestOptions = {},
): Promise<Buffer> {
  const { manifest, config: fetchedConfig } = await platformManifest(
    client,
    repository,
    reference,
    platform,
    options,
  );
  if (fetchedConfig !== undefined) return fetchedConfig;
  const body = parseJson(manifest, `manifest ${client.registry}/${repository}`);
  const config = body.config as { digest?: unknown } | undefined;
  if (typeof config?.digest !== 'string') {
    throw new RegauthError(
      'ERR_UNSUPPORTED',
      `manifest ${manifest.digest} of ${client.registry}/${repository} has no config (schema 1 or an artifact?)`,
    );
  }
  return client.getBlobBytes(repository, config.digest, undefined, options);
}
