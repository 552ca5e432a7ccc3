import { DOCKER_IMAGE_CONFIG, OCI_IMAGE_CONFIG } from '../registry/media-types.js';
import type { RegistryClient, RequestOptions } from '../registry/registry-client.js';
import { checkImagePlatform, type Platform } from '../registry/select-platform.js';
import type { BlobDescriptor } from './read-blob.js';

/**
 * For a single-platform image asked for with a platform: fetches its config (verified against
 * its digest) and refuses the image when the config names another platform (checkImagePlatform).
 * Returns the config bytes, or undefined for an artifact, whose config is no image config and
 * names no platform.
 */
export async function verifyImagePlatform(
  client: RegistryClient,
  repository: string,
  config: BlobDescriptor,
  wanted: Platform,
  what: string,
  options: RequestOptions = {},
): Promise<Buffer | undefined> {
  // An empty media type: a manifest that left it out, read as an image config.
  const mediaType = config.mediaType ?? '';
  if (mediaType !== '' && mediaType !== OCI_IMAGE_CONFIG && mediaType !== DOCKER_IMAGE_CONFIG)
    return undefined;
  const bytes = await client.getBlobBytes(repository, config.digest, undefined, options);
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    body = undefined;
  }
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    checkImagePlatform(body as Record<string, unknown>, wanted, what);
  }
  return bytes;
}
