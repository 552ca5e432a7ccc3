import { describe, expect, it } from 'vitest';
import { configChanges } from './config-changes.js';
import { parseServerConfig } from './server-config.js';

const base = {
  listen: '127.0.0.1:5001',
  token: { issuer: 'i', service: 's', key: 'k.pem', certificate: 'c.pem' },
  users: { htpasswd: 'users.htpasswd' },
  acl: [{ match: { account: 'alice' }, actions: ['pull'] }],
};
const parse = (raw: Record<string, unknown>) => parseServerConfig(raw, '/etc/regauth/serve.yml');

describe('configChanges', () => {
  it('names the changed sections and nothing else', () => {
    const started = parse(base);
    const next = parse({
      ...base,
      acl: [{ match: { account: 'alice' }, actions: ['pull', 'push'] }],
      limits: { login_failures: 3 },
    });
    expect(configChanges(started, started, next)).toEqual({ sections: ['limits', 'acl'], restartOnly: [] });
    expect(configChanges(started, started, parse(base))).toEqual({ sections: [], restartOnly: [] });
  });

  it('names every restart-only key that differs from the started config, by key only', () => {
    const started = parse({ ...base, tls: { cert: 'tls.crt', key: 'tls.key' } });
    const next = parse({
      ...base,
      listen: '127.0.0.1:5002',
      limits: { max_connections: 10, connections_per_address: 2, login_window: 60 },
      metrics: { enabled: true, listen: '127.0.0.1:9100' },
    });
    const changes = configChanges(started, started, next);
    expect(changes.restartOnly).toEqual([
      'listen',
      'tls',
      'limits.max_connections',
      'limits.connections_per_address',
      'metrics',
    ]);
    // A TLS pair in new files is no restart: the server loads it.
    const moved = parse({ ...base, tls: { cert: 'new.crt', key: 'new.key' } });
    expect(configChanges(started, started, moved)).toEqual({ sections: ['tls'], restartOnly: [] });
  });

  it('keeps warning while a restart-only key differs from the started value', () => {
    const started = parse(base);
    const moved = parse({ ...base, listen: '127.0.0.1:5002' });
    expect(configChanges(started, moved, moved)).toEqual({ sections: [], restartOnly: ['listen'] });
  });

  it('sees a changed path that the parsed config holds only inside a function', () => {
    const ldap = (passwordFile: string) => ({
      ...base,
      users: {},
      authn: [
        {
          ldap: {
            url: 'ldap://127.0.0.1:389',
            bind_dn: 'cn=svc,dc=example,dc=org',
            bind_password_file: passwordFile,
            base_dn: 'ou=people,dc=example,dc=org',
          },
        },
      ],
    });
    const started = parse(ldap('bind-a'));
    expect(configChanges(started, started, parse(ldap('bind-b')))).toEqual({
      sections: ['authn'],
      restartOnly: [],
    });
    expect(configChanges(started, started, parse(ldap('bind-a')))).toEqual({ sections: [], restartOnly: [] });
    const store = (passwordFile: string) => ({
      ...base,
      store: { url: 'redis://127.0.0.1:6379', password_file: passwordFile },
    });
    const withStore = parse(store('redis-a'));
    expect(configChanges(withStore, withStore, parse(store('redis-b')))).toEqual({
      sections: ['store'],
      restartOnly: ['store'],
    });
  });

  it('does not count a section whose keys only moved around', () => {
    const started = parse(base);
    const reordered = parse({
      ...base,
      token: { certificate: 'c.pem', key: 'k.pem', service: 's', issuer: 'i' },
    });
    expect(configChanges(started, started, reordered)).toEqual({ sections: [], restartOnly: [] });
  });
});
