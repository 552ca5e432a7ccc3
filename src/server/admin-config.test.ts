import { describe, expect, it } from 'vitest';
import { parseServerConfig } from './server-config.js';

const base = {
  token: { issuer: 'i', service: 's', key: 'k.pem', certificate: 'c.pem' },
  acl: [],
};
const parse = (extra: Record<string, unknown>) =>
  parseServerConfig({ ...base, ...extra }, '/etc/regauth/serve.yml');

describe('admin config', () => {
  it('is off unless enabled, at /admin by default, its secret file resolved against the config', () => {
    expect(parse({}).admin).toBeUndefined();
    expect(
      parse({ admin: { enabled: true, bearer_token_file: 'admin.token', listen: '127.0.0.1:5002' } }).admin,
    ).toEqual({
      enabled: true,
      path: '/admin',
      bearerTokenFile: '/etc/regauth/admin.token',
      listen: { host: '127.0.0.1', port: 5002 },
    });
  });

  it('refuses an enabled endpoint without a secret, even on a listen address of its own', () => {
    expect(() => parse({ admin: { enabled: true, listen: '127.0.0.1:5002' } })).toThrow(
      /serve\.yml: admin: an enabled admin endpoint needs bearer_token_file/,
    );
  });

  it('refuses a path that shadows the token, health or metrics endpoints, and unknown keys', () => {
    expect(() => parse({ admin: { path: '/token' } })).toThrow(
      /admin\.path: "\/token" is not a free URL path/,
    );
    expect(() => parse({ admin: { path: '/admin/../x' } })).toThrow(/admin\.path/);
    expect(() =>
      parse({
        metrics: { enabled: true, bearer_token_file: 'm.token', path: '/ops/metrics' },
        admin: { path: '/ops' },
      }),
    ).toThrow(/admin\.path: "\/ops" is not a free URL path/);
    expect(() => parse({ admin: { enabled: 'yes' } })).toThrow(/admin\.enabled: must be true or false/);
    expect(() => parse({ admin: { secret: 'x' } })).toThrow(/admin\.secret: unknown key/);
  });
});
