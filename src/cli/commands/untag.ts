import { RegauthError } from '../../errors/regauth-error.js';
import { untag } from '../../image/untag.js';
import { parseReference } from '../../reference/parse-reference.js';
import { type ClientFlags, clientContext } from '../client-context.js';

/** `regauth untag R/repo:tag` (and `delete --tag`): removes the tag only; its image and other tags stay. */
export async function untagCommand(ref: string, flags: ClientFlags): Promise<void> {
  const reference = parseReference(ref, { defaultTag: false });
  if (reference.tag === undefined || reference.digest !== undefined) {
    throw new RegauthError(
      'ERR_USAGE',
      `regauth untag takes a tag, such as ${reference.registry}/${reference.repository}:v1; ` +
        'to delete an image by digest use regauth delete',
    );
  }
  const { clients } = await clientContext(flags, reference.registry);
  const client = clients.forRegistry(reference.registry);
  const { digest } = await untag(client, reference.repository, reference.tag);
  const name = `${reference.registry}/${reference.repository}`;
  process.stdout.write(`Untagged: ${name}:${reference.tag} (it named ${digest}, which stays)\n`);
}
