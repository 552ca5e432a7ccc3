import { RegauthError, type RegauthErrorCode } from '../../errors/regauth-error.js';
import { sanitizeServerText } from '../../errors/sanitize-server-text.js';
import { getPlatformManifest } from '../../image/get-image-config.js';
import { type ImageReference, parseReference } from '../../reference/parse-reference.js';
import type { RegistryClients } from '../../registry/create-registry-clients.js';
import { type Platform, parsePlatform } from '../../registry/select-platform.js';
import { type ClientFlags, clientContext } from '../client-context.js';
import { explainedMessage } from '../explain-error.js';

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

/**
 * `regauth digest ref…`: the digest of every reference that resolves, one per line in the order
 * given, on stdout; each one that does not gets a `ref<TAB>error` line on stderr, and the
 * command then fails (exit 1) after printing the others, so one bad name in a list loses no answer.
 */
export async function digestCommand(
  refs: readonly string[],
  flags: ClientFlags & { platform?: string },
): Promise<void> {
  const platform = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
  if (refs.length === 1) {
    const reference = parseReference(refs[0] as string);
    const { clients } = await clientContext(flags, reference.registry);
    process.stdout.write(`${await digestOf(clients, reference, platform)}\n`);
    return;
  }
  // A name that does not parse is one more line on stderr; the others are still answered.
  const references = refs.map((r): ImageReference | { error: unknown } => {
    try {
      return parseReference(r);
    } catch (error) {
      return { error };
    }
  });
  const { clients } = await clientContext(flags);
  const results: ({ digest: string } | { error: unknown })[] = new Array(references.length);
  let next = 0;
  const worker = async () => {
    while (next < references.length) {
      const i = next++;
      const reference = references[i] as ImageReference | { error: unknown };
      if ('error' in reference) {
        results[i] = reference;
        continue;
      }
      try {
        results[i] = { digest: await digestOf(clients, reference, platform) };
      } catch (error) {
        results[i] = { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(DIGEST_CONCURRENCY, references.length) }, worker));
  const digests = results.flatMap((r) => ('digest' in r ? [`${r.digest}\n`] : []));
  if (digests.length > 0) process.stdout.write(digests.join(''));
  const failed = results.flatMap((r, i) =>
    'error' in r ? [{ ref: refs[i] as string, error: r.error }] : [],
  );
  if (failed.length === 0) return;
  process.stderr.write(
    failed
      .map(({ ref, error }) => {
        const message = explainedMessage(error);
        return `${sanitizeServerText(ref, { singleLine: true })}\t${sanitizeServerText(message, { singleLine: true })}\n`;
      })
      .join(''),
  );
  const codes = new Set(
    failed.map(({ error }) => (error instanceof RegauthError ? error.code : 'ERR_REGISTRY')),
  );
  throw new RegauthError(
    codes.size === 1 ? ([...codes][0] as RegauthErrorCode) : 'ERR_REGISTRY',
    `${failed.length} of ${references.length} references did not resolve (listed above); the others are on stdout`,
  );
}
