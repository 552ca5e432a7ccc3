import { RegauthError } from '../errors/regauth-error.js';
import { DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED, isIndexMediaType } from '../registry/media-types.js';
import type { LayoutDescriptor } from './oci-layout.js';

export type ParsedManifest =
  | { readonly kind: 'index'; readonly mediaType: string; readonly manifests: readonly LayoutDescriptor[] }
  | {
      readonly kind: 'image';
      readonly mediaType: string;
      readonly config: LayoutDescriptor;
      readonly layers: readonly LayoutDescriptor[];
      /** OCI 1.1 `subject`: the manifest this one refers to (signatures, SBOMs). */
      readonly subject?: LayoutDescriptor;
    };

function descriptor(value: unknown, where: string): LayoutDescriptor {
  const d = value as Partial<LayoutDescriptor> | null;
  if (
    typeof d !== 'object' ||
    d === null ||
    typeof d.digest !== 'string' ||
    !/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(d.digest) ||
    typeof d.size !== 'number' ||
    !Number.isSafeInteger(d.size) ||
    d.size < 0
  ) {
    throw new RegauthError('ERR_MANIFEST_INVALID', `${where} is not a descriptor with a digest and a size`);
  }
  return { ...d, mediaType: typeof d.mediaType === 'string' ? d.mediaType : '' } as LayoutDescriptor;
}

/**
 * Reads a manifest's structure: an index (its child manifests) or an image (config and
 * layers). Schema 1 manifests are refused: they cannot be moved without rewriting them.
 */
export function parseManifest(bytes: Uint8Array, mediaTypeHint: string, what: string): ParsedManifest {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('not an object');
  } catch {
    throw new RegauthError('ERR_MANIFEST_INVALID', `${what} is not a JSON object`);
  }
  const mediaType =
    typeof body.mediaType === 'string' && body.mediaType !== '' ? body.mediaType : mediaTypeHint;
  if (
    body.schemaVersion === 1 ||
    mediaType === DOCKER_MANIFEST_V1 ||
    mediaType === DOCKER_MANIFEST_V1_SIGNED
  ) {
    throw new RegauthError(
      'ERR_UNSUPPORTED',
      `${what} is a schema 1 manifest, which regauth reads but does not move`,
    );
  }
  if (isIndexMediaType(mediaType) || (Array.isArray(body.manifests) && body.config === undefined)) {
    if (!Array.isArray(body.manifests))
      throw new RegauthError('ERR_MANIFEST_INVALID', `${what}: an index without manifests`);
    return {
      kind: 'index',
      mediaType,
      manifests: body.manifests.map((m, i) => descriptor(m, `${what} manifests[${i}]`)),
    };
  }
  if (!Array.isArray(body.layers) && body.layers !== undefined) {
    throw new RegauthError('ERR_MANIFEST_INVALID', `${what}: layers is not a list`);
  }
  const layers = ((body.layers as unknown[] | undefined) ?? []).map((l, i) =>
    descriptor(l, `${what} layers[${i}]`),
  );
  const parsed = {
    kind: 'image' as const,
    mediaType,
    config: descriptor(body.config, `${what} config`),
    layers,
  };
  return body.subject === undefined
    ? parsed
    : { ...parsed, subject: descriptor(body.subject, `${what} subject`) };
}
