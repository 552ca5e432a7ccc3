import { parseRegistry } from '../../reference/parse-reference.js';
import { type ClientFlags, clientContext } from '../client-context.js';
import { printNames } from '../print-names.js';

export async function catalogCommand(registryArg: string, flags: ClientFlags): Promise<void> {
  const registry = parseRegistry(registryArg);
  const { clients } = await clientContext(flags, registry);
  await printNames(clients.forRegistry(registry).catalogPages());
}
