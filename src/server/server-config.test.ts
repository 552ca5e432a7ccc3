import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { loadServerConfig, parseServerConfig } from './server-config.js';

const FILE = '/etc/regauth/config.yml';

function minimal(): Record<string, unknown> {
  return {
    token: { issuer: 'regauth', service: 'registry.example.com', key: 'key.pem', certificate: 'cert.pem' },
    acl: [],
  };
}

function withToken(token: Record<string, unknown>): Record<string, unknown> {
  return { ...minimal(), token: { ...(minimal().token as object), ...token } };
}

function configError(raw: unknown): RegauthError {
  try {
    parseServerConfig(raw, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    expect((err as RegauthError).code).toBe('ERR_INVALID_CONFIG');
    return err as RegauthError;
  }
  throw new Error('expected ERR_INVALID_CONFIG, but the config was accepted');
}

describe('parseServerConfig', () => {
  it('fills in defaults for everything left out', () => {
    expect(parseServerConfig(minimal(), FILE)).toStrictEqual({
      file: FILE,
      listen: { host: '127.0.0.1', port: 5001 },
      token: {
        issuer: 'regauth',
        service: 'registry.example.com',
        expiration: 300,
        refreshExpiration: 90 * 24 * 3600,
        reuse: 5,
        key: '/etc/regauth/key.pem',
        certificate: '/etc/regauth/cert.pem',
        keys: [{ key: '/etc/regauth/key.pem', certificate: '/etc/regauth/cert.pem', path: 'token' }],
      },
      users: { cacheSeconds: 60 },
      limits: {
        loginFailures: 5,
        loginWindow: 300,
        loginBackoffMax: 300,
        addressFailures: 30,
        passwordChecks: 4,
        passwordQueue: 32,
        passwordChecksPerAddress: 4,
        maxConnections: 512,
        connectionsPerAddress: 64,
        maxScopes: 32,
      },
      trustedProxies: [],
      acl: [],
    });
  });

  it('takes every setting that is given', () => {
    const config = parseServerConfig(
      {
        listen: '0.0.0.0:8443',
        tls: { cert: 'tls/cert.pem', key: 'tls/key.pem' },
        token: {
          issuer: 'iss',
          service: 'svc',
          expiration: 600,
          refresh_expiration: 3600,
          reuse_seconds: 0,
          key: '/keys/key.pem',
          certificate: 'cert.pem',
        },
        users: { htpasswd: 'users.htpasswd', cache_seconds: 0 },
        limits: {
          login_failures: 0,
          login_window: 10,
          login_backoff_max: 60,
          address_failures: 0,
          password_checks: 2,
          password_queue: 0,
          password_checks_per_address: 1,
          max_connections: 100,
          connections_per_address: 10,
          max_scopes: 4,
        },
        trusted_proxies: ['10.0.0.0/8', '192.0.2.7', '2001:DB8::/32', '::ffff:198.51.100.1'],
        acl: [{ match: { account: 'admin' }, actions: ['*'], comment: 'admins' }],
      },
      FILE,
    );
    expect(config).toStrictEqual({
      file: FILE,
      listen: { host: '0.0.0.0', port: 8443 },
      tls: { cert: '/etc/regauth/tls/cert.pem', key: '/etc/regauth/tls/key.pem' },
      token: {
        issuer: 'iss',
        service: 'svc',
        expiration: 600,
        refreshExpiration: 3600,
        reuse: 0,
        key: '/keys/key.pem',
        certificate: '/etc/regauth/cert.pem',
        keys: [{ key: '/keys/key.pem', certificate: '/etc/regauth/cert.pem', path: 'token' }],
      },
      users: { htpasswd: '/etc/regauth/users.htpasswd', cacheSeconds: 0 },
      limits: {
        loginFailures: 0,
        loginWindow: 10,
        loginBackoffMax: 60,
        addressFailures: 0,
        passwordChecks: 2,
        passwordQueue: 0,
        passwordChecksPerAddress: 1,
        maxConnections: 100,
        connectionsPerAddress: 10,
        maxScopes: 4,
      },
      trustedProxies: [
        { address: '10.0.0.0', prefix: 8, family: 'ipv4' },
        { address: '192.0.2.7', prefix: 32, family: 'ipv4' },
        { address: '2001:db8::', prefix: 32, family: 'ipv6' },
        { address: '198.51.100.1', prefix: 32, family: 'ipv4' },
      ],
      acl: [{ match: { account: 'admin' }, actions: ['*'], comment: 'admins' }],
    });
  });

  it('resolves relative paths against the given base directory instead of the file', () => {
    const config = parseServerConfig(
      { ...minimal(), users: { htpasswd: '../users' }, tls: { cert: 'c.pem', key: 'k.pem' } },
      FILE,
      '/srv/app',
    );
    expect(config.token.key).toBe('/srv/app/key.pem');
    expect(config.users.htpasswd).toBe('/srv/users');
    expect(config.tls).toEqual({ cert: '/srv/app/c.pem', key: '/srv/app/k.pem' });
  });

  it('reads listen addresses with an IPv6 host or no host', () => {
    expect(parseServerConfig({ ...minimal(), listen: '[::1]:5001' }, FILE).listen).toEqual({
      host: '::1',
      port: 5001,
    });
    expect(parseServerConfig({ ...minimal(), listen: ':5001' }, FILE).listen).toEqual({
      host: '0.0.0.0',
      port: 5001,
    });
    expect(parseServerConfig({ ...minimal(), listen: 'localhost:0' }, FILE).listen).toEqual({
      host: 'localhost',
      port: 0,
    });
  });

  it('takes a YAML null as "left out"', () => {
    const config = parseServerConfig({ ...minimal(), users: null, limits: null }, FILE);
    expect(config.users).toEqual({ cacheSeconds: 60 });
    expect(config.limits.maxScopes).toBe(32);
  });

  it('names the file in its messages', () => {
    expect(configError({ ...minimal(), listen: 5001 }).message).toMatch(
      /^\/etc\/regauth\/config\.yml: listen: /,
    );
  });

  it('rejects an unknown key such as the typo token.expiry, and says which keys it knows', () => {
    const message = configError(withToken({ expiry: 600 })).message;
    expect(message).toContain('token.expiry: unknown key');
    expect(message).toContain('expiration');
  });

  it('rejects an unknown top-level key by its own name', () => {
    expect(configError({ ...minimal(), auth: {} }).message).toContain(`${FILE}: auth: unknown key`);
  });

  it('rejects a token lifetime under 60 seconds', () => {
    expect(configError(withToken({ expiration: 30 })).message).toContain(
      'token.expiration: must be a whole number of at least 60 (got 30)',
    );
    expect(parseServerConfig(withToken({ expiration: 60 }), FILE).token.expiration).toBe(60);
  });

  it('rejects a lifetime that is not a whole number', () => {
    expect(configError(withToken({ expiration: 90.5 })).message).toContain('token.expiration');
    expect(configError(withToken({ expiration: '300' })).message).toContain('(got "300")');
  });

  it('rejects a missing or empty issuer', () => {
    const token = { ...(minimal().token as object) } as Record<string, unknown>;
    delete token.issuer;
    expect(configError({ token }).message).toContain('token.issuer: must be a non-empty string');
    expect(configError(withToken({ issuer: '' })).message).toContain('token.issuer');
  });

  it('rejects a missing token section', () => {
    expect(configError({ listen: '127.0.0.1:5001' }).message).toContain('token: must be a mapping');
  });

  it('rejects a document that is not a mapping', () => {
    configError(null);
    configError(['token']);
    configError('token: x');
  });

  it.each([
    ['no port', '127.0.0.1'],
    ['a port over 65535', '127.0.0.1:65536'],
    ['a named port', 'localhost:http'],
    ['a URL', 'http://127.0.0.1:5001'],
  ])('rejects a listen address with %s', (_why, listen) => {
    expect(configError({ ...minimal(), listen }).message).toContain(`listen: "${listen}" is not "host:port"`);
  });

  it('rejects a negative limit', () => {
    expect(configError({ ...minimal(), limits: { login_failures: -1 } }).message).toContain(
      'limits.login_failures',
    );
    expect(configError({ ...minimal(), limits: { max_scopes: 0 } }).message).toContain('limits.max_scopes');
    expect(configError({ ...minimal(), limits: { password_checks: 0 } }).message).toContain(
      'limits.password_checks: must be a whole number of at least 1',
    );
    expect(configError({ ...minimal(), limits: { max_connections: 0 } }).message).toContain(
      'limits.max_connections',
    );
  });

  it('rejects trusted_proxies that are not a list of addresses or networks, naming the entry', () => {
    expect(configError({ ...minimal(), trusted_proxies: '10.0.0.1' }).message).toContain(
      `${FILE}: trusted_proxies: must be a list`,
    );
    for (const [i, bad] of [
      [0, 'proxy.example.com'],
      [0, '10.0.0.0/33'],
      [0, '2001:db8::/129'],
      [0, '10.0.0.0/'],
      [0, 42],
    ] as const) {
      expect(configError({ ...minimal(), trusted_proxies: [bad] }).message).toContain(
        `trusted_proxies[${i}]: ${JSON.stringify(bad)} is not an IP address or CIDR network`,
      );
    }
    expect(configError({ ...minimal(), trusted_proxies: ['::1', 'x'] }).message).toContain(
      'trusted_proxies[1]',
    );
  });

  it('rejects an ACL that is not a list', () => {
    expect(configError({ ...minimal(), acl: { account: 'admin' } }).message).toContain(
      'acl: must be a list of rules',
    );
  });

  it('rejects a resource type the registry does not ask for, naming the rule', () => {
    const message = configError({
      ...minimal(),
      acl: [
        { match: { account: 'admin' }, actions: ['*'] },
        { match: { type: 'blob' }, actions: ['pull'] },
      ],
    }).message;
    expect(message).toContain('acl[1].match.type: must be one of repository, registry');
  });

  it('rejects actions that are not a list of action names', () => {
    expect(configError({ ...minimal(), acl: [{ match: {}, actions: 'pull' }] }).message).toContain(
      'acl[0].actions: must be a list',
    );
    expect(configError({ ...minimal(), acl: [{ match: {}, actions: ['Pull'] }] }).message).toContain(
      'acl[0].actions',
    );
    expect(configError({ ...minimal(), acl: [{ match: {} }] }).message).toContain('acl[0].actions');
  });

  it('rejects a bad /regex/ in a rule, naming the key that holds it', () => {
    const name = configError({ ...minimal(), acl: [{ match: { name: '/[/' }, actions: ['pull'] }] }).message;
    expect(name).toContain('acl[0].match.name: bad pattern');
    const account = configError({
      ...minimal(),
      acl: [{ match: { account: '/(/', name: 'x' }, actions: ['pull'] }],
    }).message;
    expect(account).toContain('acl[0].match.account: bad pattern');
  });

  it('rejects a pattern that is not a string, and unknown keys in a rule', () => {
    expect(configError({ ...minimal(), acl: [{ match: { name: 5 }, actions: [] }] }).message).toContain(
      'acl[0].match.name: must be a string',
    );
    expect(configError({ ...minimal(), acl: [{ match: { user: 'x' }, actions: [] }] }).message).toContain(
      'acl[0].match.user: unknown key',
    );
  });

  it('takes several signing keys for a rotation, the first signing, paths resolved', () => {
    const base = minimal().token as Record<string, unknown>;
    const config = parseServerConfig(
      {
        acl: [],
        token: {
          issuer: base.issuer,
          service: base.service,
          keys: [
            { key: 'k2.pem', certificate: 'c2.pem' },
            { key: '/old/k1.pem', certificate: '/old/c1.pem' },
          ],
        },
      },
      FILE,
    );
    expect(config.token.keys).toEqual([
      { key: '/etc/regauth/k2.pem', certificate: '/etc/regauth/c2.pem', path: 'token.keys[0]' },
      { key: '/old/k1.pem', certificate: '/old/c1.pem', path: 'token.keys[1]' },
    ]);
    expect([config.token.key, config.token.certificate]).toEqual([
      '/etc/regauth/k2.pem',
      '/etc/regauth/c2.pem',
    ]);
  });

  it.each([
    [
      { keys: [{ key: 'k', certificate: 'c' }] },
      /token\.keys: give either key and certificate or keys, not both/,
    ],
    [{ key: undefined, certificate: undefined, keys: [] }, /token\.keys: must be a list/],
    [
      { key: undefined, certificate: undefined, keys: [{ key: 'k' }] },
      /token\.keys\[0\]\.certificate: must be/,
    ],
    [
      { key: undefined, certificate: undefined, keys: [{ key: 'k', certificate: 'c', cert: 'x' }] },
      /token\.keys\[0\]\.cert: unknown key/,
    ],
  ])('rejects a malformed key list, naming the key path: %j', (token, message) => {
    expect(configError(withToken(token)).message).toMatch(message);
  });

  it('reads the metrics section, off by default, paths resolved', () => {
    expect(parseServerConfig(minimal(), FILE).metrics).toBeUndefined();
    expect(
      parseServerConfig(
        { ...minimal(), metrics: { enabled: true, bearer_token_file: 'metrics.token' } },
        FILE,
      ).metrics,
    ).toEqual({ enabled: true, path: '/metrics', bearerTokenFile: '/etc/regauth/metrics.token' });
    expect(
      parseServerConfig(
        { ...minimal(), metrics: { enabled: true, listen: '127.0.0.1:9100', path: '/m' } },
        FILE,
      ).metrics,
    ).toEqual({ enabled: true, path: '/m', listen: { host: '127.0.0.1', port: 9100 } });
  });

  it.each([
    [{ enabled: true }, /metrics: an enabled endpoint needs bearer_token_file .* or listen/],
    [{ enabled: 'yes', listen: ':9100' }, /metrics\.enabled: must be true or false/],
    [{ enabled: true, listen: 'nowhere' }, /metrics\.listen: "nowhere" is not "host:port"/],
    [{ enabled: true, listen: ':9100', path: '/token' }, /metrics\.path: "\/token" is not a free URL path/],
    [{ enabled: true, listen: ':9100', token: 'x' }, /metrics\.token: unknown key/],
  ])('rejects a metrics section that would expose or break something: %j', (metrics, message) => {
    expect(configError({ ...minimal(), metrics }).message).toMatch(message);
  });

  it('gives a rule without match a catch-all match', () => {
    expect(parseServerConfig({ ...minimal(), acl: [{ actions: ['pull'] }] }, FILE).acl).toEqual([
      { match: {}, actions: ['pull'] },
    ]);
  });

  it('refuses a config without acl, and says that acl: [] denies all', () => {
    for (const acl of [undefined, null]) {
      expect(configError({ ...minimal(), acl }).message).toBe(
        `${FILE}: acl: missing: list the rules that grant access (first match wins; see the README), ` +
          'name an external authorizer (ext_authz: { command: … }), ' +
          'or write `acl: []` to deny everything to everyone',
      );
    }
    expect(parseServerConfig({ ...minimal(), acl: [] }, FILE).acl).toEqual([]);
  });

  it('reads every match condition and the comment', () => {
    const rule = {
      match: {
        account: '/.+/',
        type: 'registry',
        name: 'catalog',
        service: 'reg-*',
        ip: '10.0.0.0/8',
        labels: { group: 'ci-*', env: '/prod|staging/' },
      },
      actions: ['*'],
      comment: 'CI lists the catalog from inside',
    };
    expect(parseServerConfig({ ...minimal(), acl: [rule] }, FILE).acl).toEqual([rule]);
  });

  it('names the key path of an unknown action, a bad ip, label or placeholder', () => {
    const message = (rule: unknown) =>
      configError({ ...minimal(), acl: [{ match: {}, actions: [] }, rule] }).message;
    expect(message({ match: {}, actions: ['pull', 'pul'] })).toBe(
      `${FILE}: acl[1].actions[1]: unknown action "pul"; the actions are pull, push, delete, *`,
    );
    expect(message({ match: { ip: '10.0.0.300' }, actions: [] })).toContain(
      'acl[1].match.ip: "10.0.0.300" is not',
    );
    expect(message({ match: { ip: 10 }, actions: [] })).toContain('acl[1].match.ip: must be an address');
    expect(message({ match: { labels: ['group'] }, actions: [] })).toContain(
      'acl[1].match.labels: must be a mapping',
    );
    expect(message({ match: { labels: { group: 5 } }, actions: [] })).toContain(
      'acl[1].match.labels.group: must be a string',
    );
    expect(message({ match: { labels: { group: '/(a|b)+/' } }, actions: [] })).toContain(
      'acl[1].match.labels.group: the group ending at character 5 repeats',
    );
    expect(message({ match: { service: '${acount}' }, actions: [] })).toContain(
      'acl[1].match.service: unknown placeholder ${acount}',
    );
    expect(message({ match: {}, actions: [], comment: 3 })).toContain('acl[1].comment: must be a string');
  });
});

describe('loadServerConfig', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regauth-config-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a YAML file and resolves paths next to it', async () => {
    const file = join(dir, 'ok.yml');
    await writeFile(
      file,
      [
        'listen: 127.0.0.1:5002',
        'token:',
        '  issuer: regauth',
        '  service: registry',
        '  key: key.pem',
        '  certificate: cert.pem',
        'acl:',
        '  - match: {account: "", name: "public/**"}',
        '    actions: [pull]',
        '',
      ].join('\n'),
    );
    const config = await loadServerConfig(file);
    expect(config.file).toBe(file);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 5002 });
    expect(config.token.key).toBe(join(dir, 'key.pem'));
    expect(config.acl).toEqual([{ match: { account: '', name: 'public/**' }, actions: ['pull'] }]);
  });

  it('reports a missing file as ERR_INVALID_CONFIG, naming it', async () => {
    const file = join(dir, 'missing.yml');
    const err = await loadServerConfig(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegauthError);
    expect(err).toMatchObject({ code: 'ERR_INVALID_CONFIG', cause: { code: 'ENOENT' } });
    expect((err as Error).message).toBe(
      `cannot read the config file ${file}: no such file or folder (ENOENT); check the path; the folder it is in must exist`,
    );
  });

  it('reports invalid YAML as ERR_INVALID_CONFIG, naming the file', async () => {
    const file = join(dir, 'bad.yml');
    await writeFile(file, 'token:\n  issuer: [unclosed\n  service: x\n');
    const err = await loadServerConfig(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegauthError);
    expect((err as RegauthError).code).toBe('ERR_INVALID_CONFIG');
    expect((err as Error).message).toContain(`${file}: not valid YAML`);
  });

  it('checks the parsed document like parseServerConfig', async () => {
    const file = join(dir, 'typo.yml');
    await writeFile(file, 'token:\n  issuer: a\n  service: b\n  key: k\n  certificate: c\n  expiry: 60\n');
    await expect(loadServerConfig(file)).rejects.toMatchObject({
      code: 'ERR_INVALID_CONFIG',
      message: `${file}: token.expiry: unknown key (known here: issuer, service, expiration, refresh_expiration, reuse_seconds, key, certificate, keys)`,
    });
  });
});
