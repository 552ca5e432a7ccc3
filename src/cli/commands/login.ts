import { homedir } from 'node:os';
import { loginAuthFile } from '../../auth/credentials/default-credential-sources.js';
import { eraseCredential } from '../../auth/credentials/erase-credential.js';
import { staticCredentials } from '../../auth/credentials/static-credentials.js';
import { storeCredential } from '../../auth/credentials/store-credential.js';
import { RegauthError } from '../../errors/regauth-error.js';
import { parseRegistry } from '../../reference/parse-reference.js';
import { registryBaseUrl } from '../../registry/registry-url.js';
import { type ClientFlags, clientContext, cliTokenStore, readStdinSecret } from '../client-context.js';
import { canPrompt, readTerminalLine } from '../read-terminal-line.js';

/** Where a registry's challenges may be kept: its origin over HTTPS, and over plain HTTP. */
function registryOrigins(registry: string): string[] {
  return [registryBaseUrl(registry).origin, registryBaseUrl(registry, true).origin];
}

export interface LoginFlags extends ClientFlags {
  /** `-p/--password`: accepted as docker accepts it, with its warning. */
  readonly password?: string;
}

/** docker login's words, so that people and scripts that know them recognise them. */
const PASSWORD_FLAG_WARNING = 'WARNING! Using --password via the CLI is insecure. Use --password-stdin.';

export async function loginCommand(registryArg: string, flags: LoginFlags): Promise<void> {
  const registry = parseRegistry(registryArg);
  const { username, password, from } = await loginSecret(registry, flags);
  // The same auth path as every other command (one realm check), with exactly this credential.
  const source = staticCredentials({ username, password, registry, source: from });
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
    authfileLabel: '--authfile',
  });
  const where = await storeCredential(
    registry,
    result.identityToken === undefined
      ? { username, password }
      : { username, identityToken: result.identityToken },
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
    authfileLabel: '--authfile',
  });
  const erased = await eraseCredential(registry, { path: file.path, label: file.label, env });
  const dropped = cliTokenStore().forgetRegistry(registry, registryOrigins(registry));
  process.stderr.write(
    erased
      ? `Removed login credentials for ${registry} from ${file.label} ${file.path}${dropped ? ` and ${dropped} cached token(s)` : ''}\n`
      : `Not logged in to ${registry} (nothing in ${file.label} ${file.path})\n`,
  );
}

/**
 * The user name and password to check, as docker login finds them: `-u` or a prompt, then
 * `--password-stdin`, `-p` (with docker's warning), REGAUTH_PASSWORD, or a prompt with echo
 * off. Prompts only when standard input is a terminal; elsewhere a missing piece is a usage
 * error that says how to pass it.
 */
async function loginSecret(
  registry: string,
  flags: LoginFlags,
): Promise<{ username: string; password: string; from: string }> {
  if (flags.password !== undefined && flags.passwordStdin) {
    throw new RegauthError(
      'ERR_USAGE',
      '--password and --password-stdin exclude each other; use --password-stdin',
    );
  }
  if (flags.password !== undefined) process.stderr.write(`${PASSWORD_FLAG_WARNING}\n`);
  const interactive = canPrompt();
  let username = flags.username;
  if (username === undefined) {
    // stdin holds the password: there is nothing left to read a user name from (docker says the same).
    if (flags.passwordStdin || !interactive) {
      throw new RegauthError('ERR_USAGE', `regauth login needs --username (-u) to log in to ${registry}`);
    }
    username = await readTerminalLine('Username: ', { echo: true });
  }
  if (flags.passwordStdin) {
    const password = await readStdinSecret();
    if (password === '')
      throw new RegauthError('ERR_USAGE', '--password-stdin: standard input held no password');
    return { username, password, from: 'regauth login --password-stdin' };
  }
  // An empty -p, like docker's, asks.
  // Named in a refusal, so that a person knows which password the token server turned down.
  let from = flags.password ? 'regauth login --password' : 'REGAUTH_PASSWORD';
  let password = flags.password || process.env.REGAUTH_PASSWORD || undefined;
  if (password === undefined) {
    if (!interactive) {
      throw new RegauthError(
        'ERR_USAGE',
        `regauth login needs a password for ${username}, and standard input is not a terminal to ask for it: ` +
          `pass it on stdin (printf '%s\\n' "$PASSWORD" | regauth login -u ${username} --password-stdin ${registry}), ` +
          'or set REGAUTH_PASSWORD',
      );
    }
    password = await readTerminalLine('Password: ', { echo: false });
    from = 'regauth login (the password typed at the prompt)';
  }
  return { username, password, from };
}
