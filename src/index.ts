/**
 * regauth, the client library: references, challenges, tokens and their cache, every credential
 * source docker and podman users have, manifests, blobs, pull, push and copy. Start with
 * {@link createRegistry}. The token server is `regauth/server`.
 *
 * @module regauth
 */

export { createRegistry } from './api/create-registry.js';
export type { DockerArchiveTarget, OciLayoutTarget, PullTarget } from './api/image-targets.js';
export { dockerArchive, ociLayout } from './api/image-targets.js';
export type {
  BlobResult,
  CallOptions,
  ConfigOptions,
  ConfigResult,
  CopyOptions,
  DeleteOptions,
  DigestOptions,
  ListCallOptions,
  ManifestOptions,
  ManifestResult,
  PullOptions,
  PushOptions,
  ReferrersOptions,
  Registry,
  TransferOptions,
} from './api/registry.js';
export type { RegistryOptions, UserPassword } from './api/registry-options.js';
export type { MaybePromise, OnStoreError, StoreOperation } from './auth/call-store.js';
export type { ChallengeStore, LoopbackScheme } from './auth/challenge-cache.js';
export { checkRealm } from './auth/check-realm.js';
export type {
  AuthClient,
  AuthClientOptions,
  AuthRequest,
  AuthResponse,
  AuthSend,
  LoginResult,
  SentAs,
} from './auth/create-auth-client.js';
export { createAuthClient } from './auth/create-auth-client.js';
export type {
  CachedCredentialSource,
  Credential,
  CredentialEnv,
  CredentialSource,
  DefaultCredentialSourcesOptions,
  DockerConfigOptions,
  FoundCredential,
  StaticCredentialsOptions,
} from './auth/credentials/index.js';
export {
  cachedCredentialSource,
  chainCredentials,
  defaultCredentialSources,
  dockerConfig,
  envCredentials,
  eraseCredential,
  loginAuthFile,
  staticCredentials,
  storeCredential,
} from './auth/credentials/index.js';
export type { FetchTokenOptions } from './auth/fetch-token.js';
export { fetchToken } from './auth/fetch-token.js';
export type { FileTokenStoreOptions } from './auth/file-token-store.js';
export { defaultTokenStorePath, FileTokenStore } from './auth/file-token-store.js';
export type { MemoryTokenStoreOptions } from './auth/memory-token-store.js';
export { MemoryTokenStore } from './auth/memory-token-store.js';
export type { Challenge } from './auth/parse-challenge.js';
export {
  formatChallenge,
  MAX_CHALLENGE_HEADER_LENGTH,
  parseChallenges,
  resolveRealm,
} from './auth/parse-challenge.js';
export type {
  RedisCallClient,
  RedisSendCommandClient,
  RedisStoreClient,
  RedisTokenStoreOptions,
} from './auth/redis-token-store.js';
export { DEFAULT_REDIS_STORE_TIMEOUT_MS, RedisTokenStore } from './auth/redis-token-store.js';
export type { TokenCacheOptions, TokenForOptions, TokenKeyParts, TokenStore } from './auth/token-cache.js';
export { DEFAULT_TOKEN_CACHE_MARGIN_S, TokenCache } from './auth/token-cache.js';
export type { TokenInfo } from './auth/token-response.js';
export { parseTokenResponse } from './auth/token-response.js';
export type { DigestAlgorithm, ParsedDigest } from './digest/digest.js';
export { computeDigest, parseDigest, verifyDigest } from './digest/digest.js';
export type {
  RefusedAccess,
  RegauthErrorCode,
  RegauthErrorHint,
  RegauthErrorOptions,
  RegauthErrorRequest,
  RegistryErrorEntry,
} from './errors/regauth-error.js';
export { isRegauthError, RegauthError } from './errors/regauth-error.js';
export type { SanitizeOptions } from './errors/sanitize-server-text.js';
export { sanitizeServerText } from './errors/sanitize-server-text.js';
export type { DeletedImage } from './image/delete-image.js';
export { getImageConfig, getPlatformManifest } from './image/get-image-config.js';
export type { TaggedImage } from './image/tag-image.js';
export type { TransferEvent, TransferListener, TransferSummary } from './image/transfer-events.js';
export type { UntagResult } from './image/untag.js';
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
export type { RegistryClients, RegistryClientsOptions } from './registry/create-registry-clients.js';
export { createRegistryClients } from './registry/create-registry-clients.js';
export * as mediaTypes from './registry/media-types.js';
export type {
  AnyManifest,
  Descriptor,
  DescriptorPlatform,
  DockerImageManifest,
  DockerManifestList,
  DockerSchema1Manifest,
  ImageConfig,
  ImageIndex,
  ImageManifest,
  OciImageIndex,
  OciImageManifest,
} from './registry/oci-types.js';
export { isImageIndex, isImageManifest } from './registry/oci-types.js';
export type { RateLimit } from './registry/rate-limit.js';
export type {
  ListOptions,
  Manifest,
  ManifestHead,
  PutManifestResult,
  RegistryClientOptions,
  RequestOptions,
  UploadSession,
} from './registry/registry-client.js';
export {
  MAX_LIST_BYTES,
  MAX_LIST_ENTRIES,
  MAX_LIST_PAGES,
  RegistryClient,
} from './registry/registry-client.js';
export { registryBaseUrl } from './registry/registry-url.js';
export type { IndexEntry, Platform } from './registry/select-platform.js';
export { formatPlatform, hostPlatform, parsePlatform, selectPlatform } from './registry/select-platform.js';
export { formatScope } from './scope/format-scope.js';
export type { ResourceScope } from './scope/parse-scope.js';
export { parseScope, parseScopeList } from './scope/parse-scope.js';
export type { TransportOptions } from './transport/create-transport.js';
export { createTransport } from './transport/create-transport.js';
export type {
  HeaderValue,
  HttpRequest,
  HttpResponse,
  ReplayableBody,
  RequestBody,
  Send,
  Transport,
} from './transport/http-types.js';
export type { TraceEvent, Tracer } from './transport/trace.js';
