import { RegauthError } from '../../errors/regauth-error.js';
import { untag } from '../../image/untag.js';
import { parseReference } from '../../reference/parse-reference.js';
import { type ClientFlags, clientContext } from '../client-context.js';
import { Interrupted } from '../interrupted.js';

/**
 * Runs `work` with Ctrl-C and SIGTERM held until it settles, and says which (if any) came.
 * Untagging by placeholder takes two requests: stopping between them would leave the tag naming
 * the placeholder instead of the image.
 */
async function withSignalsHeld<T>(
  work: () => Promise<T>,
): Promise<{ value: T; caught: 'SIGINT' | 'SIGTERM' | undefined }> {
  let caught: 'SIGINT' | 'SIGTERM' | undefined;
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handler = () => {
      if (caught === undefined) process.stderr.write('regauth: finishing the untag, then stopping\n');
      caught ??= signal;
    };
    process.on(signal, handler);
    return { signal, handler };
  });
  try {
    return { value: await work(), caught };
  } finally {
    for (const { signal, handler } of handlers) process.off(signal, handler);
  }
}

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
  const tag = reference.tag;
  const { value, caught } = await withSignalsHeld(() => untag(client, reference.repository, tag));
  const name = `${reference.registry}/${reference.repository}`;
  process.stdout.write(`Untagged: ${name}:${tag} (it named ${value.digest}, which stays)\n`);
  // A Ctrl-C that came meanwhile ends the command as it asked, once the work is whole.
  if (caught !== undefined) throw new Interrupted(caught);
}
