import { configSource } from './config-source.js';
import type { TokenServerConfig } from './server-config.js';

/**
 * What a config reload cannot apply to a running server: the socket and what is created once
 * per server (the listening address, whether it speaks TLS, the connection caps set on the
 * socket, the metrics endpoint with its own listener). Each entry is a `serve.yml` key path and
 * how to read it; a section built once per server adds its line here and a reload then warns
 * that it needs a restart instead of half applying it.
 */
export const RESTART_ONLY_KEYS: readonly {
  readonly key: string;
  readonly value: (config: TokenServerConfig) => unknown;
  /** The file's top-level section compared, when both configs were read from a file. */
  readonly section?: string;
}[] = [
  { key: 'listen', value: (c) => c.listen, section: 'listen' },
  // On or off only: new certificate and key files are loaded into the running server.
  { key: 'tls', value: (c) => c.tls !== undefined },
  { key: 'limits.max_connections', value: (c) => c.limits.maxConnections },
  { key: 'limits.connections_per_address', value: (c) => c.limits.connectionsPerAddress },
  { key: 'metrics', value: (c) => c.metrics, section: 'metrics' },
  // Shared state stores open their connections once per server.
  { key: 'store', value: (c) => c.store, section: 'store' },
  // The admin endpoint (and its own listener) is made once per server, with the revocations.
  { key: 'admin', value: (c) => c.admin, section: 'admin' },
];

/** The top-level sections of `serve.yml`, as TokenServerConfig names them. */
const SECTIONS: readonly { readonly key: string; readonly value: (config: TokenServerConfig) => unknown }[] =
  [
    { key: 'listen', value: (c) => c.listen },
    { key: 'tls', value: (c) => c.tls },
    { key: 'token', value: (c) => c.token },
    { key: 'users', value: (c) => c.users },
    { key: 'authn', value: (c) => c.authn },
    { key: 'limits', value: (c) => c.limits },
    { key: 'trusted_proxies', value: (c) => c.trustedProxies },
    { key: 'acl', value: (c) => c.acl },
    { key: 'metrics', value: (c) => c.metrics },
    { key: 'ext_authz', value: (c) => c.extAuthz },
    { key: 'store', value: (c) => c.store },
    { key: 'admin', value: (c) => c.admin },
  ];

/** JSON with every object's keys sorted: the same content is the same text, whatever the order. */
function stable(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * Whether a section differs. Configs read from a file are compared by the file's section, as
 * written: the parsed one holds functions (an LDAP `bind_password_file` or a store's
 * `password_file` becomes a function reading it) that JSON drops, so a changed path went
 * unseen. Configs made in code fall back to the parsed values.
 */
function differs(
  a: TokenServerConfig,
  b: TokenServerConfig,
  section: string | undefined,
  value: (config: TokenServerConfig) => unknown,
): boolean {
  const [fileA, fileB] = [configSource(a), configSource(b)];
  if (section !== undefined && fileA !== undefined && fileB !== undefined) {
    return stable(fileA[section]) !== stable(fileB[section]);
  }
  return stable(value(a)) !== stable(value(b));
}

/** How a reloaded config differs from the running one, by key names only (never a value). */
export interface ConfigChanges {
  /** Top-level sections whose content changed (`acl`, `authn`, `token`…). */
  readonly sections: readonly string[];
  /** RESTART_ONLY_KEYS that differ from what the server was started with. */
  readonly restartOnly: readonly string[];
}

/**
 * Compares a new config with the one applied last (`applied`, for `sections`) and the one the
 * server started with (`started`, for `restartOnly`: those stay as started until a restart, so
 * every reload warns again while they differ). Files are compared by path only: a key or
 * certificate rewritten in place is re-read by every reload anyway.
 */
export function configChanges(
  started: TokenServerConfig,
  applied: TokenServerConfig,
  next: TokenServerConfig,
): ConfigChanges {
  return {
    sections: SECTIONS.filter(({ key, value }) => differs(applied, next, key, value)).map(({ key }) => key),
    restartOnly: RESTART_ONLY_KEYS.filter(({ section, value }) => differs(started, next, section, value)).map(
      ({ key }) => key,
    ),
  };
}
