import { sanitizeServerText } from '../../errors/sanitize-server-text.js';
import { deleteImage } from '../../image/delete-image.js';
import { parseReference } from '../../reference/parse-reference.js';
import { type ClientFlags, clientContext } from '../client-context.js';

export interface DeleteFlags extends ClientFlags {
  /** Delete the image even when tags other than the one named go with it. */
  readonly force?: boolean;
  /** Remove only the tag, as `regauth untag` does. */
  readonly tag?: boolean;
}

const show = (name: string) => sanitizeServerText(name, { singleLine: true });

/**
 * `regauth delete <ref>`: deleteImage (a tag whose image other tags share is refused unless
 * --force), then prints exactly what was removed.
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
  const { digest, tags } = await deleteImage(client, reference.repository, reference, {
    ...(flags.force === undefined ? {} : { force: flags.force }),
  });
  const lines = [...tags.map((t) => `Untagged: ${name}:${show(t)}`), `Deleted: ${name}@${digest}`];
  process.stdout.write(`${lines.join('\n')}\n`);
}
