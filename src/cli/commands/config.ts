import { getImageConfig } from '../../image/get-image-config.js';
import { parseReference } from '../../reference/parse-reference.js';
import { parsePlatform } from '../../registry/select-platform.js';
import { type ClientFlags, clientContext } from '../client-context.js';

export async function configCommand(ref: string, flags: ClientFlags & { platform?: string }): Promise<void> {
  const reference = parseReference(ref);
  const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
  const { clients } = await clientContext(flags, reference.registry);
  const config = await getImageConfig(
    clients.forRegistry(reference.registry),
    reference.repository,
    reference.digest ?? reference.tag ?? 'latest',
    platform,
  );
  process.stdout.write(config);
  if (config.at(-1) !== 0x0a) process.stdout.write('\n');
}
