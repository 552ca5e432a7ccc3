import type { TokenServerConfig } from './server-config.js';

/** The document each parsed config came from, top-level section by section. */
const sources = new WeakMap<TokenServerConfig, Readonly<Record<string, unknown>>>();

/**
 * Remembers the YAML document `config` was parsed from, so a reload can tell which sections the
 * file changed: the parsed config holds functions (a password file becomes a function reading
 * it) that no comparison can look into.
 */
export function withConfigSource<T extends TokenServerConfig>(config: T, raw: unknown): T {
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    sources.set(config, raw as Record<string, unknown>);
  }
  return config;
}

/** The top-level sections of the document `config` was parsed from; undefined for one made in code. */
export function configSource(config: TokenServerConfig): Readonly<Record<string, unknown>> | undefined {
  return sources.get(config);
}
