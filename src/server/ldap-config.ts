import { readFile } from 'node:fs/promises';
import { withFileSystemErrors } from '../errors/file-system-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import {
  checkLdapTransport,
  DEFAULT_LDAP_TIMEOUT_S,
  type LdapAuthenticatorConfig,
  type LdapLabelSource,
  loginAttributeOf,
} from './ldap-authenticator.js';
import type { ConfigReader } from './server-config.js';

type Obj = Record<string, unknown>;

/**
 * Checks an `authn:` item's `ldap:` mapping of `serve.yml` and maps it onto
 * LdapAuthenticatorConfig; `path` is the item's key path (`authn[1].ldap`), which every error
 * names. The bind password is never written in the file: `bind_password_file` names a file
 * holding it (one trailing newline is dropped), `bind_password_env` an environment variable.
 *
 * ```yaml
 * authn:
 *   - ldap:
 *       url: ldaps://ldap.example.org
 *       ca_file: ldap-ca.pem
 *       bind_dn: cn=regauth,ou=services,dc=example,dc=org
 *       bind_password_file: ldap-bind-password
 *       base_dn: ou=people,dc=example,dc=org
 *       user_filter: (uid=${user})
 *       labels:
 *         group: { attribute: memberOf, cn_only: true }
 * ```
 */
export function parseLdapConfig(reader: ConfigReader, raw: unknown, path: string): LdapAuthenticatorConfig {
  const obj = reader.object(raw, path, [
    'url',
    'start_tls',
    'ca_file',
    'insecure',
    'bind_dn',
    'bind_password_file',
    'bind_password_env',
    'base_dn',
    'user_filter',
    'name_attribute',
    'labels',
    'timeout_seconds',
  ]);
  const p = `${path}.`;
  const url = reader.string(obj, 'url', p);
  const startTls = boolean(reader, obj, 'start_tls', p);
  const insecure = boolean(reader, obj, 'insecure', p);
  const caFile = obj.ca_file === undefined ? undefined : reader.path(obj, 'ca_file', p);
  checkLdapTransport(
    { url, startTls, insecure, ...(caFile === undefined ? {} : { ca: { file: caFile } }) },
    `${reader.file}: ${path}`,
  );
  const bindDn = reader.optionalString(obj, 'bind_dn', p);
  const passwordFile =
    obj.bind_password_file === undefined ? undefined : reader.path(obj, 'bind_password_file', p);
  const passwordEnv = reader.optionalString(obj, 'bind_password_env', p);
  if (passwordFile !== undefined && passwordEnv !== undefined) {
    reader.fail(`${p}bind_password_env`, 'give bind_password_file or bind_password_env, not both');
  }
  if (bindDn !== undefined && passwordFile === undefined && passwordEnv === undefined) {
    reader.fail(
      `${p}bind_dn`,
      'needs bind_password_file or bind_password_env (the password is never inline)',
    );
  }
  if (bindDn === undefined && (passwordFile !== undefined || passwordEnv !== undefined)) {
    reader.fail(`${p}bind_dn`, 'missing: a bind password is given, but not the account it is for');
  }
  const where = `${reader.file}: ${path}`;
  let bindPassword: (() => Promise<string>) | undefined;
  if (passwordFile !== undefined) {
    const file = passwordFile;
    bindPassword = async () =>
      (
        await withFileSystemErrors(`read ${path}.bind_password_file`, file, () => readFile(file, 'utf8'))
      ).replace(/\r?\n$/, '');
  } else if (passwordEnv !== undefined) {
    const name = passwordEnv;
    bindPassword = async () => {
      const value = process.env[name];
      if (value === undefined || value === '') {
        throw new RegauthError(
          'ERR_INVALID_CONFIG',
          `${where}.bind_password_env: the environment variable ${name} is not set or empty`,
        );
      }
      return value;
    };
  }
  const userFilter = reader.string(obj, 'user_filter', p, '(uid=${user})');
  if (!userFilter.includes('${user}')) {
    reader.fail(`${p}user_filter`, 'must use ${user} (the login name), such as (uid=${user})');
  }
  checkFilter(reader, userFilter, `${p}user_filter`, ['user']);
  if (loginAttributeOf(userFilter) === undefined) {
    reader.fail(
      `${p}user_filter`,
      'must compare one attribute with the login name, such as (uid=${user}) or (&(objectClass=user)(sAMAccountName=${user})): only that exact spelling logs in',
    );
  }
  const nameAttribute = reader.optionalString(obj, 'name_attribute', p);
  const timeoutSeconds = obj.timeout_seconds ?? DEFAULT_LDAP_TIMEOUT_S;
  if (typeof timeoutSeconds !== 'number' || !Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    reader.fail(
      `${p}timeout_seconds`,
      `must be a number of seconds above 0 (got ${JSON.stringify(timeoutSeconds)})`,
    );
  }
  return {
    url,
    ...(startTls ? { startTls } : {}),
    ...(insecure ? { insecure } : {}),
    ...(caFile === undefined ? {} : { ca: { file: caFile } }),
    ...(bindDn === undefined ? {} : { bindDn }),
    ...(bindPassword === undefined ? {} : { bindPassword }),
    baseDn: reader.string(obj, 'base_dn', p),
    userFilter,
    ...(nameAttribute === undefined ? {} : { nameAttribute }),
    labels: parseLabels(reader, obj.labels, `${path}.labels`),
    timeoutSeconds,
    source: where,
  };
}

function parseLabels(reader: ConfigReader, raw: unknown, path: string): Record<string, LdapLabelSource> {
  if (raw === undefined || raw === null) return {};
  const labels = reader.object(raw, path, Object.keys(raw as Obj));
  const result: Record<string, LdapLabelSource> = {};
  for (const [name, value] of Object.entries(labels)) {
    const at = `${path}.${name}`;
    if (!/^[A-Za-z_][\w-]*$/.test(name)) reader.fail(at, 'a label name is letters, digits, _ and -');
    const item = reader.object(value, at, ['attribute', 'cn_only', 'search']);
    if (item.search !== undefined) {
      if (item.attribute !== undefined || item.cn_only !== undefined) {
        reader.fail(at, 'give attribute (with cn_only) or search, not both');
      }
      const search = reader.object(item.search, `${at}.search`, ['base_dn', 'filter', 'attribute']);
      const filter = reader.string(search, 'filter', `${at}.search.`);
      checkFilter(reader, filter, `${at}.search.filter`, ['dn', 'user']);
      result[name] = {
        search: {
          baseDn: reader.string(search, 'base_dn', `${at}.search.`),
          filter,
          attribute: reader.string(search, 'attribute', `${at}.search.`, 'cn'),
        },
      };
    } else {
      const cnOnly = boolean(reader, item, 'cn_only', `${at}.`);
      result[name] = {
        attribute: reader.string(item, 'attribute', `${at}.`),
        ...(cnOnly ? { cnOnly } : {}),
      };
    }
  }
  return result;
}

function checkFilter(
  reader: ConfigReader,
  filter: string,
  path: string,
  placeholders: readonly string[],
): void {
  if (!/^\(.*\)$/s.test(filter))
    reader.fail(path, 'must be an LDAP filter in parentheses, such as (uid=${user})');
  for (const [, name] of filter.matchAll(/\$\{(\w*)\}/g)) {
    if (!placeholders.includes(name as string)) {
      reader.fail(
        path,
        `unknown placeholder \${${name}} (known here: ${placeholders.map((n) => `\${${n}}`).join(', ')})`,
      );
    }
  }
}

function boolean(reader: ConfigReader, obj: Obj, key: string, path: string): boolean {
  const value = obj[key] ?? false;
  if (typeof value !== 'boolean') reader.fail(`${path}${key}`, 'must be true or false');
  return value;
}
