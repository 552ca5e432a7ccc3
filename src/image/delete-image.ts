import { RegauthError } from '../errors/regauth-error.js';
import { sanitizeServerText } from '../errors/sanitize-server-text.js';
import type { RegistryClient } from '../registry/registry-client.js';
import { resolveDigest } from './resolve-digest.js';
import { tagsPointingAt } from './tags-pointing-at.js';

/** Other tags named in a refusal's message: enough to recognise them, not a screenful (all are in its hint). */
const MAX_TAGS_NAMED = 10;

export interface DeleteImageOptions {
  /** Delete the image even when tags other than the one named go with it. Left out: false. */
  readonly force?: boolean;
}

export interface DeletedImage {
  /** The manifest deleted. */
  readonly digest: string;
  /** Every tag that named it and went with it, sorted. */
  readonly tags: readonly string[];
}

const show = (name: string) => sanitizeServerText(name, { singleLine: true });

function tagList(tags: readonly string[]): string {
  const named = tags.slice(0, MAX_TAGS_NAMED).map(show).join(', ');
  return tags.length > MAX_TAGS_NAMED ? `${named} and ${tags.length - MAX_TAGS_NAMED} more` : named;
}

/**
 * Deletes an image by its digest. Registries delete manifests by digest, and every tag of that
 * digest goes with it (distribution: registry/handlers/manifests.go DeleteManifest): a tag is
 * resolved first, and when other tags share its digest the delete is refused with ERR_REFUSED,
 * naming them (its hint lists them all), unless `force`. A digest names the image itself: deleted
 * as crane and regctl do. Returns what was removed.
 */
export async function deleteImage(
  client: RegistryClient,
  repository: string,
  reference: { readonly tag?: string; readonly digest?: string },
  options: DeleteImageOptions = {},
): Promise<DeletedImage> {
  const name = `${client.registry}/${repository}`;
  const byTag = reference.digest === undefined ? (reference.tag ?? 'latest') : undefined;
  const digest = reference.digest ?? (await resolveDigest(client, repository, byTag as string));
  let found: string[];
  try {
    found = await tagsPointingAt(client, repository, digest, {
      ...(byTag === undefined ? {} : { known: { [byTag]: digest } }),
    });
  } catch (err) {
    if (!(err instanceof RegauthError)) throw err;
    throw new RegauthError(
      err.code,
      `could not find out which tags of ${name} point at ${digest}, so nothing was deleted: ${err.message}`,
      {
        cause: err,
        registryErrors: err.registryErrors,
        ...(err.status === undefined ? {} : { status: err.status }),
        ...(err.access === undefined ? {} : { access: err.access }),
        ...(err.request === undefined ? {} : { request: err.request }),
        ...(err.hint === undefined ? {} : { hint: err.hint }),
      },
    );
  }
  const tags = (byTag === undefined || found.includes(byTag) ? found : [byTag, ...found]).sort();
  const others = tags.filter((t) => t !== byTag);
  if (byTag !== undefined && others.length > 0 && !options.force) {
    throw new RegauthError(
      'ERR_REFUSED',
      `${name}:${byTag} is ${digest}, which is also tagged ${tagList(others)}; the registry deletes by digest, ` +
        'so those tags would go too. Nothing was deleted',
      { hint: { kind: 'shared-digest', name, tag: byTag, digest, otherTags: others } },
    );
  }
  await client.deleteManifest(repository, digest);
  return { digest, tags };
}
