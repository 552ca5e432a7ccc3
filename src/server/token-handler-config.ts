import { readFile } from 'node:fs/promises';
import { withFileSystemErrors } from '../errors/file-system-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { AclRuleConfig } from './acl.js';
import type { AuthnConfig } from './authn-config.js';
import type { AuthenticatorsSource, AuthnSource } from './authn-list.js';
import type { ScopeAuthorizer } from './authorizer-chain.js';
import { parseTrustedProxy, type TrustedProxy } from './client-address.js';
import { createExtAuthAuthenticator } from './ext-auth-authenticator.js';
import { createExtScopeAuthorizer } from './ext-authorizer.js';
import { createLdapAuthenticator } from './ldap-authenticator.js';
import { createOidcAuthenticator } from './oidc-authenticator.js';
import {
  DEFAULT_ADDRESS_FAILURES,
  DEFAULT_CONNECTIONS_PER_ADDRESS,
  DEFAULT_LOGIN_BACKOFF_MAX_S,
  DEFAULT_LOGIN_FAILURES,
  DEFAULT_LOGIN_WINDOW_S,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_SCOPES,
  DEFAULT_PASSWORD_CHECKS,
  DEFAULT_PASSWORD_CHECKS_PER_ADDRESS,
  DEFAULT_PASSWORD_QUEUE,
  DEFAULT_REFRESH_EXPIRATION_S,
  DEFAULT_TOKEN_EXPIRATION_S,
  DEFAULT_TOKEN_REUSE_S,
  DEFAULT_VERIFIED_CACHE_S,
  MIN_TOKEN_EXPIRATION_S,
  type TokenServerConfig,
} from './server-config.js';
import type { ConfiguredSigningKey, SigningKeySource } from './signing-keys.js';
import { type CheckedStoreConfig, checkStoreConfig, type RedisStoreConfig } from './store-config.js';

/** A value given directly, or a function that fetches it (from a secret store, say) at start-up. */
export type ValueSource = string | (() => string | Promise<string>);

/**
 * A PEM document: `{ pem }` holds the text (or a function returning it), `{ file }` names a file.
 * The two are told apart by key, never by guessing whether a string looks like PEM.
 */
export type PemSource = { readonly pem: ValueSource } | { readonly file: string };

/**
 * Where users come from. `htpasswd`: a file (bcrypt entries, as `htpasswd -B` writes them);
 * `entries`: the same lines as text, or a function returning them (called again by `reloadUsers()`).
 * Left out: no users, so only anonymous rules of the ACL grant anything.
 */
export type UsersSource = ({ readonly htpasswd: string } | { readonly entries: ValueSource }) & {
  /** Seconds a verified login is remembered. Left out: DEFAULT_VERIFIED_CACHE_S. */
  readonly cacheSeconds?: number;
};

/** The request-level limits; every one left out takes the default `regauth serve` uses. */
export type TokenLimits = Partial<
  Omit<TokenServerConfig['limits'], 'maxConnections' | 'connectionsPerAddress'>
>;

/** The token endpoint's configuration for programmatic use (the YAML file maps onto it). */
export interface TokenHandlerConfig {
  /**
   * The path the endpoints live under, such as `/auth`: tokens at `/auth/token`, the health check
   * at `/auth/healthz`. Left out: the root (`/token`).
   */
  readonly basePath?: string;
  readonly token: {
    /** The `iss` claim; the registry's `auth.token.issuer` must be the same. */
    readonly issuer: string;
    /** The `aud` claim; the registry's `auth.token.service` must be the same. */
    readonly service: string;
    /** The signing key (PKCS#8 or SEC1/PKCS#1 PEM): shorthand for `keys: [{ key, certificate }]`. */
    readonly key?: PemSource;
    /** The certificate of that key, sent as `x5c`; the registry's `rootcertbundle` must hold it. */
    readonly certificate?: PemSource;
    /**
     * Several keys, for a rotation: the first signs, every one is checked at start-up, and the
     * registry's `rootcertbundle` holds all their certificates (see certificateBundle). Give
     * either this or `key` and `certificate`.
     */
    readonly keys?: readonly SigningKeySource[];
    /** Access token lifetime in seconds, at least 60. Left out: DEFAULT_TOKEN_EXPIRATION_S. */
    readonly expiration?: number;
    /** Refresh token lifetime in seconds. Left out: DEFAULT_REFRESH_EXPIRATION_S. */
    readonly refreshExpiration?: number;
    /** Seconds an issued token is handed out again for the same grant (0: never). Left out: DEFAULT_TOKEN_REUSE_S. */
    readonly reuse?: number;
  };
  readonly users?: UsersSource;
  /**
   * Your own authenticators (createHtpasswdAuthenticator, or any object implementing
   * Authenticator: a directory, an SSO, your application's user table), asked in order after
   * the `users` entries; the first that knows the user decides. Or a function returning them,
   * called at creation and again by `reloadUsers()` (authenticators it no longer returns are
   * closed). Every one of them runs behind the same lock-outs, address budgets, login cache and
   * bounded check queue as htpasswd.
   */
  readonly authenticators?: AuthenticatorsSource;
  readonly limits?: TokenLimits;
  /** Proxies (addresses or CIDR networks) whose `X-Forwarded-For` is believed. Left out: none. */
  readonly trustedProxies?: readonly (string | TrustedProxy)[];
  /** Rules in order, first match wins. Left out: nothing is granted to anyone. */
  readonly acl?: readonly AclRuleConfig[];
  /**
   * Asked in order, per resource, when no `acl` rule matched it (createExtScopeAuthorizer for
   * docker_auth's `ext_authz`); the first with an opinion decides, a denial included, as in
   * docker_auth. One that throws answers the request 503. Left out: only the ACL decides.
   */
  readonly authorizers?: readonly ScopeAuthorizer[];
  /**
   * Where failed-login counters live. `'memory'` (the default): in this process. A Redis URL
   * (`redis://host:6379/0`, `rediss://…` for TLS) or a RedisStoreConfig: in Redis, shared by
   * every handler or server that names the same Redis and prefix and the same `secret` (or,
   * without one, signs with the same first key: the hashing key is derived from it), so a lock-out counts every
   * replica's failures. When Redis is unreachable or slower than its timeout, logins go on with
   * the counters of this process, and `/healthz` says `degraded`. Needs the `ioredis` package.
   */
  readonly store?: 'memory' | string | RedisStoreConfig;
}

/** The config with every default filled in and every value checked, sources not yet read. */
export interface CheckedHandlerConfig {
  readonly basePath: string;
  readonly token: Omit<TokenServerConfig['token'], 'key' | 'certificate' | 'keys'> & {
    /** The signing keys, the first signs; never empty. */
    readonly keys: readonly ConfiguredSigningKey[];
  };
  readonly users:
    | { readonly htpasswd: string; readonly cacheSeconds: number }
    | { readonly entries: ValueSource; readonly cacheSeconds: number };
  /** The `authn:` list of a YAML file: when given, it takes the place of `users`' source. */
  readonly authn?: readonly AuthnSource[];
  /** Asked after the sources (TokenHandlerConfig.authenticators). */
  readonly authenticators?: AuthenticatorsSource;
  readonly limits: TokenServerConfig['limits'];
  readonly trustedProxies: readonly TrustedProxy[];
  readonly acl: readonly AclRuleConfig[];
  /** Asked after the ACL (TokenHandlerConfig.authorizers). */
  readonly authorizers?: readonly ScopeAuthorizer[];
  /** The shared store; left out for the memory store. */
  readonly store?: CheckedStoreConfig;
}

function fail(path: string, why: string): never {
  throw new RegauthError('ERR_INVALID_CONFIG', `token handler config: ${path}: ${why}`);
}

function integer(value: number | undefined, path: string, fallback: number, min: number): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < min) fail(path, `must be a whole number of at least ${min} (got ${n})`);
  return n;
}

/** `/auth/` and `auth` both mean `/auth`; the root is ''. */
function checkBasePath(basePath: string | undefined): string {
  if (basePath === undefined || basePath === '' || basePath === '/') return '';
  const trimmed = `/${basePath.replace(/^\/+|\/+$/g, '')}`;
  if (!/^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]+$/.test(trimmed) || trimmed.includes('//')) {
    fail('basePath', `${JSON.stringify(basePath)} is not a URL path such as /auth`);
  }
  return trimmed;
}

function checkPem(source: PemSource | undefined, path: string): PemSource {
  if (typeof source !== 'object' || source === null) {
    fail(path, 'must be { pem: "-----BEGIN …" } or { file: "path/to/key.pem" }');
  }
  if ('file' in source) {
    if (typeof source.file !== 'string' || source.file === '')
      fail(`${path}.file`, 'must be a non-empty path');
  } else if (typeof source.pem !== 'string' && typeof source.pem !== 'function') {
    fail(`${path}.pem`, 'must be the PEM text or a function returning it');
  }
  return source;
}

function checkKeys(token: TokenHandlerConfig['token']): ConfiguredSigningKey[] {
  if (token.keys === undefined) {
    return [
      {
        path: 'token',
        key: checkPem(token.key, 'token.key'),
        certificate: checkPem(token.certificate, 'token.certificate'),
      },
    ];
  }
  if (token.key !== undefined || token.certificate !== undefined) {
    fail('token.keys', 'give either key and certificate or keys, not both');
  }
  if (!Array.isArray(token.keys) || token.keys.length === 0) {
    fail('token.keys', 'must be a list of { key, certificate }, the signing one first');
  }
  return token.keys.map((pair, i) => {
    const path = `token.keys[${i}]`;
    if (typeof pair !== 'object' || pair === null) fail(path, 'must be { key, certificate }');
    return {
      path,
      key: checkPem(pair.key, `${path}.key`),
      certificate: checkPem(pair.certificate, `${path}.certificate`),
    };
  });
}

/** Checks a programmatic config and fills in defaults, before anything is read. */
export function checkHandlerConfig(config: TokenHandlerConfig): CheckedHandlerConfig {
  const token = config.token;
  for (const key of ['issuer', 'service'] as const) {
    if (typeof token?.[key] !== 'string' || token[key] === '')
      fail(`token.${key}`, 'must be a non-empty string');
  }
  const users = config.users;
  const cacheSeconds = integer(users?.cacheSeconds, 'users.cacheSeconds', DEFAULT_VERIFIED_CACHE_S, 0);
  let checkedUsers: CheckedHandlerConfig['users'];
  if (users === undefined) checkedUsers = { entries: '', cacheSeconds };
  else if ('htpasswd' in users) {
    if (typeof users.htpasswd !== 'string' || users.htpasswd === '') fail('users.htpasswd', 'must be a path');
    checkedUsers = { htpasswd: users.htpasswd, cacheSeconds };
  } else if (
    'entries' in users &&
    (typeof users.entries === 'string' || typeof users.entries === 'function')
  ) {
    checkedUsers = { entries: users.entries, cacheSeconds };
  } else {
    fail('users', 'must be { htpasswd: path } or { entries: text | () => text }');
  }
  const authenticators = config.authenticators;
  if (
    authenticators !== undefined &&
    typeof authenticators !== 'function' &&
    !(Array.isArray(authenticators) && authenticators.every((a) => typeof a?.authenticate === 'function'))
  ) {
    fail(
      'authenticators',
      'must be a list of Authenticators (objects with an authenticate method), or a function returning one',
    );
  }
  const authorizers = config.authorizers;
  if (
    authorizers !== undefined &&
    !(
      Array.isArray(authorizers) &&
      authorizers.every((a) => typeof a?.decide === 'function' && typeof a.kind === 'string')
    )
  ) {
    fail('authorizers', 'must be a list of ScopeAuthorizers (objects with a kind and a decide method)');
  }
  const limits = config.limits ?? {};
  const limit = (key: keyof TokenLimits, fallback: number, min: number) =>
    integer(limits[key], `limits.${key}`, fallback, min);
  return {
    basePath: checkBasePath(config.basePath),
    token: {
      issuer: token.issuer,
      service: token.service,
      keys: checkKeys(token),
      expiration: integer(
        token.expiration,
        'token.expiration',
        DEFAULT_TOKEN_EXPIRATION_S,
        MIN_TOKEN_EXPIRATION_S,
      ),
      refreshExpiration: integer(
        token.refreshExpiration,
        'token.refreshExpiration',
        DEFAULT_REFRESH_EXPIRATION_S,
        60,
      ),
      reuse: integer(token.reuse, 'token.reuse', DEFAULT_TOKEN_REUSE_S, 0),
    },
    users: checkedUsers,
    ...(authenticators === undefined ? {} : { authenticators }),
    limits: {
      loginFailures: limit('loginFailures', DEFAULT_LOGIN_FAILURES, 0),
      loginWindow: limit('loginWindow', DEFAULT_LOGIN_WINDOW_S, 1),
      loginBackoffMax: limit('loginBackoffMax', DEFAULT_LOGIN_BACKOFF_MAX_S, 1),
      addressFailures: limit('addressFailures', DEFAULT_ADDRESS_FAILURES, 0),
      passwordChecks: limit('passwordChecks', DEFAULT_PASSWORD_CHECKS, 1),
      passwordQueue: limit('passwordQueue', DEFAULT_PASSWORD_QUEUE, 0),
      passwordChecksPerAddress: limit('passwordChecksPerAddress', DEFAULT_PASSWORD_CHECKS_PER_ADDRESS, 1),
      maxScopes: limit('maxScopes', DEFAULT_MAX_SCOPES, 1),
      // Connection caps belong to a listening server (createTokenServer), not to a mounted handler.
      maxConnections: DEFAULT_MAX_CONNECTIONS,
      connectionsPerAddress: DEFAULT_CONNECTIONS_PER_ADDRESS,
    },
    trustedProxies: (config.trustedProxies ?? []).map((entry, i) => {
      if (typeof entry !== 'string') return entry;
      return (
        parseTrustedProxy(entry) ??
        fail(`trustedProxies[${i}]`, `${JSON.stringify(entry)} is not an IP address or CIDR network`)
      );
    }),
    acl: config.acl ?? [],
    ...(authorizers === undefined ? {} : { authorizers }),
    ...storeOf(checkStoreConfig(config.store, 'store', fail)),
  };
}

function storeOf(store: CheckedStoreConfig | undefined): { store?: CheckedStoreConfig } {
  return store === undefined ? {} : { store };
}

/** The handler config a YAML file describes (paths stay paths; the server adds what it listens on). */
export function handlerConfigFromServerConfig(config: TokenServerConfig): CheckedHandlerConfig {
  return {
    basePath: '',
    token: {
      issuer: config.token.issuer,
      service: config.token.service,
      expiration: config.token.expiration,
      refreshExpiration: config.token.refreshExpiration,
      reuse: config.token.reuse,
      keys: config.token.keys.map((pair) => ({
        path: pair.path,
        key: { file: pair.key },
        certificate: { file: pair.certificate },
      })),
    },
    users:
      config.users.htpasswd === undefined
        ? { entries: '', cacheSeconds: config.users.cacheSeconds }
        : { htpasswd: config.users.htpasswd, cacheSeconds: config.users.cacheSeconds },
    ...(config.authn === undefined ? {} : { authn: config.authn.map(authnSource) }),
    limits: config.limits,
    trustedProxies: config.trustedProxies,
    acl: config.acl,
    ...(config.extAuthz === undefined ? {} : { authorizers: [createExtScopeAuthorizer(config.extAuthz)] }),
    ...storeOf(config.store),
  };
}

/** How one entry of a YAML `authn:` list is built. A new backend adds its line here. */
function authnSource(entry: AuthnConfig): AuthnSource {
  if ('htpasswd' in entry) return { htpasswd: entry.htpasswd.file };
  if ('ldap' in entry) return { create: (log) => createLdapAuthenticator({ ...entry.ldap, log }) };
  if ('oidc' in entry) {
    const { issuer } = entry.oidc;
    return {
      create: (log) =>
        createOidcAuthenticator({
          ...entry.oidc,
          onRefused: (reason) => log({ msg: 'oidc token refused', issuer, reason }),
        }),
    };
  }
  const config = entry.ext_auth;
  return { create: () => createExtAuthAuthenticator(config) };
}

/** Reads a key or certificate; a file's failure names the config key and the path. */
export async function readPem(source: PemSource, what: string): Promise<string> {
  if ('file' in source) {
    const file = source.file;
    return withFileSystemErrors(`read the ${what}`, file, () => readFile(file, 'utf8'));
  }
  return readValue(source.pem, what);
}

export async function readValue(source: ValueSource, what: string): Promise<string> {
  if (typeof source === 'string') return source;
  const value = await source();
  if (typeof value !== 'string') {
    throw new RegauthError('ERR_INVALID_CONFIG', `the function giving the ${what} returned no string`);
  }
  return value;
}
