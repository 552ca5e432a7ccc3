import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { createLdapAuthenticator, isLoopbackHost } from './ldap-authenticator.js';
import { parseLdapConfig } from './ldap-config.js';
import { ConfigReader } from './server-config.js';

const FILE = '/etc/regauth/serve.yml';
const PATH = 'authn[1].ldap';
const reader = new ConfigReader(FILE, '/etc/regauth');

function minimal(): Record<string, unknown> {
  return {
    url: 'ldaps://ldap.example.org',
    bind_dn: 'cn=svc,dc=example,dc=org',
    bind_password_file: 'ldap-password',
    base_dn: 'ou=people,dc=example,dc=org',
  };
}

function configError(raw: unknown): string {
  try {
    parseLdapConfig(reader, raw, PATH);
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    expect((err as RegauthError).code).toBe('ERR_INVALID_CONFIG');
    return (err as RegauthError).message;
  }
  throw new Error('expected ERR_INVALID_CONFIG, but the config was accepted');
}

describe('parseLdapConfig', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regauth-ldap-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('maps the YAML keys, with defaults and paths resolved against the config folder', () => {
    const config = parseLdapConfig(
      reader,
      {
        ...minimal(),
        ca_file: 'ca.pem',
        user_filter: '(sAMAccountName=${user})',
        name_attribute: 'sAMAccountName',
        labels: {
          group: { attribute: 'memberOf', cn_only: true },
          team: { search: { base_dn: 'ou=teams,dc=example,dc=org', filter: '(member=${dn})' } },
        },
        timeout_seconds: 2.5,
      },
      PATH,
    );
    expect(config).toMatchObject({
      url: 'ldaps://ldap.example.org',
      ca: { file: '/etc/regauth/ca.pem' },
      bindDn: 'cn=svc,dc=example,dc=org',
      baseDn: 'ou=people,dc=example,dc=org',
      userFilter: '(sAMAccountName=${user})',
      nameAttribute: 'sAMAccountName',
      labels: {
        group: { attribute: 'memberOf', cnOnly: true },
        team: { search: { baseDn: 'ou=teams,dc=example,dc=org', filter: '(member=${dn})', attribute: 'cn' } },
      },
      timeoutSeconds: 2.5,
      source: `${FILE}: ${PATH}`,
    });
    expect(typeof config.bindPassword).toBe('function');
    expect(parseLdapConfig(reader, { url: 'ldap://127.0.0.1:389', base_dn: 'dc=x' }, PATH)).toMatchObject({
      userFilter: '(uid=${user})',
      timeoutSeconds: 10,
      labels: {},
    });
  });

  it('names the key path of each mistake', () => {
    expect(configError({ ...minimal(), url: 'ldap://ldap.example.org' })).toMatch(
      `${FILE}: ${PATH}.url: ldap.example.org would get passwords in plain text`,
    );
    expect(configError({ ...minimal(), url: 'http://ldap.example.org' })).toContain(
      `${PATH}.url: must start`,
    );
    expect(configError({ ...minimal(), url: 'ldaps://h/dc=x?uid' })).toContain(`${PATH}.url: give only`);
    expect(configError({ ...minimal(), start_tls: true })).toContain(`${PATH}.start_tls`);
    expect(configError({ ...minimal(), start_tls: 'yes' })).toContain(
      `${PATH}.start_tls: must be true or false`,
    );
    expect(configError({ ...minimal(), url: 'ldap://127.0.0.1', ca_file: 'ca.pem' })).toContain(
      `${PATH}.ca_file`,
    );
    expect(configError({ ...minimal(), bind_password: 'x' })).toContain(`${PATH}.bind_password: unknown key`);
    expect(configError({ ...minimal(), bind_password_file: undefined })).toContain(`${PATH}.bind_dn: needs`);
    expect(configError({ ...minimal(), bind_password_env: 'LDAP_PW' })).toContain(
      `${PATH}.bind_password_env`,
    );
    expect(configError({ ...minimal(), bind_dn: undefined })).toContain(`${PATH}.bind_dn: missing`);
    expect(configError({ ...minimal(), base_dn: undefined })).toContain(`${PATH}.base_dn`);
    expect(configError({ ...minimal(), user_filter: '(uid=alice)' })).toContain(
      `${PATH}.user_filter: must use`,
    );
    expect(configError({ ...minimal(), user_filter: 'uid=${user}' })).toContain(`${PATH}.user_filter`);
    expect(configError({ ...minimal(), user_filter: '(&(uid=${user})(x=${dn}))' })).toContain(
      `${PATH}.user_filter: unknown placeholder \${dn}`,
    );
    // The name must be compared with one attribute, whose value then must be the name exactly.
    expect(configError({ ...minimal(), user_filter: '(|(uid=*${user}*)(mail=x))' })).toContain(
      `${PATH}.user_filter: must compare one attribute with the login name`,
    );
    expect(configError({ ...minimal(), timeout_seconds: 0 })).toContain(`${PATH}.timeout_seconds`);
    expect(configError({ ...minimal(), labels: { group: { attribute: 'memberOf', cn_only: 1 } } })).toContain(
      `${PATH}.labels.group.cn_only`,
    );
    expect(
      configError({ ...minimal(), labels: { group: { search: { filter: '(member=${dn})' } } } }),
    ).toContain(`${PATH}.labels.group.search.base_dn`);
    expect(configError({ ...minimal(), labels: { 'bad name': { attribute: 'memberOf' } } })).toContain(
      `${PATH}.labels.bad name`,
    );
    expect(configError('ldap://x')).toContain(`${PATH}: must be a mapping`);
  });

  it('allows plain text to a remote server only with insecure: true', () => {
    expect(
      parseLdapConfig(reader, { ...minimal(), url: 'ldap://ldap.example.org', insecure: true }, PATH),
    ).toMatchObject({ insecure: true });
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '[::1]']) {
      expect(parseLdapConfig(reader, { ...minimal(), url: `ldap://${host}:389` }, PATH).url).toContain(host);
    }
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
    expect(isLoopbackHost('127.0.0.1.example.org')).toBe(false);
    expect(isLoopbackHost('::ffff:10.0.0.1')).toBe(false);
  });

  it('reads the bind password from a file or the environment, and says which key when it cannot', async () => {
    const file = join(dir, 'password');
    await writeFile(file, 's3cret-bind\n');
    const fromFile = parseLdapConfig(reader, { ...minimal(), bind_password_file: file }, PATH);
    expect(await (fromFile.bindPassword as () => Promise<string>)()).toBe('s3cret-bind');

    const missing = parseLdapConfig(reader, { ...minimal(), bind_password_file: join(dir, 'nope') }, PATH);
    await expect((missing.bindPassword as () => Promise<string>)()).rejects.toThrow(
      `${PATH}.bind_password_file`,
    );
    await expect(createLdapAuthenticator(missing)).rejects.toThrow(`${PATH}.bind_password_file`);

    const name = 'REGAUTH_TEST_LDAP_BIND_PASSWORD';
    const fromEnv = parseLdapConfig(
      reader,
      { ...minimal(), bind_password_file: undefined, bind_password_env: name },
      PATH,
    );
    await expect((fromEnv.bindPassword as () => Promise<string>)()).rejects.toThrow(
      `${PATH}.bind_password_env: the environment variable ${name} is not set`,
    );
    process.env[name] = 'from-env';
    try {
      expect(await (fromEnv.bindPassword as () => Promise<string>)()).toBe('from-env');
    } finally {
      delete process.env[name];
    }
  });

  it('refuses an empty bind password at start-up: it would be an anonymous bind', async () => {
    const err = await createLdapAuthenticator({
      url: 'ldap://127.0.0.1:1',
      bindDn: 'cn=svc',
      bindPassword: '',
      baseDn: 'dc=x',
    }).then(
      () => undefined,
      (e: unknown) => e as RegauthError,
    );
    expect(err?.code).toBe('ERR_INVALID_CONFIG');
    expect(err?.message).toContain('the bind password is empty');
  });
});
