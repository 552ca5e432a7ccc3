import { homedir } from 'node:os';
import { loginAuthFile } from '../../auth/credentials/default-credential-sources.js';
import { eraseCredential } from '../../auth/credentials/erase-credential.js';
import { staticCredentials } from '../../auth/credentials/static-credentials.js';
import { storeCredential } from '../../auth/credentials/store-credential.js';
import { RegauthError } from '../../errors/regauth-error.js';
import { parseRegistry } from '../../reference/parse-reference.js';
import { registryBaseUrl } from '../../registry/registry-url.js';
import { type ClientFlags, clientContext, cliTokenStore, readStdinSecret } from '../client-context.js';

/** Where a registry's challenges may be kept: its origin over HTTPS, and over plain HTTP. */
function registryOrigins(registry: string): string[] {
  return [registryBaseUrl(registry).origin, registryBaseUrl(registry, true).origin];
}

export async function loginCommand(registryArg: string, flags: ClientFlags): Promise<void> {
  const registry = parseRegistry(registryArg);
  if (flags.username === undefined)
    throw new RegauthError('ERR_USAGE', 'regauth login needs --username (-u)');
  const password = flags.passwordStdin ? await readStdinSecret() : process.env.REGAUTH_PASSWORD;
  if (password === undefined || password === '') {
    throw new RegauthError(
      'ERR_USAGE',
      'pass the password on stdin with --password-stdin (or in REGAUTH_PASSWORD)',
    );
  }
  // The same auth path as every other command (one realm check), with exactly this credential.
  const source = staticCredentials({ username: flags.username, password, registry });
  const { clients, store } = await clientContext(flags, registry, source);
  const result = await clients.auth.login({
    method: 'GET',
    url: new URL('/v2/', await clients.baseUrl(registry)),
    registry,
    scopes: [],
  });
  const env = process.env;
  const file = loginAuthFile({
    env,
    homedir: env.HOME || homedir(),
    ...(flags.authfile ? { authfile: flags.authfile } : {}),
  });
  const where = await storeCredential(
    registry,
    result.identityToken === undefined
      ? { username: flags.username, password }
      : { username: flags.username, identityToken: result.identityToken },
    { path: file.path, label: file.label, env },
  );
  // Tokens cached for an earlier login of this registry belong to another identity or password.
  store?.forgetRegistry(registry);
  process.stderr.write(`Login Succeeded (${registry}; saved in ${where})\n`);
}

export async function logoutCommand(registryArg: string, flags: ClientFlags): Promise<void> {
  const registry = parseRegistry(registryArg);
  const env = process.env;
  const file = loginAuthFile({
    env,
    homedir: env.HOME || homedir(),
    ...(flags.authfile ? { authfile: flags.authfile } : {}),
  });
  const erased = await eraseCredential(registry, { path: file.path, label: file.label, env });
  const dropped = cliTokenStore().forgetRegistry(registry, registryOrigins(registry));
  process.stderr.write(
    erased
      ? `Removed login credentials for ${registry} from ${file.label} ${file.path}${dropped ? ` and ${dropped} cached token(s)` : ''}\n`
      : `Not logged in to ${registry} (nothing in ${file.label} ${file.path})\n`,
  );
}
