import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { RegauthError } from '../errors/regauth-error.js';
import { compileClaimTemplate, lookupClaim } from './oidc-claim-template.js';
import { parseOidcConfig } from './oidc-config.js';
import { ConfigReader } from './server-config.js';

const reader = new ConfigReader('/etc/regauth/serve.yml', '/etc/regauth');
const PATH = 'authn[1].oidc';

function parse(raw: unknown) {
  return parseOidcConfig(reader, raw, PATH);
}

function failure(raw: unknown): string {
  try {
    parse(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(RegauthError);
    expect((error as RegauthError).code).toBe('ERR_INVALID_CONFIG');
    return (error as Error).message;
  }
  throw new Error('expected a config error');
}

const GITHUB = {
  issuer: 'https://token.actions.githubusercontent.com',
  audience: 'https://registry.example.com',
  user: 'github-actions',
  name: 'repo:${repository}',
  labels: { owner: 'repository_owner', ref: 'ref', environment: 'environment' },
};

describe('parseOidcConfig', () => {
  it('reads a GitHub Actions entry with defaults filled in', () => {
    expect(parse(GITHUB)).toEqual({
      issuer: 'https://token.actions.githubusercontent.com',
      audience: 'https://registry.example.com',
      user: 'github-actions',
      name: 'repo:${repository}',
      labels: { owner: 'repository_owner', ref: 'ref', environment: 'environment' },
      leewaySeconds: 30,
    });
  });

  it('reads the optional keys; ca_file resolves against the config folder', () => {
    expect(
      parse({
        issuer: 'https://kubernetes.default.svc',
        audience: ['registry', 'registry-2'],
        name: '${sub}',
        leeway_seconds: 0,
        algorithms: ['RS256'],
        jwks_uri: 'https://10.0.0.1:6443/openid/v1/jwks',
        ca_file: 'cluster-ca.pem',
      }),
    ).toEqual({
      issuer: 'https://kubernetes.default.svc',
      audience: ['registry', 'registry-2'],
      name: '${sub}',
      labels: {},
      leewaySeconds: 0,
      algorithms: ['RS256'],
      jwksUri: 'https://10.0.0.1:6443/openid/v1/jwks',
      caFile: '/etc/regauth/cluster-ca.pem',
    });
  });

  it.each([
    [{ ...GITHUB, issuer: undefined }, 'authn[1].oidc.issuer: must be a non-empty string'],
    [{ ...GITHUB, issuer: 'http://issuer.example.com' }, 'authn[1].oidc.issuer: must be an https:// URL'],
    [
      { ...GITHUB, issuer: 'https://u:p@issuer.example.com' },
      'authn[1].oidc.issuer: must not hold a user name',
    ],
    [{ ...GITHUB, audience: undefined }, 'authn[1].oidc.audience: must be the audience'],
    [{ ...GITHUB, audience: [] }, 'authn[1].oidc.audience: must be the audience'],
    [{ ...GITHUB, audience: ['ok', 3] }, 'authn[1].oidc.audience: must be the audience'],
    [{ ...GITHUB, name: undefined }, 'authn[1].oidc.name: must be a non-empty string'],
    [{ ...GITHUB, name: 'ci' }, 'authn[1].oidc.name: names no claim'],
    [{ ...GITHUB, name: 'repo:${repository' }, 'authn[1].oidc.name: a "${" is not closed'],
    [{ ...GITHUB, name: 'repo:${ }' }, 'authn[1].oidc.name: "${ }" does not name a claim'],
    [{ ...GITHUB, name: '*:${repository}' }, 'authn[1].oidc.name: holds a control or pattern character'],
    [{ ...GITHUB, labels: ['owner'] }, 'authn[1].oidc.labels: must be a mapping'],
    [{ ...GITHUB, labels: { owner: 3 } }, 'authn[1].oidc.labels.owner: must be a claim name'],
    [
      { ...GITHUB, labels: { owner: 'repo owner' } },
      'authn[1].oidc.labels.owner: "repo owner" is not a claim name',
    ],
    [{ ...GITHUB, labels: { 'bad label': 'ref' } }, 'authn[1].oidc.labels.bad label: a label name is'],
    [{ ...GITHUB, labels: { where: '${ref' } }, 'authn[1].oidc.labels.where: a "${" is not closed'],
    [{ ...GITHUB, leeway_seconds: 61 }, 'authn[1].oidc.leeway_seconds: must be at most 60'],
    [{ ...GITHUB, leeway_seconds: -1 }, 'authn[1].oidc.leeway_seconds: must be a whole number of at least 0'],
    [{ ...GITHUB, algorithms: ['HS256'] }, 'authn[1].oidc.algorithms: must be a list of some of RS256'],
    [{ ...GITHUB, algorithms: ['none'] }, 'authn[1].oidc.algorithms:'],
    [{ ...GITHUB, algorithms: [] }, 'authn[1].oidc.algorithms:'],
    [
      { ...GITHUB, jwks_uri: 'http://keys.example.com/jwks' },
      'authn[1].oidc.jwks_uri: must be an https:// URL',
    ],
    [{ ...GITHUB, secret: 'x' }, 'authn[1].oidc.secret: unknown key'],
    ['https://issuer', 'authn[1].oidc: must be a mapping'],
  ])('names the key of a bad entry (%#)', (raw, message) => {
    expect(failure(raw)).toContain(`/etc/regauth/serve.yml: ${message}`);
  });

  it('allows plain http to a loopback issuer only', () => {
    expect(parse({ ...GITHUB, issuer: 'http://127.0.0.1:8080' }).issuer).toBe('http://127.0.0.1:8080');
    expect(parse({ ...GITHUB, issuer: 'http://[::1]:8080' }).issuer).toBe('http://[::1]:8080');
    expect(failure({ ...GITHUB, issuer: 'http://127.example.com' })).toContain('must be an https:// URL');
  });
});

describe("the README's OIDC sample", () => {
  it('parses every oidc entry, and each makes an authenticator', async () => {
    const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');
    const at = readme.indexOf('### CI workload identity (OIDC)');
    const block = /```yaml\n([\s\S]*?)```/.exec(readme.slice(at))?.[1];
    const doc = parseYaml(block ?? '') as { authn: { oidc: unknown }[] };
    expect(doc.authn).toHaveLength(3);
    const { createOidcAuthenticator } = await import('./oidc-authenticator.js');
    const configs = doc.authn.map((entry, i) => parse_(entry.oidc, `authn[${i}].oidc`));
    expect(configs.map((c) => c.name)).toEqual(['repo:${repository}', '${project_path}', '${sub}']);
    // The cluster CA file does not exist here; the other two make authenticators.
    for (const config of configs.slice(0, 2)) {
      const auth = createOidcAuthenticator(config);
      expect(auth.kind).toBe('oidc');
      await auth.close?.();
    }
    expect(() =>
      createOidcAuthenticator(configs[2] as Parameters<typeof createOidcAuthenticator>[0]),
    ).toThrow(/cannot read ca_file \/etc\/regauth\/cluster-ca.pem: ENOENT/);
  });
});

function parse_(raw: unknown, path: string) {
  return parseOidcConfig(reader, raw, path);
}

describe('claim templates', () => {
  it('finds dotted keys by the longest match, and steps into objects', () => {
    const payload = {
      'kubernetes.io': { namespace: 'builds', serviceaccount: { name: 'pusher' } },
      a: { b: 1 },
    };
    expect(lookupClaim(payload, 'kubernetes.io.namespace')).toBe('builds');
    expect(lookupClaim(payload, 'kubernetes.io.serviceaccount.name')).toBe('pusher');
    expect(lookupClaim(payload, 'a.b')).toBe(1);
    expect(lookupClaim(payload, 'a.c')).toBeUndefined();
    expect(lookupClaim(payload, 'toString')).toBeUndefined();
    expect(lookupClaim(payload, '__proto__')).toBeUndefined();
  });

  it('renders each placeholder once, never expanding what a claim value holds', () => {
    const template = compileClaimTemplate('${namespace_path}/${ref}', 'name');
    expect(template.claims).toEqual(['namespace_path', 'ref']);
    expect(template.render({ namespace_path: '${ref}', ref: 'main' })).toBe('${ref}/main');
  });
});
