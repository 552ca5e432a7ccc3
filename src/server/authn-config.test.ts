import { describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { parseServerConfig } from './server-config.js';

const FILE = '/etc/regauth/serve.yml';
const token = { issuer: 'regauth', service: 'registry.example.com', key: 'key.pem', certificate: 'cert.pem' };

function configError(raw: Record<string, unknown>): string {
  try {
    parseServerConfig({ token, acl: [], ...raw }, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    expect((err as RegauthError).code).toBe('ERR_INVALID_CONFIG');
    return (err as Error).message;
  }
  throw new Error('expected ERR_INVALID_CONFIG, but the config was accepted');
}

describe('authn: in serve.yml', () => {
  it('reads the list in order, resolving paths next to the config file', () => {
    const config = parseServerConfig(
      {
        token,
        acl: [],
        users: { cache_seconds: 10 },
        authn: [
          { htpasswd: { file: 'users' } },
          { ext_auth: { command: ['bin/check', '--realm', 'ci'], timeout_seconds: 3, env: { REALM: 'ci' } } },
          { ext_auth: { command: ['check-login'] } },
        ],
      },
      FILE,
    );
    expect(config.authn).toEqual([
      { htpasswd: { file: '/etc/regauth/users' } },
      {
        ext_auth: {
          command: ['/etc/regauth/bin/check', '--realm', 'ci'],
          timeoutSeconds: 3,
          env: { REALM: 'ci' },
        },
      },
      { ext_auth: { command: ['check-login'], timeoutSeconds: 5 } },
    ]);
    expect(config.users).toEqual({ cacheSeconds: 10 });
  });

  it('reads ldap and oidc entries with their own parsers, in list order', () => {
    const config = parseServerConfig(
      {
        token,
        acl: [],
        authn: [
          {
            ldap: {
              url: 'ldap://127.0.0.1:3890',
              base_dn: 'ou=people,dc=example,dc=org',
              labels: { group: { attribute: 'memberOf', cn_only: true } },
            },
          },
          {
            oidc: {
              issuer: 'https://token.actions.githubusercontent.com',
              audience: 'https://registry.example.com',
              user: 'github-actions',
              name: 'repo:${repository}',
            },
          },
        ],
      },
      FILE,
    );
    const [ldap, oidc] = config.authn ?? [];
    expect(ldap).toMatchObject({
      ldap: { url: 'ldap://127.0.0.1:3890', baseDn: 'ou=people,dc=example,dc=org' },
    });
    expect(oidc).toMatchObject({
      oidc: {
        issuer: 'https://token.actions.githubusercontent.com',
        user: 'github-actions',
        name: 'repo:${repository}',
      },
    });
  });

  it('keeps users.htpasswd as the shorthand, with no authn key', () => {
    const config = parseServerConfig({ token, acl: [], users: { htpasswd: 'users' } }, FILE);
    expect(config.authn).toBeUndefined();
    expect(config.users.htpasswd).toBe('/etc/regauth/users');
  });

  it.each([
    [
      { users: { htpasswd: 'users' }, authn: [{ htpasswd: { file: 'users' } }] },
      /users\.htpasswd: is the shorthand of a one-item authn list and cannot stand beside authn/,
    ],
    [{ authn: [] }, /authn: must be a non-empty list/],
    [{ authn: { htpasswd: { file: 'x' } } }, /authn: must be a non-empty list/],
    [
      { authn: [{ ldapp: {} }] },
      /authn\[0\]\.ldapp: unknown key \(known here: htpasswd, ext_auth, ldap, oidc\)/,
    ],
    [
      { authn: [{ htpasswd: { file: 'a' }, ext_auth: { command: ['x'] } }] },
      /authn\[0\]: must name exactly one backend/,
    ],
    [{ authn: [{ htpasswd: {} }] }, /authn\[0\]\.htpasswd\.file: must be a non-empty string/],
    [
      { authn: [{ htpasswd: { file: 'a' } }, { ext_auth: { command: 'check --x' } }] },
      /authn\[1\]\.ext_auth\.command: must be the program and its arguments as a list/,
    ],
    [
      { authn: [{ ext_auth: { command: ['x'], timeout_seconds: 0 } }] },
      /authn\[0\]\.ext_auth\.timeout_seconds: must be a whole number of at least 1/,
    ],
    [
      { authn: [{ ext_auth: { command: ['x'], timeout_seconds: 600 } }] },
      /authn\[0\]\.ext_auth\.timeout_seconds: must be at most 120/,
    ],
    [
      { authn: [{ ext_auth: { command: ['x'], env: { 'A-B': 'x' } } }] },
      /authn\[0\]\.ext_auth\.env\.A-B: must be a variable name/,
    ],
    [{ authn: [{ ext_auth: { command: ['x'], shell: true } }] }, /authn\[0\]\.ext_auth\.shell: unknown key/],
    [
      { authn: [{ htpasswd: { file: 'a' } }, { ldap: { base_dn: 'dc=x' } }] },
      /authn\[1\]\.ldap\.url: must be a non-empty string/,
    ],
    [
      { authn: [{ ldap: { url: 'ldap://127.0.0.1', base_dn: 'dc=x', bind_password: 'p' } }] },
      /authn\[0\]\.ldap\.bind_password: unknown key/,
    ],
    [
      { authn: [{ ldap: { url: 'ldap://127.0.0.1', base_dn: 'dc=x' } }, { oidc: { audience: 'r' } }] },
      /authn\[1\]\.oidc\.issuer/,
    ],
    [
      {
        authn: [
          { oidc: { issuer: 'https://ci.example', audience: 'r', name: '${sub}', leeway_seconds: 600 } },
        ],
      },
      /authn\[0\]\.oidc\.leeway_seconds/,
    ],
  ])('names the key path of a bad list: %j', (raw, message) => {
    expect(configError(raw)).toMatch(message);
  });
});
