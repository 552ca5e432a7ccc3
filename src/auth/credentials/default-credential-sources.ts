import { statSync } from 'node:fs';
import { RegauthError } from '../../errors/regauth-error.js';
import type { CredentialEnv, CredentialSource } from './credential.js';
import { dockerConfig } from './docker-config.js';
import { dockerConfigPath } from './docker-config-path.js';
import { envCredentials } from './env-credentials.js';
import { podmanAuthPath } from './podman-auth-path.js';
import { staticCredentials } from './static-credentials.js';

/** Where defaultCredentialSources looks, and the credentials a command was given. */
export interface DefaultCredentialSourcesOptions {
  /** Read for REGAUTH_USERNAME/REGAUTH_PASSWORD, REGISTRY_AUTH_FILE, DOCKER_CONFIG, XDG_RUNTIME_DIR; helpers run with it. */
  readonly env: CredentialEnv;
  /** The home folder docker's `~/.docker/config.json` is found under. */
  readonly homedir: string;
  /** `--username`; needs `password`. */
  readonly username?: string;
  /** `--password-stdin`; needs `username`. */
  readonly password?: string;
  /** How `username`/`password` are named in messages. Left out: DEFAULT_STATIC_SOURCE. */
  readonly credentialsLabel?: string;
  /** The registry `username`/`password` are for; leaving it out offers them to every registry. */
  readonly registry?: string;
  /** `--authfile FILE`; wins over REGISTRY_AUTH_FILE. */
  readonly authfile?: string;
  /** How `authfile` is named in messages. Left out: DEFAULT_AUTHFILE_LABEL. */
  readonly authfileLabel?: string;
  /** Leaving it out means DEFAULT_HELPER_TIMEOUT_MS. */
  readonly helperTimeoutMs?: number;
  /** For podman's `/run/containers/<uid>/auth.json`; leaving it out means `process.getuid()`. */
  readonly uid?: number;
}

/**
 * The sources regauth asks, in order — the first with a credential wins:
 * 1. `--username`/`--password-stdin`;
 * 2. REGAUTH_USERNAME/REGAUTH_PASSWORD;
 * 3. an explicit auth file: `--authfile`, else REGISTRY_AUTH_FILE;
 * 4. docker's config.json (`$DOCKER_CONFIG` or `~/.docker`);
 * 5. podman's auth.json.
 * An explicit auth file *replaces* 4 and 5, as skopeo/podman do (containers/image reads only
 * the user-specified file): a user who names a file expects exactly that file's logins, and a
 * CI job that points REGISTRY_AUTH_FILE at a scoped file must not pick up the machine's.
 * Docker before podman because regauth speaks docker's config first; podman itself reads its
 * own file first.
 *
 * An explicit auth file that does not exist is a usage error (ERR_USAGE) naming it, as in
 * skopeo (containers/common pkg/auth CheckAuthFile): a mistyped path must not quietly mean
 * "anonymous". Writers (loginAuthFile) create it instead.
 *
 * Compose as `cachedCredentialSource(chainCredentials(defaultCredentialSources(…)))`. Usage
 * errors (one flag or variable of a pair) are thrown here, before any request.
 */
/** Names an explicit auth file in messages when the caller does not (the CLI names its flag). */
export const DEFAULT_AUTHFILE_LABEL = 'the auth file given';

/**
 * The sources docker and podman users have, in the order skopeo asks them: the user name and password given, REGAUTH_USERNAME/REGAUTH_PASSWORD, the auth file given or REGISTRY_AUTH_FILE, then docker's config.json (with its credential helpers) and podman's auth.json. Wrap them in chainCredentials.
 */
export function defaultCredentialSources(options: DefaultCredentialSourcesOptions): CredentialSource[] {
  const { env, homedir } = options;
  const sources: CredentialSource[] = [];

  if (options.username !== undefined || options.password !== undefined) {
    if (options.username === undefined || options.password === undefined) {
      const missing = options.username === undefined ? 'username' : 'password';
      throw new RegauthError(
        'ERR_USAGE',
        missing === 'username'
          ? 'a password was given without a user name; give both'
          : 'a user name was given without a password; give both',
        { hint: { kind: 'credential-pair', missing } },
      );
    }
    sources.push(
      staticCredentials({
        username: options.username,
        password: options.password,
        ...(options.registry === undefined ? {} : { registry: options.registry }),
        ...(options.credentialsLabel === undefined ? {} : { source: options.credentialsLabel }),
      }),
    );
  }

  sources.push(envCredentials(env));

  const timeout = options.helperTimeoutMs === undefined ? {} : { helperTimeoutMs: options.helperTimeoutMs };
  const explicit = explicitAuthFile(options);
  if (explicit !== undefined) {
    checkAuthFileExists(explicit);
    sources.push(dockerConfig({ path: explicit.path, label: explicit.label, env, ...timeout }));
    return sources;
  }
  sources.push(dockerConfig({ path: dockerConfigPath({ env, homedir }), env, ...timeout }));
  sources.push(
    dockerConfig({
      path: podmanAuthPath({ env, homedir, ...(options.uid === undefined ? {} : { uid: options.uid }) }),
      label: 'podman auth file',
      env,
      ...timeout,
    }),
  );
  return sources;
}

/**
 * The file `regauth login`/`logout` write: the explicit auth file when there is one (as podman
 * login --authfile does), else docker's config.json, so docker sees the login too.
 */
export function loginAuthFile(
  options: Pick<DefaultCredentialSourcesOptions, 'env' | 'homedir' | 'authfile' | 'authfileLabel'>,
): {
  path: string;
  label: string;
} {
  return explicitAuthFile(options) ?? { path: dockerConfigPath(options), label: 'docker config' };
}

function explicitAuthFile(
  options: Pick<DefaultCredentialSourcesOptions, 'env' | 'authfile' | 'authfileLabel'>,
): { path: string; label: string } | undefined {
  if (options.authfile !== undefined && options.authfile !== '') {
    return { path: options.authfile, label: options.authfileLabel ?? DEFAULT_AUTHFILE_LABEL };
  }
  const fromEnv = options.env.REGISTRY_AUTH_FILE;
  if (fromEnv !== undefined && fromEnv !== '') return { path: fromEnv, label: 'REGISTRY_AUTH_FILE' };
  return undefined;
}

function checkAuthFileExists(file: { path: string; label: string }): void {
  let isFile: boolean;
  try {
    isFile = statSync(file.path).isFile();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') {
      throw new RegauthError(
        'ERR_INVALID_DOCKER_CONFIG',
        `cannot read ${file.label} ${file.path} (${code ?? 'unknown error'}); check that it is a file you can read`,
        { cause: error },
      );
    }
    throw new RegauthError(
      'ERR_USAGE',
      `${file.label} ${file.path} does not exist; check the path (logging in with this auth file creates it)`,
    );
  }
  if (!isFile) {
    throw new RegauthError(
      'ERR_USAGE',
      `${file.label} ${file.path} is not a file; name the credentials file itself (a config.json or auth.json)`,
    );
  }
}
