import { type Acl, anonymousWriteRules, compileAcl } from './acl.js';
import type { Authenticator } from './authenticator.js';
import { type AuthnList, createAuthnList } from './authn-list.js';
import { type AuthorizerChain, createConfiguredAuthorizer } from './authorizer-chain.js';
import { createClientAddressResolver } from './client-address.js';
import type { PasswordGuard } from './password-guard.js';
import { createRefreshLookup } from './refresh-token-authenticator.js';
import type { ServerLogEntry } from './server-log-entry.js';
import type { SigningMaterial } from './signing-key.js';
import { type ConfiguredSigningKey, loadSigningKeys } from './signing-keys.js';
import type { CheckedHandlerConfig } from './token-handler-config.js';
import { TokenIssuer } from './token-issuer.js';
import {
  instrumentAuthenticators,
  instrumentGuard,
  instrumentIssuer,
  type TokenMetrics,
} from './token-metrics.js';
import { TokenReuse } from './token-reuse.js';
import { createTokenService, type TokenRequest, type TokenResponse } from './token-service.js';

/** Days before a signing certificate's end from which every start-up and reload warns. */
export const CERT_WARNING_DAYS = 30;

/**
 * Everything a token handler derives from its config: keys and issuer, the `authn:` list, the
 * ACL, the token service, the reuse table, the trusted proxies and paths. A config reload builds
 * a whole new one before the running one is touched and swaps the reference: a request takes
 * the generation current when it arrives and uses it to its end, never half of each.
 */
export interface HandlerGeneration {
  readonly config: CheckedHandlerConfig;
  readonly authn: AuthnList;
  /** The ACL, then the configured authorizers (ext_authz). */
  readonly authorizer: AuthorizerChain;
  /** The authenticators in use now (instrumented when metrics are on). */
  readonly authenticators: () => readonly Authenticator[];
  readonly service: (req: TokenRequest) => Promise<TokenResponse>;
  /** Tokens issued moments ago, handed out again; a new generation starts empty. */
  readonly reuse: TokenReuse;
  readonly clientAddress: (peer: string, forwardedFor: string | undefined) => string;
  readonly tokenPath: string;
  readonly healthPath: string;
}

/** What every generation shares: the lock-out tables outlive a reload. */
export interface GenerationContext {
  readonly guard: PasswordGuard;
  readonly log: (entry: ServerLogEntry) => void;
  readonly now: () => number;
  readonly metrics?: TokenMetrics;
  /** An account's revocation epoch in ms (RevocationStore.revokedBefore). Left out: none. */
  readonly revokedBefore?: (account: string) => number | undefined;
}

/**
 * Builds a generation from a checked config: reads the keys and certificates, compiles the ACL,
 * then opens the authenticators (last, so a bad key or rule opens no directory connection).
 * Throws, with nothing left open, when any of it fails.
 */
export async function buildHandlerGeneration(
  config: CheckedHandlerConfig,
  context: GenerationContext,
): Promise<HandlerGeneration> {
  const { guard, log, now, metrics, revokedBefore } = context;
  const keys = await loadSigningKeys(config.token.keys, new Date(now()));
  keys.forEach((key, i) => {
    if (key.notAfter.getTime() - now() < CERT_WARNING_DAYS * 86_400_000) {
      const certificate = `${(config.token.keys[i] as ConfiguredSigningKey).path}.certificate`;
      log({
        msg: 'certificate expires soon',
        level: 'warn',
        notAfter: key.notAfter.toISOString(),
        certificate,
      });
    }
  });
  const acl: Acl = compileAcl(config.acl);
  for (const rule of anonymousWriteRules(config.acl)) {
    log({ msg: 'acl lets anonymous users write', level: 'warn', rule: rule.index, actions: rule.actions });
  }
  const authorizer = createConfiguredAuthorizer(
    acl,
    config.authorizers,
    metrics === undefined ? undefined : (...args) => metrics.observeAuthorization(...args),
  );
  const clientAddress = createClientAddressResolver(config.trustedProxies);
  // The `authn:` list, or the `users` entries as a one-item list; then the caller's own.
  const authn = await createAuthnList(
    config.authn ?? [
      'htpasswd' in config.users ? { htpasswd: config.users.htpasswd } : { entries: config.users.entries },
    ],
    config.authenticators,
    log,
  );
  const authenticators =
    metrics === undefined ? authn.current : instrumentAuthenticators(authn.current, metrics);
  // This generation's list for every step of a request, whichever generation is current by then.
  const ownGuard = {
    authenticate: (user: string, password: string, address: string) =>
      guard.authenticate(user, password, address, authenticators()),
    accountLabel: (user: string) => guard.accountLabel(user, authenticators()),
    fingerprint: (user: string) => guard.fingerprint(user, authenticators()),
  };
  // Never longer than a tenth of the token's life: clients still get most of it.
  const reuse = new TokenReuse(Math.min(config.token.reuse, Math.floor(config.token.expiration / 10)), now);
  const issuer = new TokenIssuer({
    signing: keys[0] as SigningMaterial,
    previous: keys.slice(1),
    issuer: config.token.issuer,
    expiration: config.token.expiration,
    refreshExpiration: config.token.refreshExpiration,
    now,
    ...(revokedBefore === undefined ? {} : { revokedBefore }),
  });
  const service = createTokenService({
    service: config.token.service,
    maxScopes: config.limits.maxScopes,
    authorizer: () => authorizer,
    guard: metrics === undefined ? ownGuard : instrumentGuard(ownGuard, metrics),
    lookup: createRefreshLookup(authenticators),
    reuse,
    ...(revokedBefore === undefined ? {} : { revokedBefore }),
    ...(metrics === undefined ? {} : { onRevoked: (what) => metrics.observeRevocationRefusal(what) }),
    issuer: metrics === undefined ? issuer : instrumentIssuer(issuer, metrics),
    log,
  });
  return {
    config,
    authn,
    authorizer,
    authenticators: authn.current,
    service,
    reuse,
    clientAddress,
    tokenPath: `${config.basePath}/token`,
    healthPath: `${config.basePath}/healthz`,
  };
}

/** The PasswordGuard limits a config sets (PasswordGuard.setLimits, and its constructor). */
export function guardLimits(config: CheckedHandlerConfig) {
  return {
    cacheSeconds: config.users.cacheSeconds,
    loginFailures: config.limits.loginFailures,
    loginWindow: config.limits.loginWindow,
    backoffMaxSeconds: config.limits.loginBackoffMax,
    addressFailures: config.limits.addressFailures,
    passwordChecks: config.limits.passwordChecks,
    passwordQueue: config.limits.passwordQueue,
    checksPerAddress: config.limits.passwordChecksPerAddress,
  };
}
