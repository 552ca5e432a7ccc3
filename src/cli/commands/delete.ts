import { parseReference } from '../../reference/parse-reference.js';
import { type ClientFlags, clientContext } from '../client-context.js';

/** `regauth delete <ref>`: a tag is resolved to its digest first (the registry deletes by digest). */
export async function deleteCommand(ref: string, flags: ClientFlags): Promise<void> {
  const reference = parseReference(ref);
  const { clients } = await clientContext(flags, reference.registry);
  const client = clients.forRegistry(reference.registry);
  let digest = reference.digest;
  if (digest === undefined) {
    const tag = reference.tag ?? 'latest';
    digest =
      (await client.headManifest(reference.repository, tag)).digest ??
      (await client.getManifest(reference.repository, tag)).digest;
  }
  await client.deleteManifest(reference.repository, digest);
  process.stderr.write(`Deleted ${reference.registry}/${reference.repository}@${digest}\n`);
}
