export type { Challenge } from './auth/parse-challenge.js';
export {
  formatChallenge,
  MAX_CHALLENGE_HEADER_LENGTH,
  parseChallenges,
  resolveRealm,
} from './auth/parse-challenge.js';
export type { RegauthErrorCode, RegauthErrorOptions } from './errors/regauth-error.js';
export { isRegauthError, RegauthError } from './errors/regauth-error.js';
export type { ImageReference, ParseReferenceOptions } from './reference/parse-reference.js';
export {
  DEFAULT_TAG,
  DOCKER_HUB_API_HOST,
  DOCKER_HUB_CONFIG_KEY,
  DOCKER_HUB_REGISTRY,
  familiarName,
  formatReference,
  parseReference,
  parseRegistry,
  registryApiHost,
  registryConfigKey,
} from './reference/parse-reference.js';
export { isValidRepositoryName } from './reference/repository-name.js';
export { formatScope } from './scope/format-scope.js';
export type { ResourceScope } from './scope/parse-scope.js';
export { parseScope, parseScopeList } from './scope/parse-scope.js';
