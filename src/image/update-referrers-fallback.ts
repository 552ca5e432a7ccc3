import { RegauthError } from '../errors/regauth-error.js';
import { isIndexMediaType, OCI_INDEX } from '../registry/media-types.js';
import { referrersTag } from '../registry/referrers-tag.js';
import type { RegistryClient, RequestOptions } from '../registry/registry-client.js';

/** A manifest as pushed: its exact bytes, their digest and the media type it was put with. */
export interface PushedManifest {
  readonly bytes: Buffer;
  readonly digest: string;
  readonly mediaType: string;
}

function jsonObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/**
 * For a manifest with a `subject` pushed to a registry that did not index it (no `OCI-Subject`
 * in its answer): adds the manifest's descriptor to the image index under the subject's
 * referrers tag, starting an empty index when there is none, so the tag schema lists it
 * (OCI distribution 1.1, "Pushing Manifests with Subject":
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests-with-subject).
 * The descriptor carries `artifactType` (the config's media type when the manifest has none)
 * and the manifest's annotations. Returns the tag and the index's digest, or undefined when the
 * manifest has no subject or the index lists it already. Two clients updating one index at the
 * same moment can lose one entry: the spec's tag schema has no compare-and-swap.
 */
export async function updateReferrersFallback(
  client: RegistryClient,
  repository: string,
  manifest: PushedManifest,
  options: RequestOptions = {},
): Promise<{ tag: string; digest: string } | undefined> {
  let body: Record<string, unknown> | undefined;
  try {
    body = jsonObject(JSON.parse(manifest.bytes.toString('utf8')));
  } catch {
    return undefined;
  }
  const subject = jsonObject(body?.subject);
  if (body === undefined || subject === undefined || typeof subject.digest !== 'string') return undefined;
  const tag = referrersTag(subject.digest);
  const where = `${client.registry}/${repository}:${tag}`;

  let index: Record<string, unknown> = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
  try {
    const current = await client.getManifest(repository, tag, options);
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = isIndexMediaType(current.mediaType)
        ? jsonObject(JSON.parse(current.bytes.toString('utf8')))
        : undefined;
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || !Array.isArray(parsed.manifests)) {
      throw new RegauthError(
        'ERR_MANIFEST_INVALID',
        `the referrers tag ${where} holds a ${current.mediaType || 'manifest'}, not an image index; ` +
          `it was left as it is, and ${manifest.digest} is not listed there`,
      );
    }
    index = parsed;
  } catch (err) {
    if (!(err instanceof RegauthError && err.code === 'ERR_MANIFEST_UNKNOWN')) throw err;
  }
  const entries = index.manifests as unknown[];
  if (entries.some((e) => jsonObject(e)?.digest === manifest.digest)) return undefined;

  const artifactType =
    typeof body.artifactType === 'string' ? body.artifactType : jsonObject(body.config)?.mediaType;
  const annotations = jsonObject(body.annotations);
  const descriptor = {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.bytes.length,
    ...(typeof artifactType === 'string' ? { artifactType } : {}),
    ...(annotations === undefined ? {} : { annotations }),
  };
  const bytes = Buffer.from(JSON.stringify({ ...index, manifests: [...entries, descriptor] }));
  const digest = await client.putManifest(repository, tag, bytes, OCI_INDEX, options);
  return { tag, digest };
}
