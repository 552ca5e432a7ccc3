import { RegauthError } from '../../errors/regauth-error.js';
import type { Credential } from './credential.js';
import { credentialHelper } from './credential-helper.js';
import {
  DEFAULT_DOCKER_CONFIG_LABEL,
  type DockerConfigOptions,
  helperFor,
  helperOptions,
} from './docker-config.js';
import { AUTH_ENTRY_CREDENTIAL_FIELDS } from './read-docker-config.js';
import { canonicalRegistry, configKeyFor } from './registry-host.js';
import { authsOf, updateDockerConfig } from './update-docker-config.js';

/**
 * Saves a credential for `regauth login`, where docker would: the helper the file names for
 * the registry (`credHelpers[host]`, else `credsStore`) or, without one, the file's `auths`
 * under `https://index.docker.io/v1/` for Docker Hub and the bare host otherwise.
 *
 * Inline entries are written as docker's SaveToWriter writes them: `auth` is base64 of
 * `user:password`; with an identity token, docker login drops the password, so the entry is
 * `{"auth": base64("user:"), "identitytoken": …}` (no `auth` without a user name). When a
 * helper takes the secret, docker still writes an empty `auths[key]` entry (nativeStore.Store
 * saves the non-secret fields to the file); regauth does the same, which also removes any stale
 * inline secret for that key. Other fields of the entry and of the file are kept.
 *
 * Resolves to where the credential went, without the secret, e.g.
 * "credential helper docker-credential-pass" or "docker config /home/u/.docker/config.json".
 */
export async function storeCredential(
  registry: string,
  credential: Credential,
  options: DockerConfigOptions,
): Promise<string> {
  const host = canonicalRegistry(registry);
  const key = configKeyFor(host);
  checkStorable(credential, host);
  let destination = `${options.label ?? DEFAULT_DOCKER_CONFIG_LABEL} ${options.path}`;

  await updateDockerConfig(options.path, async (document, config) => {
    const auths = authsOf(document);
    const entry = withoutCredentialFields(auths[key]);
    const helperName = config === undefined ? undefined : helperFor(config, host);
    if (helperName !== undefined) {
      if (credential.registryToken !== undefined && credential.identityToken === undefined) {
        throw new RegauthError(
          'ERR_USAGE',
          `a registry token for ${host} cannot be kept in credential helper docker-credential-${helperName}: ` +
            'helpers store only a user name and a secret',
        );
      }
      const helper = credentialHelper(helperName, helperOptions(options));
      await helper.store(key, credential);
      destination = `credential helper ${helper.program}`;
      auths[key] = entry;
      return true;
    }
    auths[key] = { ...entry, ...encodeEntry(credential) };
    return true;
  });
  return destination;
}

function checkStorable(credential: Credential, host: string): void {
  const { username, password, identityToken, registryToken } = credential;
  if (
    identityToken === undefined &&
    registryToken === undefined &&
    (username === undefined || password === undefined)
  ) {
    throw new RegauthError(
      'ERR_USAGE',
      `nothing to store for ${host}: give a user name and password, an identity token or a registry token`,
    );
  }
  if (username?.includes(':')) {
    throw new RegauthError(
      'ERR_USAGE',
      `the user name for ${host} contains ":", which Basic authentication cannot carry; check the user name`,
    );
  }
}

function encodeEntry(credential: Credential): Record<string, string> {
  const { username = '', identityToken, registryToken } = credential;
  // docker login blanks the password when the registry hands out an identity token.
  const password = identityToken === undefined ? (credential.password ?? '') : '';
  const entry: Record<string, string> = {};
  if (username !== '' || password !== '') {
    entry.auth = Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
  }
  if (identityToken !== undefined) entry.identitytoken = identityToken;
  if (registryToken !== undefined) entry.registrytoken = registryToken;
  return entry;
}

/** An existing `auths` entry minus the fields regauth writes (keeps `email` and unknown fields). */
function withoutCredentialFields(entry: unknown): Record<string, unknown> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return {};
  const kept: Record<string, unknown> = { ...(entry as Record<string, unknown>) };
  for (const field of AUTH_ENTRY_CREDENTIAL_FIELDS) delete kept[field];
  return kept;
}
