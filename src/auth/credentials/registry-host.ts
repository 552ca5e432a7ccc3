/** The name regauth uses for Docker Hub, whatever host name the user or a config file spells. */
export const DOCKER_HUB_REGISTRY = 'docker.io';

/**
 * The key docker writes for Docker Hub in config.json `auths` and hands to credential helpers
 * as the server URL (docker's `IndexServer`), kept for compatibility with docker login.
 */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

/** Host names that all mean Docker Hub (containers/image `normalizeRegistry` and docker). */
const DOCKER_HUB_HOSTS: ReadonlySet<string> = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
]);

/**
 * The registry host a config key or a user-given address names, like docker's
 * `ConvertToHostname`: `https://ghcr.io/` → `ghcr.io`, `http://host:5000/v1/` → `host:5000`,
 * `host:5000` → `host:5000`. Docker Hub's names all become `docker.io`. Host names are compared
 * case-insensitively (DNS), so the result is lower-cased.
 *
 * A key with a path but no scheme (`quay.io/org`) is a podman/containers-image namespace entry
 * that only applies to repositories below it; it does not name a whole registry, so this
 * returns `undefined` for it (containers/image `normalizeAuthFileKey` only strips paths after
 * a scheme, for the same reason).
 */
export function registryHost(keyOrAddress: string): string | undefined {
  let rest = keyOrAddress.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(rest);
  if (scheme) {
    rest = rest.slice(scheme[0].length);
    // Docker's url.Parse drops a query or fragment and any `user@` part with the path.
    const end = rest.search(/[/?#]/);
    if (end !== -1) rest = rest.slice(0, end);
    const at = rest.lastIndexOf('@');
    if (at !== -1) rest = rest.slice(at + 1);
  } else if (rest.includes('/')) {
    return undefined;
  }
  if (rest === '') return undefined;
  const host = rest.toLowerCase();
  return DOCKER_HUB_HOSTS.has(host) ? DOCKER_HUB_REGISTRY : host;
}

/** The registry as the credential sources compare it: lower case, Docker Hub as `docker.io`. */
export function canonicalRegistry(registry: string): string {
  return registryHost(registry) ?? registry.toLowerCase();
}

/**
 * The key `regauth login` writes into `auths` and the server URL it hands to credential helpers:
 * docker's `https://index.docker.io/v1/` for Docker Hub (so docker itself finds the entry), the
 * bare host for every other registry (what docker login writes since 1.11).
 */
export function configKeyFor(registry: string): string {
  const host = canonicalRegistry(registry);
  return host === DOCKER_HUB_REGISTRY ? DOCKER_HUB_CONFIG_KEY : host;
}
