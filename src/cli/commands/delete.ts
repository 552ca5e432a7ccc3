import { RegauthError } from '../../errors/regauth-error.js';
import { sanitizeServerText } from '../../errors/sanitize-server-text.js';
import { resolveDigest } from '../../image/resolve-digest.js';
import { tagsPointingAt } from '../../image/tags-pointing-at.js';
import { parseReference } from '../../reference/parse-reference.js';
import { type ClientFlags, clientContext } from '../client-context.js';

export interface DeleteFlags extends ClientFlags {
  /** Delete the image even when tags other than the one named go with it. */
  readonly force?: boolean;
  /** Remove only the tag, as `regauth untag` does. */
  readonly tag?: boolean;
}

/** Other tags named in a refusal: enough to recognise them, not a screenful. */
const MAX_TAGS_NAMED = 10;

const show = (name: string) => sanitizeServerText(name, { singleLine: true });

function tagList(tags: readonly string[]): string {
  const named = tags.slice(0, MAX_TAGS_NAMED).map(show).join(', ');
  return tags.length > MAX_TAGS_NAMED ? `${named} and ${tags.length - MAX_TAGS_NAMED} more` : named;
}

/**
 * `regauth delete <ref>`. Registries delete manifests by digest, and every tag of that digest goes
 * with it; a tag is resolved first, and when other tags share its digest the delete is refused
 * (naming them) unless --force. A digest names the image itself: deleted as crane and regctl do,
 * with the tags that went with it listed. Prints exactly what was removed.
 */
export async function deleteCommand(ref: string, flags: DeleteFlags): Promise<void> {
  if (flags.tag) {
    const { untagCommand } = await import('./untag.js');
    await untagCommand(ref, flags);
    return;
  }
  const reference = parseReference(ref);
  const { clients } = await clientContext(flags, reference.registry);
  const client = clients.forRegistry(reference.registry);
  const name = `${reference.registry}/${reference.repository}`;
  const byTag = reference.digest === undefined ? (reference.tag ?? 'latest') : undefined;
  const digest = reference.digest ?? (await resolveDigest(client, reference.repository, byTag as string));
  let found: string[];
  try {
    found = await tagsPointingAt(client, reference.repository, digest, {
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
  if (byTag !== undefined && others.length > 0 && !flags.force) {
    throw new RegauthError(
      'ERR_REFUSED',
      `${name}:${byTag} is ${digest}, which is also tagged ${tagList(others)}; the registry deletes by digest, ` +
        `so those tags would go too. Nothing was deleted. To remove only this tag: regauth untag ${name}:${byTag}; ` +
        `to delete the image with all ${tags.length} tags: add --force`,
    );
  }
  await client.deleteManifest(reference.repository, digest);
  const lines = [...tags.map((t) => `Untagged: ${name}:${show(t)}`), `Deleted: ${name}@${digest}`];
  process.stdout.write(`${lines.join('\n')}\n`);
}
