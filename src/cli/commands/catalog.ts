import { parseRegistry } from '../../reference/parse-reference.js';
import { type ClientFlags, clientContext } from '../client-context.js';

export async function catalogCommand(registryArg: string, flags: ClientFlags): Promise<void> {
  const registry = parseRegistry(registryArg);
  const { clients } = await clientContext(flags, registry);
  const repositories = await clients.forRegistry(registry).catalog();
  if (repositories.length > 0) process.stdout.write(`${repositories.join('\n')}\n`);
}
