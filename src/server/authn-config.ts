import { isAbsolute, resolve } from 'node:path';
import { DEFAULT_EXT_AUTH_TIMEOUT_S, type ExtAuthConfig } from './ext-auth-authenticator.js';
import type { LdapAuthenticatorConfig } from './ldap-authenticator.js';
import { parseLdapConfig } from './ldap-config.js';
import type { OidcAuthenticatorConfig } from './oidc-authenticator.js';
import { parseOidcConfig } from './oidc-config.js';
import type { ConfigReader } from './server-config.js';

/** One entry of `serve.yml`'s `authn:` list: the backend's name is its only key. */
export type AuthnConfig =
  | { readonly htpasswd: { readonly file: string } }
  | { readonly ext_auth: ExtAuthConfig & { readonly timeoutSeconds: number } }
  | { readonly ldap: LdapAuthenticatorConfig }
  | { readonly oidc: OidcAuthenticatorConfig };

/** The backends an `authn:` entry may name. */
export const AUTHN_KINDS = ['htpasswd', 'ext_auth', 'ldap', 'oidc'] as const;

/** Longest ext_auth timeout: a login nobody waits minutes for. */
const MAX_EXT_AUTH_TIMEOUT_S = 120;

function parseExtAuth(reader: ConfigReader, raw: unknown, path: string): AuthnConfig {
  const obj = reader.object(raw, path, ['command', 'timeout_seconds', 'env']);
  const command = obj.command;
  if (
    !Array.isArray(command) ||
    command.length === 0 ||
    !command.every((part) => typeof part === 'string' && part !== '')
  ) {
    reader.fail(
      `${path}.command`,
      'must be the program and its arguments as a list, such as [/usr/local/bin/check-login, --realm, ci] (no shell runs it)',
    );
  }
  const parts = command as string[];
  const program = parts[0] as string;
  // A relative path with a slash is relative to the config file, as every other path in it.
  const resolved = program.includes('/') && !isAbsolute(program) ? resolve(reader.baseDir, program) : program;
  const timeoutSeconds = reader.integer(obj, 'timeout_seconds', `${path}.`, DEFAULT_EXT_AUTH_TIMEOUT_S, 1);
  if (timeoutSeconds > MAX_EXT_AUTH_TIMEOUT_S) {
    reader.fail(`${path}.timeout_seconds`, `must be at most ${MAX_EXT_AUTH_TIMEOUT_S}`);
  }
  let env: Record<string, string> | undefined;
  if (obj.env !== undefined && obj.env !== null) {
    const envObj = reader.object(obj.env, `${path}.env`, Object.keys(obj.env as object));
    env = {};
    for (const [key, value] of Object.entries(envObj)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || typeof value !== 'string') {
        reader.fail(`${path}.env.${key}`, 'must be a variable name with a string value');
      }
      env[key] = value;
    }
  }
  return {
    ext_auth: {
      command: [resolved, ...parts.slice(1)],
      timeoutSeconds,
      ...(env === undefined ? {} : { env }),
    },
  };
}

function parseHtpasswdEntry(reader: ConfigReader, raw: unknown, path: string): AuthnConfig {
  const obj = reader.object(raw, path, ['file']);
  return { htpasswd: { file: reader.path(obj, 'file', `${path}.`) } };
}

/**
 * Reads `authn:`: a list of one-key mappings, tried in order (`[{ htpasswd: { file: users } },
 * { ext_auth: { command: [...], timeout_seconds: 5 } }, { ldap: {...} }, { oidc: {...} }]`). Errors name the key path, such as
 * `authn[1].ext_auth.command`.
 */
export function parseAuthnConfig(reader: ConfigReader, raw: unknown, path = 'authn'): AuthnConfig[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    reader.fail(
      path,
      'must be a non-empty list of backends, such as [{ htpasswd: { file: users.htpasswd } }]',
    );
  }
  return raw.map((item, i) => {
    const itemPath = `${path}[${i}]`;
    const obj = reader.object(item, itemPath, AUTHN_KINDS);
    const keys = Object.keys(obj);
    if (keys.length !== 1) {
      reader.fail(itemPath, `must name exactly one backend (one of ${AUTHN_KINDS.join(', ')})`);
    }
    const kind = keys[0] as (typeof AUTHN_KINDS)[number];
    const entryPath = `${itemPath}.${kind}`;
    switch (kind) {
      case 'htpasswd':
        return parseHtpasswdEntry(reader, obj[kind], entryPath);
      case 'ext_auth':
        return parseExtAuth(reader, obj[kind], entryPath);
      case 'ldap':
        return { ldap: parseLdapConfig(reader, obj[kind], entryPath) };
      default:
        return { oidc: parseOidcConfig(reader, obj[kind], entryPath) };
    }
  });
}
