/**
 * regauth/server, the token server: distribution's token authentication (token.md) for the CNCF
 * registry, as a standalone server ({@link createTokenServer}, what `regauth serve` runs) or a
 * handler to mount in node:http, express, fastify or hono ({@link createTokenHandler}).
 *
 * @module regauth/server
 */
export type { Acl, AclDecision, AclResourceType, AclRuleConfig } from './acl.js';
export { compileAcl } from './acl.js';
export { createAclAuthorizer } from './acl-authorizer.js';
export type { AdminConfig } from './admin-config.js';
export type {
  AuthenticateOptions,
  Authentication,
  Authenticator,
  AuthorizationContext,
  Authorizer,
  Identity,
  PasswordCheckRequest,
} from './authenticator.js';
export type { AuthnConfig } from './authn-config.js';
export type { AuthenticatorsSource } from './authn-list.js';
export type {
  AuthorizationResult,
  AuthorizerChain,
  ChainDecision,
  ScopeAuthorizer,
  ScopeDecision,
} from './authorizer-chain.js';
export { createAuthorizerChain } from './authorizer-chain.js';
export type { TrustedProxy } from './client-address.js';
export type { ExtAuthConfig } from './ext-auth-authenticator.js';
export { createExtAuthAuthenticator, DEFAULT_EXT_AUTH_TIMEOUT_S } from './ext-auth-authenticator.js';
export type { ExtAuthzConfig } from './ext-authorizer.js';
export {
  createExtAuthorizer,
  createExtScopeAuthorizer,
  DEFAULT_EXT_AUTHZ_TIMEOUT_S,
} from './ext-authorizer.js';
export type { GenerateSigningKeyOptions, KeygenAlgorithm, SigningKeyPair } from './generate-signing-key.js';
export { generateSigningKey, writeSigningKey } from './generate-signing-key.js';
export type { HtpasswdEntry, PasswordCheck, UserStoreOptions } from './htpasswd.js';
export { parseHtpasswd, UserStore } from './htpasswd.js';
export { createHtpasswdAuthenticator } from './htpasswd-authenticator.js';
export type { LdapAuthenticatorConfig, LdapLabelSource, LdapLogEntry } from './ldap-authenticator.js';
export { createLdapAuthenticator } from './ldap-authenticator.js';
export { libtrustKeyId } from './libtrust-key-id.js';
export type { MetricsConfig } from './metrics-config.js';
export type { MetricsEndpointOptions } from './metrics-endpoint.js';
export { createMetricsEndpoint } from './metrics-endpoint.js';
export type { OidcAuthenticatorConfig } from './oidc-authenticator.js';
export { createOidcAuthenticator } from './oidc-authenticator.js';
export type { PasswordCheckQueueStats } from './password-check-queue.js';
export type { RedisRevocationStore, RedisRevocationStoreOptions } from './redis-revocation-store.js';
export { createRedisRevocationStore, REVOCATION_RESYNC_MS } from './redis-revocation-store.js';
export type {
  MemoryRevocationStoreOptions,
  Revocation,
  RevocationStore,
} from './revocation-store.js';
export { createMemoryRevocationStore, MAX_REVOCATIONS } from './revocation-store.js';
export type { TokenServerConfig } from './server-config.js';
export { loadServerConfig, parseServerConfig } from './server-config.js';
export type {
  SharedStore,
  StoreClient,
  StoreHealth,
  StoreObserver,
  StoreResult,
  StoreScript,
} from './shared-store.js';
export { createRedisStore, STORE_RETRY_MS } from './shared-store.js';
export type { SigningAlgorithm, SigningMaterial } from './signing-key.js';
export { loadSigningMaterial } from './signing-key.js';
export type { ConfiguredSigningKey, SigningKeySource } from './signing-keys.js';
export { certificateBundle, loadSigningKeys } from './signing-keys.js';
export type { CheckedStoreConfig, RedisStoreConfig } from './store-config.js';
export { DEFAULT_STORE_PREFIX, DEFAULT_STORE_TIMEOUT_S } from './store-config.js';
export type {
  FetchInfo,
  TokenHandler,
  TokenHandlerOptions,
  TokenHandlerStats,
} from './token-handler.js';
export { createTokenHandler } from './token-handler.js';
export type {
  PemSource,
  TokenHandlerConfig,
  TokenLimits,
  UsersSource,
  ValueSource,
} from './token-handler-config.js';
export type {
  AuthenticationResult,
  GrantResult,
  LockoutReason,
  RefusalReason,
  RevocationRefusal,
  TokenMetrics,
} from './token-metrics.js';
export { createTokenMetrics } from './token-metrics.js';
export type { ServerLogEntry, TokenServer, TokenServerOptions, TokenServerStats } from './token-server.js';
export { createTokenServer } from './token-server.js';
export type { TokenLogEntry } from './token-service.js';
