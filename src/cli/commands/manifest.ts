import { getPlatformManifest } from '../../image/get-image-config.js';
import { parseReference } from '../../reference/parse-reference.js';
import { parsePlatform } from '../../registry/select-platform.js';
import { type ClientFlags, clientContext } from '../client-context.js';
import { warnRateLimit } from '../warn-rate-limit.js';

export async function manifestCommand(
  ref: string,
  flags: ClientFlags & { platform?: string },
): Promise<void> {
  const reference = parseReference(ref);
  const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
  const { clients } = await clientContext(flags, reference.registry);
  const client = clients.forRegistry(reference.registry);
  const target = reference.digest ?? reference.tag ?? 'latest';
  const manifest =
    platform === undefined
      ? await client.getManifest(reference.repository, target)
      : await getPlatformManifest(client, reference.repository, target, platform);
  warnRateLimit(reference.registry, manifest.rateLimit);
  // The bytes exactly as served: their digest is the image's identity.
  process.stdout.write(manifest.bytes);
}
