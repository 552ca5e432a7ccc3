import { RegauthError } from '../../errors/regauth-error.js';
import { type CredentialSource, credentialFromSecret, IDENTITY_TOKEN_USERNAME } from './credential.js';
import { canonicalRegistry } from './registry-host.js';

/** A user name and password given in code, and the registry they are for. */
export interface StaticCredentialsOptions {
  /** The account, as the registry's token server knows it. */
  readonly username: string;
  /** The password or an access token used as one (GitHub, GitLab, Harbor robot accounts). */
  readonly password: string;
  /**
   * The registry these credentials are for. Leaving it out offers them to every registry asked,
   * which is what a single-registry command wants; a command that talks to two registries (a
   * copy) should name one, so one registry's password is never sent to the other.
   */
  readonly registry?: string;
  /** `FoundCredential.source`, named in messages. Leaving it out means DEFAULT_STATIC_SOURCE. */
  readonly source?: string;
}

/** Named in messages when the caller does not say where the user name and password came from (the CLI names its flags). */
export const DEFAULT_STATIC_SOURCE = 'the user name and password given';

/**
 * Credentials given explicitly (CLI `--username` with `--password-stdin`). Checked when created,
 * so a usage mistake stops the command before any request. The user name `<token>` makes the
 * password an identity token, as in config files.
 */
export function staticCredentials(options: StaticCredentialsOptions): CredentialSource {
  const source = options.source ?? DEFAULT_STATIC_SOURCE;
  checkUserPassword(options.username, options.password, source);
  const credential = credentialFromSecret(options.username, options.password);
  const only = options.registry === undefined ? undefined : canonicalRegistry(options.registry);
  return {
    async find(registry) {
      if (only !== undefined && canonicalRegistry(registry) !== only) return undefined;
      return { credential, source };
    },
  };
}

/** Rejects what Basic authentication cannot carry (RFC 7617: no ":" in the user-id). */
export function checkUserPassword(username: string, password: string, source: string): void {
  if (username === '') {
    throw new RegauthError('ERR_USAGE', `${source}: the user name is empty; give a user name`);
  }
  if (username !== IDENTITY_TOKEN_USERNAME && username.includes(':')) {
    throw new RegauthError(
      'ERR_USAGE',
      `${source}: the user name contains ":", which Basic authentication cannot carry; check the user name`,
    );
  }
  if (password === '') {
    throw new RegauthError('ERR_USAGE', `${source}: the password is empty; give a password`);
  }
}
