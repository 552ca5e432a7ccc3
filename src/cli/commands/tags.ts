import { RegauthError } from '../../errors/regauth-error.js';
import { parseReference } from '../../reference/parse-reference.js';
import { type ClientFlags, clientContext } from '../client-context.js';
import { printNames } from '../print-names.js';

export async function tagsCommand(repo: string, flags: ClientFlags): Promise<void> {
  const reference = parseReference(repo, { defaultTag: false });
  if (reference.tag !== undefined || reference.digest !== undefined) {
    throw new RegauthError(
      'ERR_USAGE',
      `regauth tags takes a repository without a tag or digest, such as ${reference.registry}/${reference.repository}`,
    );
  }
  const { clients } = await clientContext(flags, reference.registry);
  await printNames(clients.forRegistry(reference.registry).tagPages(reference.repository));
}
