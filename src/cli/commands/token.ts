import { decodeJwt, decodeProtectedHeader } from 'jose';
import { RegauthError } from '../../errors/regauth-error.js';
import { type ImageReference, parseReference, parseRegistry } from '../../reference/parse-reference.js';
import { parseScope, type ResourceScope } from '../../scope/parse-scope.js';
import { type ClientFlags, clientContext } from '../client-context.js';

function parseTarget(target: string): { registry: string; reference?: ImageReference } {
  // A bare registry (`localhost:5000`, `docker.io`, `https://host/`) or an image reference.
  if (/^https?:\/\//.test(target) || (!target.includes('/') && /[.:]|^localhost$/.test(target))) {
    return { registry: parseRegistry(target) };
  }
  const reference = parseReference(target);
  return { registry: reference.registry, reference };
}

/**
 * `regauth token`: the seed's steps 1 and 2 — ask the registry, read its challenge, get a token
 * from the realm — and print the token, or with --decode its header and claims.
 */
export async function tokenCommand(
  target: string,
  flags: ClientFlags & { scope?: string[]; decode?: boolean },
): Promise<void> {
  const { registry, reference } = parseTarget(target);
  const scopes: ResourceScope[] = (flags.scope ?? []).map(parseScope);
  if (reference) scopes.unshift({ type: 'repository', name: reference.repository, actions: ['pull'] });
  const { clients } = await clientContext(flags, registry);
  const base = await clients.baseUrl(registry);
  const url = reference
    ? new URL(`/v2/${reference.repository}/manifests/${reference.digest ?? reference.tag ?? 'latest'}`, base)
    : new URL('/v2/', base);
  const token = await clients.auth.token({ method: 'GET', url, registry, scopes });
  if (!token) {
    throw new RegauthError(
      'ERR_UNSUPPORTED',
      `${registry} asked for no Bearer token (it is open, or uses Basic authentication only)`,
    );
  }
  if (!flags.decode) {
    process.stdout.write(`${token.token}\n`);
    return;
  }
  let decoded: unknown;
  try {
    decoded = { header: decodeProtectedHeader(token.token), claims: decodeJwt(token.token) };
  } catch {
    throw new RegauthError(
      'ERR_TOKEN_RESPONSE',
      `the token from ${registry}'s realm is not a JWT; print it without --decode`,
    );
  }
  process.stdout.write(`${JSON.stringify(decoded, null, 2)}\n`);
}
