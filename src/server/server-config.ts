import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileSystemError } from '../errors/file-system-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { AclRuleConfig } from './acl.js';
import { type AdminConfig, parseAdminConfig } from './admin-config.js';
import { type AuthnConfig, parseAuthnConfig } from './authn-config.js';
import { parseAuthzConfig } from './authz-config.js';
import { parseTrustedProxy, type TrustedProxy } from './client-address.js';
import { withConfigSource } from './config-source.js';
import type { ExtAuthzConfig } from './ext-authorizer.js';
import { importOptional } from './import-optional.js';
import { type MetricsConfig, parseMetricsConfig } from './metrics-config.js';
import { type CheckedStoreConfig, parseStoreConfig } from './store-config.js';

/** distribution's token.md: clients treat anything shorter as 60 s, so shorter only breaks them. */
export const MIN_TOKEN_EXPIRATION_S = 60;
export const DEFAULT_TOKEN_EXPIRATION_S = 300;
/**
 * How long an issued access token is handed out again to the same subject for the same grant:
 * short next to the 60 s minimum lifetime, long enough to absorb a client's burst of requests.
 */
export const DEFAULT_TOKEN_REUSE_S = 5;
/** How long `docker login`'s identity token stays usable without a new login. */
export const DEFAULT_REFRESH_EXPIRATION_S = 90 * 24 * 3600;
/** A client's burst of per-scope token requests fits easily; a password change waits at most this long. */
export const DEFAULT_VERIFIED_CACHE_S = 60;
/** Failed logins of one user, from anywhere, before back-off starts: room for a few typos. */
export const DEFAULT_LOGIN_FAILURES = 5;
/** Quiet seconds after which a user's failures, and an address's budget, are forgotten. */
export const DEFAULT_LOGIN_WINDOW_S = 300;
/**
 * The longest per-user back-off, in seconds: a guesser gets about 12 tries an hour per user, and
 * a user at a new address waits no longer than the old fixed lock-out made them wait.
 */
export const DEFAULT_LOGIN_BACKOFF_MAX_S = 300;
/**
 * Failed logins per client address, across user names, per login window: a CI farm behind one
 * NAT with a few wrong passwords stays far below it; a guesser gets one try every 10 s.
 */
export const DEFAULT_ADDRESS_FAILURES = 30;
/** bcrypt checks at once: libuv runs 4 thread-pool jobs by default, more would only wait there. */
export const DEFAULT_PASSWORD_CHECKS = 4;
/** Checks waiting for a turn: at cost 10 (~60 ms) and 4 at once, under half a second of wait. */
export const DEFAULT_PASSWORD_QUEUE = 32;
/** Checks running or waiting per client address: identical parallel requests share one check. */
export const DEFAULT_PASSWORD_CHECKS_PER_ADDRESS = 4;
/**
 * Open connections in total. Keep it below the file-descriptor limit (`ulimit -n`, often 1024)
 * less what the process itself holds, or a flood of idle sockets leaves none for accept().
 */
/** Open connections in all: enough for a busy CI farm, few enough that file descriptors never run out. */
export const DEFAULT_MAX_CONNECTIONS = 512;
/** Open connections per client address (IPv6: per /64); trusted proxies are not limited. */
export const DEFAULT_CONNECTIONS_PER_ADDRESS = 64;
/** A cross-repository copy asks for a handful; hundreds are abuse. */
export const DEFAULT_MAX_SCOPES = 32;

/** A checked `serve.yml`: what parseServerConfig and loadServerConfig return and createTokenServer takes. */
export interface TokenServerConfig {
  /** The file the config came from, for messages. */
  readonly file: string;
  readonly listen: { readonly host: string; readonly port: number };
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly token: {
    readonly issuer: string;
    readonly service: string;
    readonly expiration: number;
    readonly refreshExpiration: number;
    /** Seconds an issued token is handed out again for the same subject and grant (0: never). */
    readonly reuse: number;
    /** The signing key: the first of `keys`. */
    readonly key: string;
    /** Its certificate: the first of `keys`. */
    readonly certificate: string;
    /**
     * Every key and certificate, the signing one first; `path` says where the pair sits in the
     * file for messages (`token` for the `key`/`certificate` shorthand, else `token.keys[1]`).
     */
    readonly keys: readonly { readonly key: string; readonly certificate: string; readonly path: string }[];
  };
  /** `users.htpasswd` is the shorthand of `authn: [{ htpasswd: { file } }]`. */
  readonly users: { readonly htpasswd?: string; readonly cacheSeconds: number };
  /** The `authn:` list, tried in order; left out when the file has none (then `users.htpasswd`). */
  readonly authn?: readonly AuthnConfig[];
  readonly limits: {
    readonly loginFailures: number;
    readonly loginWindow: number;
    readonly loginBackoffMax: number;
    readonly addressFailures: number;
    readonly passwordChecks: number;
    readonly passwordQueue: number;
    readonly passwordChecksPerAddress: number;
    readonly maxConnections: number;
    readonly connectionsPerAddress: number;
    readonly maxScopes: number;
  };
  /** Reverse proxies whose `X-Forwarded-For` is believed; empty: the socket peer is the client. */
  readonly trustedProxies: readonly TrustedProxy[];
  /** Empty when the file has only `ext_authz`. */
  readonly acl: readonly AclRuleConfig[];
  /** docker_auth's `ext_authz`: a program asked for resources no `acl` rule matched. */
  readonly extAuthz?: ExtAuthzConfig;
  /** The Prometheus endpoint; left out when the file has no `metrics:` section. */
  readonly metrics?: MetricsConfig;
  /** The Redis the replicas share (`store:`); left out for `memory`, the default. */
  readonly store?: CheckedStoreConfig;
  /** The admin endpoints (revocations); left out when the file has no `admin:` section. */
  readonly admin?: AdminConfig;
}

type Obj = Record<string, unknown>;

/** Reads a config document, naming the key path in every error (`authn[1].ext_auth.command`). */
export class ConfigReader {
  constructor(
    readonly file: string,
    readonly baseDir: string,
  ) {}

  fail(path: string, why: string): never {
    throw new RegauthError('ERR_INVALID_CONFIG', `${this.file}: ${path}: ${why}`);
  }

  object(value: unknown, path: string, allowed: readonly string[]): Obj {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      this.fail(path === '' ? '(top level)' : path, 'must be a mapping');
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) {
        this.fail(path === '' ? key : `${path}.${key}`, `unknown key (known here: ${allowed.join(', ')})`);
      }
    }
    return value as Obj;
  }

  string(obj: Obj, key: string, path: string, fallback?: string): string {
    const value = obj[key];
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'string' || value === '') this.fail(`${path}${key}`, 'must be a non-empty string');
    return value;
  }

  optionalString(obj: Obj, key: string, path: string): string | undefined {
    return obj[key] === undefined ? undefined : this.string(obj, key, path);
  }

  integer(obj: Obj, key: string, path: string, fallback: number, min: number): number {
    const value = obj[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      this.fail(`${path}${key}`, `must be a whole number of at least ${min} (got ${JSON.stringify(value)})`);
    }
    return value;
  }

  path(obj: Obj, key: string, path: string): string {
    return resolve(this.baseDir, this.string(obj, key, path));
  }
}

/** A `host:port` listen address; an empty host means all IPv4 addresses. */
export function parseListen(
  reader: ConfigReader,
  value: unknown,
  path = 'listen',
): { host: string; port: number } {
  if (typeof value !== 'string') reader.fail(path, 'must be "host:port", such as 127.0.0.1:5001');
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) reader.fail(path, `"${value}" is not "host:port", such as 127.0.0.1:5001`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

function parseTrustedProxies(reader: ConfigReader, value: unknown): TrustedProxy[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    reader.fail('trusted_proxies', 'must be a list of addresses or CIDR networks, such as [10.0.0.0/8]');
  }
  return value.map((entry, i) => {
    const proxy = typeof entry === 'string' ? parseTrustedProxy(entry) : undefined;
    if (!proxy) {
      reader.fail(
        `trusted_proxies[${i}]`,
        `${JSON.stringify(entry)} is not an IP address or CIDR network, such as 10.0.0.0/8 or 2001:db8::/32`,
      );
    }
    return proxy;
  });
}

/** `key` and `certificate`, or a `keys` list of them for a rotation (the first signs). */
function parseSigningKeys(reader: ConfigReader, token: Obj): TokenServerConfig['token']['keys'] {
  if (token.keys === undefined) {
    return [
      {
        key: reader.path(token, 'key', 'token.'),
        certificate: reader.path(token, 'certificate', 'token.'),
        path: 'token',
      },
    ];
  }
  if (token.key !== undefined || token.certificate !== undefined) {
    reader.fail('token.keys', 'give either key and certificate or keys, not both');
  }
  if (!Array.isArray(token.keys) || token.keys.length === 0) {
    reader.fail('token.keys', 'must be a list of { key, certificate }, the signing one first');
  }
  return token.keys.map((item, i) => {
    const path = `token.keys[${i}]`;
    const pair = reader.object(item, path, ['key', 'certificate']);
    return {
      key: reader.path(pair, 'key', `${path}.`),
      certificate: reader.path(pair, 'certificate', `${path}.`),
      path,
    };
  });
}

/** Checks a parsed config document and fills in defaults; paths resolve against `baseDir`. */
export function parseServerConfig(
  raw: unknown,
  file: string,
  baseDir: string = dirname(file),
): TokenServerConfig {
  const reader = new ConfigReader(file, baseDir);
  const top = reader.object(raw, '', [
    'listen',
    'tls',
    'token',
    'users',
    'authn',
    'limits',
    'trusted_proxies',
    'acl',
    'ext_authz',
    'metrics',
    'store',
    'admin',
  ]);
  const token = reader.object(top.token, 'token', [
    'issuer',
    'service',
    'expiration',
    'refresh_expiration',
    'reuse_seconds',
    'key',
    'certificate',
    'keys',
  ]);
  const keys = parseSigningKeys(reader, token);
  const users = reader.object(top.users ?? {}, 'users', ['htpasswd', 'cache_seconds']);
  const limits = reader.object(top.limits ?? {}, 'limits', [
    'login_failures',
    'login_window',
    'login_backoff_max',
    'address_failures',
    'password_checks',
    'password_queue',
    'password_checks_per_address',
    'max_connections',
    'connections_per_address',
    'max_scopes',
  ]);
  const htpasswd = reader.optionalString(users, 'htpasswd', 'users.');
  const authn =
    top.authn === undefined || top.authn === null ? undefined : parseAuthnConfig(reader, top.authn);
  if (authn !== undefined && htpasswd !== undefined) {
    reader.fail(
      'users.htpasswd',
      'is the shorthand of a one-item authn list and cannot stand beside authn; move the file into authn as { htpasswd: { file: … } }',
    );
  }
  const metrics =
    top.metrics === undefined || top.metrics === null ? undefined : parseMetricsConfig(reader, top.metrics);
  const config: TokenServerConfig = {
    file,
    listen: parseListen(reader, top.listen ?? '127.0.0.1:5001'),
    token: {
      issuer: reader.string(token, 'issuer', 'token.'),
      service: reader.string(token, 'service', 'token.'),
      expiration: reader.integer(
        token,
        'expiration',
        'token.',
        DEFAULT_TOKEN_EXPIRATION_S,
        MIN_TOKEN_EXPIRATION_S,
      ),
      refreshExpiration: reader.integer(
        token,
        'refresh_expiration',
        'token.',
        DEFAULT_REFRESH_EXPIRATION_S,
        60,
      ),
      reuse: reader.integer(token, 'reuse_seconds', 'token.', DEFAULT_TOKEN_REUSE_S, 0),
      key: (keys[0] as (typeof keys)[number]).key,
      certificate: (keys[0] as (typeof keys)[number]).certificate,
      keys,
    },
    users: {
      ...(htpasswd === undefined ? {} : { htpasswd: resolve(baseDir, htpasswd) }),
      cacheSeconds: reader.integer(users, 'cache_seconds', 'users.', DEFAULT_VERIFIED_CACHE_S, 0),
    },
    ...(authn === undefined ? {} : { authn }),
    limits: {
      loginFailures: reader.integer(limits, 'login_failures', 'limits.', DEFAULT_LOGIN_FAILURES, 0),
      loginWindow: reader.integer(limits, 'login_window', 'limits.', DEFAULT_LOGIN_WINDOW_S, 1),
      loginBackoffMax: reader.integer(limits, 'login_backoff_max', 'limits.', DEFAULT_LOGIN_BACKOFF_MAX_S, 1),
      addressFailures: reader.integer(limits, 'address_failures', 'limits.', DEFAULT_ADDRESS_FAILURES, 0),
      passwordChecks: reader.integer(limits, 'password_checks', 'limits.', DEFAULT_PASSWORD_CHECKS, 1),
      passwordQueue: reader.integer(limits, 'password_queue', 'limits.', DEFAULT_PASSWORD_QUEUE, 0),
      passwordChecksPerAddress: reader.integer(
        limits,
        'password_checks_per_address',
        'limits.',
        DEFAULT_PASSWORD_CHECKS_PER_ADDRESS,
        1,
      ),
      maxConnections: reader.integer(limits, 'max_connections', 'limits.', DEFAULT_MAX_CONNECTIONS, 1),
      connectionsPerAddress: reader.integer(
        limits,
        'connections_per_address',
        'limits.',
        DEFAULT_CONNECTIONS_PER_ADDRESS,
        1,
      ),
      maxScopes: reader.integer(limits, 'max_scopes', 'limits.', DEFAULT_MAX_SCOPES, 1),
    },
    trustedProxies: parseTrustedProxies(reader, top.trusted_proxies),
    ...parseAuthzConfig(reader, top.acl, top.ext_authz),
    ...(metrics === undefined ? {} : { metrics }),
    ...(top.admin === undefined || top.admin === null
      ? {}
      : {
          admin: parseAdminConfig(
            reader,
            top.admin,
            metrics?.enabled && metrics.listen === undefined ? [metrics.path] : [],
          ),
        }),
    ...storeOf(parseStoreConfig(reader, top.store)),
  };
  if (top.tls !== undefined) {
    const tls = reader.object(top.tls, 'tls', ['cert', 'key']);
    return withConfigSource(
      { ...config, tls: { cert: reader.path(tls, 'cert', 'tls.'), key: reader.path(tls, 'key', 'tls.') } },
      raw,
    );
  }
  return withConfigSource(config, raw);
}

function storeOf(store: CheckedStoreConfig | undefined): { store?: CheckedStoreConfig } {
  return store === undefined ? {} : { store };
}

/** Reads and checks a YAML config file. */
export async function loadServerConfig(file: string): Promise<TokenServerConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    const described = fileSystemError(cause, 'read the config file', file);
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      described instanceof RegauthError
        ? described.message
        : `cannot read config file ${file}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const { parse: parseYaml } = await importOptional(
    'yaml',
    'reading a YAML config file',
    () => import('yaml'),
  );
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (cause) {
    // The parser's message ends with an excerpt of the file; logs get the position only.
    const where = ((cause as Error).message.split('\n')[0] ?? '').replace(/:$/, '');
    throw new RegauthError('ERR_INVALID_CONFIG', `${file}: not valid YAML: ${where}`, { cause });
  }
  return parseServerConfig(raw, file);
}
