import { readFile } from 'node:fs/promises';
import { withFileSystemErrors } from '../errors/file-system-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { ConfigReader } from './server-config.js';

/**
 * What prefixes every key regauth writes to Redis: one Redis can serve several deployments
 * (or other applications) when each has its own prefix.
 */
export const DEFAULT_STORE_PREFIX = 'regauth:';
/**
 * Seconds a request waits for Redis before it goes on with this replica's own counters. A
 * loopback or same-rack Redis answers in well under a millisecond; a quarter second is far past
 * a healthy answer and still short next to a password check.
 */
export const DEFAULT_STORE_TIMEOUT_S = 0.25;
/** The longest timeout accepted: past this, a Redis outage would stall every login noticeably. */
export const MAX_STORE_TIMEOUT_S = 10;

/**
 * A Redis (or Valkey) server the replicas of a token server share: failed-login counters live
 * there, so a lock-out counts every replica's failures. `url` is `redis://host:port/db` or
 * `rediss://…` (TLS); it may hold the password (`redis://:secret@host`), which never reaches a
 * log line, error message or metric.
 */
export interface RedisStoreConfig {
  readonly url: string;
  /** Prefix of every key. Left out: DEFAULT_STORE_PREFIX. */
  readonly prefix?: string;
  /** Seconds to wait for Redis before going on without it. Left out: DEFAULT_STORE_TIMEOUT_S. */
  readonly timeout?: number;
  /** The CA that signed a `rediss://` server's certificate. Left out: the system's CAs. */
  readonly ca?: { readonly pem: string } | { readonly file: string };
  /** The password (Redis `AUTH`), or a function returning it; takes the place of one in the URL. */
  readonly password?: string | (() => string | Promise<string>);
  /**
   * A random secret of at least 32 characters, the same on every replica, or a function
   * returning it (read at start-up and at every reload): the key user names and addresses are
   * hashed with before they name a Redis key. Left out: one derived from the signing key, so
   * counters start over when the first of `token.keys` changes; with it they survive rotations.
   */
  readonly secret?: string | (() => string | Promise<string>);
}

/** The store with defaults filled in and values checked; the password and CA are not read yet. */
export interface CheckedStoreConfig {
  readonly url: string;
  readonly prefix: string;
  readonly timeout: number;
  /** The CA of a `rediss://` server, as PEM text or a file. */
  readonly ca?: { readonly pem: string } | { readonly file: string };
  /** The password, or a function reading it (a file, a secret store) at start-up. */
  readonly password?: string | (() => string | Promise<string>);
  /** The counters' hashing secret (RedisStoreConfig `secret`), or a function reading it. */
  readonly secret?: string | (() => string | Promise<string>);
}

/**
 * The URL as a message may show it: scheme, host, port and database, never a user or password.
 * Anything that does not parse is shown as `(not a URL)`, since it might be a password typed
 * into the wrong field.
 */
export function redactStoreUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

/**
 * Checks a store given programmatically or from a file; `fail(path, why)` names the key path.
 * Returns undefined for the memory store.
 */
export function checkStoreConfig(
  raw: unknown,
  path: string,
  fail: (path: string, why: string) => never,
): CheckedStoreConfig | undefined {
  if (raw === undefined || raw === null || raw === 'memory') return undefined;
  const config: Record<string, unknown> =
    typeof raw === 'string' ? { url: raw } : typeof raw === 'object' && !Array.isArray(raw) ? { ...raw } : {};
  if (typeof raw !== 'string' && (typeof raw !== 'object' || Array.isArray(raw))) {
    fail(path, 'must be memory, a redis:// or rediss:// URL, or { url, prefix, timeout, … }');
  }
  const url = config.url;
  const urlPath = typeof raw === 'string' ? path : `${path}.url`;
  if (typeof url !== 'string' || url === '') fail(urlPath, 'must be a redis:// or rediss:// URL');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not echoed: a mistyped URL may hold the password.
    fail(urlPath, 'is not a URL; give redis://host:port/db or rediss://host:port/db');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    fail(urlPath, `${redactStoreUrl(url)}: only redis:// and rediss:// (TLS) are supported`);
  }
  if (parsed.hostname === '') fail(urlPath, `${redactStoreUrl(url)}: names no host`);
  if (!/^\/?(\d{1,2})?$/.test(parsed.pathname)) {
    fail(urlPath, `${redactStoreUrl(url)}: the path must be a database number such as /0`);
  }
  if (parsed.search !== '') {
    fail(urlPath, `${redactStoreUrl(url)}: query parameters are not read; use the keys of ${path} instead`);
  }
  const prefix = config.prefix ?? DEFAULT_STORE_PREFIX;
  if (typeof prefix !== 'string' || prefix.length > 64 || /[\s\p{Cc}]/u.test(prefix)) {
    fail(`${path}.prefix`, 'must be a string of at most 64 characters without spaces or control characters');
  }
  const timeout = config.timeout ?? DEFAULT_STORE_TIMEOUT_S;
  if (
    typeof timeout !== 'number' ||
    !Number.isFinite(timeout) ||
    timeout < 0.001 ||
    timeout > MAX_STORE_TIMEOUT_S
  ) {
    fail(`${path}.timeout`, `must be a number of seconds from 0.001 to ${MAX_STORE_TIMEOUT_S}, such as 0.25`);
  }
  if (config.ca !== undefined && parsed.protocol !== 'rediss:') {
    fail(`${path}.ca`, 'is for rediss:// (TLS) only');
  }
  const password = config.password;
  if (password !== undefined && typeof password !== 'string' && typeof password !== 'function') {
    fail(`${path}.password`, 'must be a string or a function returning one');
  }
  const secret = config.secret;
  if (secret !== undefined && typeof secret !== 'string' && typeof secret !== 'function') {
    fail(`${path}.secret`, 'must be a string or a function returning one');
  }
  return {
    url,
    prefix,
    timeout,
    ...(secret === undefined ? {} : { secret: secret as NonNullable<CheckedStoreConfig['secret']> }),
    ...(config.ca === undefined ? {} : { ca: config.ca as NonNullable<CheckedStoreConfig['ca']> }),
    ...(password === undefined ? {} : { password: password as NonNullable<CheckedStoreConfig['password']> }),
  };
}

/**
 * Reads `store:` of serve.yml: `memory` (the default), a `redis://` URL, or
 * `{ url, prefix, timeout, ca_file, password_file, secret_file }`. File paths are resolved against
 * the config's folder; the password file is read at start-up, the secret file at start-up and at
 * every reload, without a trailing newline.
 */
export function parseStoreConfig(
  reader: ConfigReader,
  raw: unknown,
  path = 'store',
): CheckedStoreConfig | undefined {
  const fail = (at: string, why: string): never => reader.fail(at, why);
  if (raw === undefined || raw === null || typeof raw === 'string') return checkStoreConfig(raw, path, fail);
  const section = reader.object(raw, path, [
    'url',
    'prefix',
    'timeout',
    'ca_file',
    'password_file',
    'secret_file',
  ]);
  const secretFile =
    section.secret_file === undefined ? undefined : reader.path(section, 'secret_file', `${path}.`);
  const caFile = section.ca_file === undefined ? undefined : reader.path(section, 'ca_file', `${path}.`);
  const passwordFile =
    section.password_file === undefined ? undefined : reader.path(section, 'password_file', `${path}.`);
  const checked = checkStoreConfig(
    {
      url: section.url,
      ...(section.prefix === undefined ? {} : { prefix: section.prefix }),
      ...(section.timeout === undefined ? {} : { timeout: section.timeout }),
      ...(caFile === undefined ? {} : { ca: { file: caFile } }),
      ...(passwordFile === undefined
        ? {}
        : { password: () => readPasswordFile(passwordFile, `${path}.password_file`) }),
      ...(secretFile === undefined
        ? {}
        : { secret: () => readSecretFile(secretFile, `${path}.secret_file`, 'the counters’ secret') }),
    },
    path,
    (at, why) => fail(at.replace(`${path}.ca`, `${path}.ca_file`), why),
  );
  if (checked === undefined) fail(`${path}.url`, 'must be a redis:// or rediss:// URL');
  return checked;
}

function readPasswordFile(file: string, what: string): Promise<string> {
  return readSecretFile(file, what, 'the Redis password');
}

async function readSecretFile(file: string, what: string, holds: string): Promise<string> {
  const text = await withFileSystemErrors(`read ${holds} (${what})`, file, () => readFile(file, 'utf8'));
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '')
    throw new RegauthError('ERR_INVALID_CONFIG', `${what}: ${file} is empty; put ${holds} in it`);
  return secret;
}
