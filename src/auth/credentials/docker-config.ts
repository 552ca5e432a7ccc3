import type { CredentialEnv, CredentialSource, FoundCredential } from './credential.js';
import { credentialHelper } from './credential-helper.js';
import { type AuthEntry, type DockerConfigFile, readDockerConfig } from './read-docker-config.js';
import { canonicalRegistry, configKeyFor, registryHost } from './registry-host.js';

/** Which docker config.json (or podman auth.json) dockerConfig reads, and how its helpers run. */
export interface DockerConfigOptions {
  /** The config.json or auth.json to read (and, for storeCredential/eraseCredential, to write). */
  readonly path: string;
  /**
   * Names the file in `FoundCredential.source` as `${label} ${path}`. Leaving it out means
   * "docker config"; the chain uses "--authfile", "REGISTRY_AUTH_FILE" and "podman auth file".
   */
  readonly label?: string;
  /** The environment credential helpers run with (their PATH finds them). Defaults to `process.env`. */
  readonly env?: CredentialEnv;
  /** Leaving it out means DEFAULT_HELPER_TIMEOUT_MS. */
  readonly helperTimeoutMs?: number;
}

export const DEFAULT_DOCKER_CONFIG_LABEL = 'docker config';

/**
 * Credentials from a docker config.json, or a file in the same format (podman's auth.json,
 * `--authfile`). The file is read on each find() — so a login in another terminal is seen —
 * and helpers run only there, never when the source is created; wrap the source in
 * cachedCredentialSource to ask each helper at most once per registry.
 *
 * Docker's precedence: `credHelpers[host]`, else `credsStore`, else the inline `auths` entry.
 * Unlike docker, the inline entry is also tried when the helper has nothing for the host, so
 * a file written before a helper was configured keeps working.
 */
export function dockerConfig(options: DockerConfigOptions): CredentialSource {
  const label = options.label ?? DEFAULT_DOCKER_CONFIG_LABEL;
  return {
    async find(registry: string): Promise<FoundCredential | undefined> {
      const config = await readDockerConfig(options.path);
      if (config === undefined) return undefined;
      const host = canonicalRegistry(registry);

      const helperName = helperFor(config, host);
      if (helperName !== undefined) {
        const helper = credentialHelper(helperName, helperOptions(options));
        const credential = await helper.get(configKeyFor(host));
        if (credential !== undefined) return { credential, source: `credential helper ${helper.program}` };
      }

      const credential = authEntryFor(config, host)?.credential;
      return credential === undefined ? undefined : { credential, source: `${label} ${options.path}` };
    },
  };
}

/** The helper options that an options object carries, without undefined fields. */
export function helperOptions(options: DockerConfigOptions): { env?: CredentialEnv; timeoutMs?: number } {
  return {
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.helperTimeoutMs === undefined ? {} : { timeoutMs: options.helperTimeoutMs }),
  };
}

/**
 * The helper docker would use for a host (configfile.getConfiguredCredentialStore):
 * `credHelpers[host]`, else `credsStore`. A `credHelpers` entry of `""` means "no helper for
 * this host", which docker honours by skipping `credsStore` too.
 */
export function helperFor(config: DockerConfigFile, host: string): string | undefined {
  const key = bestKey([...config.credHelpers.keys()], host);
  if (key !== undefined) {
    const name = config.credHelpers.get(key);
    return name === '' ? undefined : name;
  }
  return config.credsStore;
}

/**
 * The `auths` entry for a host. Keys are compared by the host they name, exactly: an
 * `example.com` entry is not for `registry.example.com` nor `example.com:5000`. When several
 * keys name the host, the one regauth/docker login writes wins, then a bare host, then the
 * first in the file (old docker versions wrote `https://host/v1/`), as docker's fileStore.Get
 * prefers an exact key before normalizing the others.
 */
export function authEntryFor(config: DockerConfigFile, host: string): AuthEntry | undefined {
  const key = bestKey(
    config.auths.map((entry) => entry.key),
    host,
  );
  return key === undefined ? undefined : config.auths.find((entry) => entry.key === key);
}

function bestKey(keys: readonly string[], host: string): string | undefined {
  const preferred = configKeyFor(host);
  if (keys.includes(preferred)) return preferred;
  if (keys.includes(host)) return host;
  // registryHost gives no host for podman namespace keys (`quay.io/org`): they never name a whole registry.
  return keys.find((key) => registryHost(key) === host);
}
