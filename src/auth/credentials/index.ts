export { type CachedCredentialSource, cachedCredentialSource } from './cached-credential-source.js';
export { chainCredentials } from './chain-credentials.js';
export type { Credential, CredentialEnv, CredentialSource, FoundCredential } from './credential.js';
export { IDENTITY_TOKEN_USERNAME } from './credential.js';
export { DEFAULT_HELPER_TIMEOUT_MS } from './credential-helper.js';
export {
  type DefaultCredentialSourcesOptions,
  defaultCredentialSources,
  loginAuthFile,
} from './default-credential-sources.js';
export { type DockerConfigOptions, dockerConfig } from './docker-config.js';
export { dockerConfigPath } from './docker-config-path.js';
export { ENV_PASSWORD, ENV_USERNAME, envCredentials } from './env-credentials.js';
export { eraseCredential } from './erase-credential.js';
export { podmanAuthPath } from './podman-auth-path.js';
export { DOCKER_HUB_CONFIG_KEY, DOCKER_HUB_REGISTRY } from './registry-host.js';
export { type StaticCredentialsOptions, staticCredentials } from './static-credentials.js';
export { storeCredential } from './store-credential.js';
