import { RegauthError } from '../../errors/regauth-error.js';
import { parseReference } from '../../reference/parse-reference.js';
import { type ClientFlags, clientContext } from '../client-context.js';

export async function tagsCommand(repo: string, flags: ClientFlags): Promise<void> {
  const reference = parseReference(repo, { defaultTag: false });
  if (reference.tag !== undefined || reference.digest !== undefined) {
    throw new RegauthError(
      'ERR_USAGE',
      `regauth tags takes a repository without a tag or digest, such as ${reference.registry}/${reference.repository}`,
    );
  }
  const { clients } = await clientContext(flags, reference.registry);
  const tags = await clients.forRegistry(reference.registry).listTags(reference.repository);
  if (tags.length > 0) process.stdout.write(`${tags.join('\n')}\n`);
}
