import { getPlatformManifest } from '../../image/get-image-config.js';
import { type ImageReference, parseReference } from '../../reference/parse-reference.js';
import type { RegistryClients } from '../../registry/create-registry-clients.js';
import { type Platform, parsePlatform } from '../../registry/select-platform.js';
import { type ClientFlags, clientContext } from '../client-context.js';

/** References resolved at once: enough to fill a few connections, few enough to be polite. */
const DIGEST_CONCURRENCY = 8;

async function digestOf(
  clients: RegistryClients,
  reference: ImageReference,
  platform?: Platform,
): Promise<string> {
  const client = clients.forRegistry(reference.registry);
  const target = reference.digest ?? reference.tag ?? 'latest';
  if (platform !== undefined)
    return (await getPlatformManifest(client, reference.repository, target, platform)).digest;
  if (reference.digest !== undefined) return reference.digest;
  const head = await client.headManifest(reference.repository, target);
  // Some registries leave Docker-Content-Digest out of HEAD answers: then hash the GET.
  return head.digest ?? (await client.getManifest(reference.repository, target)).digest;
}

/** `regauth digest ref…`: one digest per line, in the order given. */
export async function digestCommand(
  refs: readonly string[],
  flags: ClientFlags & { platform?: string },
): Promise<void> {
  const references = refs.map((r) => parseReference(r));
  const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
  const { clients } = await clientContext(
    flags,
    references.length === 1 ? references[0]?.registry : undefined,
  );
  const results: string[] = new Array(references.length);
  let next = 0;
  const worker = async () => {
    while (next < references.length) {
      const i = next++;
      results[i] = await digestOf(clients, references[i] as ImageReference, platform);
    }
  };
  await Promise.all(Array.from({ length: Math.min(DIGEST_CONCURRENCY, references.length) }, worker));
  process.stdout.write(`${results.join('\n')}\n`);
}
