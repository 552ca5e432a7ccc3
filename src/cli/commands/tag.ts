import { RegauthError } from '../../errors/regauth-error.js';
import { tagImage } from '../../image/tag-image.js';
import { parseReference, TAG_RE } from '../../reference/parse-reference.js';
import { type ClientFlags, clientContext } from '../client-context.js';

/**
 * A NEWTAG of `regauth tag`: a bare tag, or a whole reference to the source's repository (what
 * crane tag takes, plus the full form people paste). Anything else is a usage error.
 */
function newTag(text: string, registry: string, repository: string): string {
  if (TAG_RE.test(text)) return text;
  const name = `${registry}/${repository}`;
  if (text.includes('/') || text.includes(':')) {
    let target: ReturnType<typeof parseReference> | undefined;
    try {
      target = parseReference(text, { defaultTag: false });
    } catch {
      // Reported below, as a tag.
    }
    if (target !== undefined && target.tag !== undefined && target.digest === undefined) {
      if (target.registry === registry && target.repository === repository) return target.tag;
      throw new RegauthError(
        'ERR_USAGE',
        `regauth tag adds tags within ${name}; ${text} is another repository: copy the image there with regauth copy ${name}:… ${text}`,
      );
    }
  }
  throw new RegauthError(
    'ERR_USAGE',
    `${JSON.stringify(text)} is not a tag: a tag is up to 128 letters, digits, "_", "." or "-", not starting with "." or "-" (e.g. v1.2.3)`,
  );
}

/**
 * `regauth tag SRC NEWTAG...`: the source manifest's exact bytes put under each new tag of the
 * same repository; no blob moves and the digest stays. Prints `R/repo:tag@digest` per tag.
 */
export async function tagCommand(src: string, tags: readonly string[], flags: ClientFlags): Promise<void> {
  const source = parseReference(src);
  const targets = tags.map((t) => newTag(t, source.registry, source.repository));
  const { clients } = await clientContext(flags, source.registry);
  const client = clients.forRegistry(source.registry);
  const { digest } = await tagImage(
    client,
    source.repository,
    source.digest ?? source.tag ?? 'latest',
    targets,
  );
  const name = `${source.registry}/${source.repository}`;
  process.stdout.write(targets.map((t) => `${name}:${t}@${digest}\n`).join(''));
}
