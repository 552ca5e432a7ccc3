/**
 * A credential for one registry, as a user's tools keep it. At most one of the three secrets is
 * meant to be used: `registryToken` goes to the registry as is, `identityToken` is exchanged at the
 * realm (OAuth2 `grant_type=refresh_token`), `password` is sent with `username` (Basic or the
 * OAuth2 password grant). Fields that are not known are left out, never set to `''`.
 */
export interface Credential {
  readonly username?: string;
  /** For Basic / OAuth2 password grant. */
  readonly password?: string;
  /** A refresh token: config `identitytoken`, or a helper answering Username `<token>`. */
  readonly identityToken?: string;
  /** A bearer token to send to the registry as is (config `registrytoken`). */
  readonly registryToken?: string;
}

/**
 * Where a credential was found, for --trace and messages, never containing the secret: e.g.
 * "docker config /root/.docker/config.json", "credential helper docker-credential-pass",
 * "REGAUTH_USERNAME/REGAUTH_PASSWORD".
 */
export interface FoundCredential {
  readonly credential: Credential;
  readonly source: string;
}

/**
 * Somewhere credentials are found: a config file, a credential helper, the environment, or values given. Sources chain with chainCredentials.
 */
export interface CredentialSource {
  /**
   * The credential for a normalized registry host (`127.0.0.1:5000`, `ghcr.io`, `docker.io`),
   * or `undefined` when this source has none. Throws a RegauthError when the source is broken
   * (an unreadable config file, a failing credential helper): a chain must not silently skip it.
   */
  find(registry: string): Promise<FoundCredential | undefined>;
}

/** Environment variables, as `process.env` holds them; injected so tests control them. */
export type CredentialEnv = Readonly<Record<string, string | undefined>>;

/**
 * The user name docker and credential helpers use to mark the secret as an identity (refresh)
 * token rather than a password (docker/cli credentials/native_store.go `tokenUsername`).
 */
export const IDENTITY_TOKEN_USERNAME = '<token>';

/**
 * A credential from a user name and its secret, as config files, helpers and flags hand them
 * over: the user name `<token>` means the secret is an identity token (see IDENTITY_TOKEN_USERNAME).
 * Empty strings are left out.
 */
export function credentialFromSecret(username: string, secret: string): Credential {
  if (username === IDENTITY_TOKEN_USERNAME) return secret === '' ? {} : { identityToken: secret };
  return {
    ...(username === '' ? {} : { username }),
    ...(secret === '' ? {} : { password: secret }),
  };
}

/** True when the credential holds something to authenticate with (not just a user name). */
export function hasSecret(credential: Credential): boolean {
  return (
    credential.password !== undefined ||
    credential.identityToken !== undefined ||
    credential.registryToken !== undefined
  );
}
