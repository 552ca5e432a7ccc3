import { parseReference } from '../../reference/parse-reference.js';
import { OCI_INDEX } from '../../registry/media-types.js';
import { type ClientFlags, clientContext } from '../client-context.js';

/** `regauth referrers <ref>`: the image index of manifests whose subject is `ref`. */
export async function referrersCommand(
  ref: string,
  flags: ClientFlags & { artifactType?: string },
): Promise<void> {
  const reference = parseReference(ref);
  const { clients } = await clientContext(flags, reference.registry);
  const client = clients.forRegistry(reference.registry);
  const digest =
    reference.digest ??
    (await client.headManifest(reference.repository, reference.tag ?? 'latest')).digest ??
    (await client.getManifest(reference.repository, reference.tag ?? 'latest')).digest;
  const { manifests } = await client.referrers(reference.repository, digest, flags.artifactType);
  process.stdout.write(`${JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }, null, 2)}\n`);
}
