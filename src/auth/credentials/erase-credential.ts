import { credentialHelper } from './credential-helper.js';
import { type DockerConfigOptions, helperFor, helperOptions } from './docker-config.js';
import { canonicalRegistry, configKeyFor, registryHost } from './registry-host.js';
import { authsOf, updateDockerConfig } from './update-docker-config.js';

/**
 * Removes a registry's credential for `regauth logout`: from the helper the file names for the
 * registry (`erase` with the same server URL `storeCredential` used), and every `auths` entry
 * whose key names the host (`ghcr.io`, `https://ghcr.io`, `http://ghcr.io/v1/`…) — docker
 * logout likewise erases the host, `http://host` and `https://host` forms. Keys for other hosts
 * and every other field of the file are kept. A missing file is left missing.
 *
 * Resolves to true when something was removed, false when there was nothing to remove.
 */
export async function eraseCredential(registry: string, options: DockerConfigOptions): Promise<boolean> {
  const host = canonicalRegistry(registry);
  let erased = false;
  await updateDockerConfig(options.path, async (document, config) => {
    if (config === undefined) return false;
    const helperName = helperFor(config, host);
    if (helperName !== undefined) {
      erased = await credentialHelper(helperName, helperOptions(options)).erase(configKeyFor(host));
    }
    const auths = authsOf(document);
    const keys = Object.keys(auths).filter((key) => registryHost(key) === host);
    for (const key of keys) delete auths[key];
    if (keys.length > 0) erased = true;
    return keys.length > 0;
  });
  return erased;
}
