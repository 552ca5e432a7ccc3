import { base64url, decodeJwt, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RegauthError } from '../src/errors/regauth-error.js';
import type { Authentication, Authenticator } from '../src/server/authenticator.js';
import { createOidcAuthenticator, type OidcAuthenticatorConfig } from '../src/server/oidc-authenticator.js';
import { type OidcIssuer, startOidcIssuer } from './harness/oidc-issuer.js';
import { makeLoopbackTls } from './harness/tls.js';

const AUDIENCE = 'https://registry.example.test';
const ADDRESS = '127.0.0.1';

interface Setup {
  readonly auth: Authenticator;
  readonly reasons: string[];
  /** Moves the authenticator's clock (ms). */
  advance(ms: number): void;
}

const opened: Authenticator[] = [];
const issuers: OidcIssuer[] = [];

async function issuerFor(options: Parameters<typeof startOidcIssuer>[0] = {}): Promise<OidcIssuer> {
  const issuer = await startOidcIssuer(options);
  issuers.push(issuer);
  return issuer;
}

function github(issuer: OidcIssuer, extra: Partial<OidcAuthenticatorConfig> = {}): Setup {
  const reasons: string[] = [];
  let offset = 0;
  const auth = createOidcAuthenticator({
    issuer: issuer.url,
    audience: AUDIENCE,
    user: 'github-actions',
    name: 'repo:${repository}',
    labels: { owner: 'repository_owner', ref: 'ref', environment: 'environment' },
    onRefused: (why) => reasons.push(why),
    now: () => Date.now() + offset,
    ...extra,
  });
  opened.push(auth);
  return {
    auth,
    reasons,
    advance(ms) {
      offset += ms;
    },
  };
}

function login(auth: Authenticator, password: string, user = 'github-actions'): Promise<Authentication> {
  return auth.authenticate({ user, password, address: ADDRESS });
}

afterEach(async () => {
  for (const auth of opened.splice(0)) await auth.close?.();
});

afterAll(async () => {
  for (const issuer of issuers.splice(0)) await issuer.close();
});

describe('OIDC authenticator: accepted tokens', () => {
  let issuer: OidcIssuer;
  beforeAll(async () => {
    issuer = await issuerFor();
  });

  it('accepts a GitHub Actions token and builds the identity from its claims', async () => {
    const { auth, reasons } = github(issuer);
    const token = await issuer.sign(issuer.github());
    const result = await login(auth, token);
    expect(reasons).toEqual([]);
    // Refusals are no guesses: per-user back-off must not lock out every job sharing the user name.
    expect(auth.unguessable).toBe(true);
    // The login is worth no more than the token: refresh tokens must not outlive it.
    expect(result.outcome === 'accepted' && result.expiresAt).toBe((decodeJwt(token).exp as number) * 1000);
    expect(result).toEqual({
      outcome: 'accepted',
      expiresAt: expect.any(Number),
      identity: {
        name: 'repo:octo-org/octo-repo',
        labels: { owner: ['octo-org'], ref: ['refs/heads/main'], environment: ['production'] },
      },
    });
  });

  it('leaves out a label whose claim the token lacks (a job without environment)', async () => {
    const { auth } = github(issuer);
    const claims = issuer.github();
    delete claims.environment;
    const result = await login(auth, await issuer.sign(claims));
    expect(result).toEqual({
      outcome: 'accepted',
      expiresAt: expect.any(Number),
      identity: {
        name: 'repo:octo-org/octo-repo',
        labels: { owner: ['octo-org'], ref: ['refs/heads/main'] },
      },
    });
  });

  it('accepts a GitLab CI token with labels from its claims and a template label', async () => {
    const { auth } = github(issuer, {
      user: 'gitlab-ci-token',
      name: '${project_path}',
      labels: {
        namespace: 'namespace_path',
        ref: 'ref',
        protected: 'ref_protected',
        where: '${namespace_path}@${ref_type}',
      },
    });
    const result = await login(auth, await issuer.sign(issuer.gitlab()), 'gitlab-ci-token');
    expect(result).toEqual({
      outcome: 'accepted',
      expiresAt: expect.any(Number),
      identity: {
        name: 'my-group/my-project',
        labels: { namespace: ['my-group'], ref: ['main'], protected: ['true'], where: ['my-group@branch'] },
      },
    });
  });

  it('accepts a Kubernetes service-account token, reading nested claims under kubernetes.io', async () => {
    const { auth } = github(issuer, {
      name: '${sub}',
      labels: { namespace: 'kubernetes.io.namespace', sa: 'kubernetes.io.serviceaccount.name' },
    });
    const result = await login(auth, await issuer.sign(issuer.kubernetes()));
    expect(result).toEqual({
      outcome: 'accepted',
      expiresAt: expect.any(Number),
      identity: {
        name: 'system:serviceaccount:builds:pusher',
        labels: { namespace: ['builds'], sa: ['pusher'] },
      },
    });
  });

  it('takes any user name when none is configured, and only the configured one otherwise', async () => {
    const token = await issuer.sign(issuer.github());
    const anyUser = createOidcAuthenticator({
      issuer: issuer.url,
      audience: AUDIENCE,
      name: 'repo:${repository}',
    });
    opened.push(anyUser);
    expect((await login(anyUser, token, 'whoever')).outcome).toBe('accepted');
    const { auth } = github(issuer);
    expect(await login(auth, token, 'alice')).toEqual({ outcome: 'unknown' });
  });

  it('leaves passwords that are not JWTs, and other issuers’ tokens, to the next authenticator', async () => {
    const other = await issuerFor();
    const { auth } = github(issuer);
    const before = { ...issuer.requests };
    for (const password of ['hunter2', 'a.b', 'x'.repeat(20_000), 'eyJ.eyJ.sig', `${'a'.repeat(10)}.!!.x`]) {
      expect(await login(auth, password)).toEqual({ outcome: 'unknown' });
    }
    expect(await login(auth, await other.sign(other.github()))).toEqual({ outcome: 'unknown' });
    // Nothing was fetched for them.
    expect(issuer.requests).toEqual(before);
    expect(other.requests).toEqual({ discovery: 0, jwks: 0 });
  });
});

describe('OIDC authenticator: refused tokens', () => {
  let issuer: OidcIssuer;
  beforeAll(async () => {
    issuer = await issuerFor();
  });

  it('refuses an expired token, and accepts one expired within the leeway', async () => {
    const { auth, reasons } = github(issuer, { leewaySeconds: 30 });
    expect(await login(auth, await issuer.sign(issuer.github(), { expiresIn: -120 }))).toEqual({
      outcome: 'refused',
    });
    expect(reasons).toEqual(['the token has expired']);
    expect((await login(auth, await issuer.sign(issuer.github(), { expiresIn: -5 }))).outcome).toBe(
      'accepted',
    );
  });

  it('refuses a token that is not valid yet', async () => {
    const { auth, reasons } = github(issuer);
    const token = await issuer.sign(issuer.github(), { notBefore: 600, expiresIn: 900 });
    expect(await login(auth, token)).toEqual({ outcome: 'refused' });
    expect(reasons).toEqual(['the token is not valid yet']);
  });

  it('refuses a token without exp', async () => {
    const { auth, reasons } = github(issuer);
    const token = await issuer.sign(issuer.github(), { noExp: true });
    expect(await login(auth, token)).toEqual({ outcome: 'refused' });
    expect(reasons).toEqual(["claim exp is not what this issuer's config accepts"]);
  });

  it('refuses a token for another audience', async () => {
    const { auth, reasons } = github(issuer);
    const token = await issuer.sign(issuer.github({ aud: 'https://other-registry.example.test' }));
    expect(await login(auth, token)).toEqual({ outcome: 'refused' });
    expect(reasons).toEqual(["claim aud is not what this issuer's config accepts"]);
  });

  it('refuses a token claiming this issuer but signed with another issuer’s keys', async () => {
    const foreign = await issuerFor();
    const { auth, reasons } = github(issuer);
    const ownKid = await foreign.sign({ ...foreign.github(), iss: issuer.url }, { kid: issuer.kid });
    expect(await login(auth, ownKid)).toEqual({ outcome: 'refused' });
    const foreignKid = await foreign.sign({ ...foreign.github(), iss: issuer.url });
    expect(await login(auth, foreignKid)).toEqual({ outcome: 'refused' });
    expect(reasons).toEqual([
      'the signature does not verify',
      "no key of the issuer's key set matches the token's kid",
    ]);
    expect(foreign.requests).toEqual({ discovery: 0, jwks: 0 });
  });

  it('refuses alg none', async () => {
    const { auth, reasons } = github(issuer);
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const now = Math.floor(Date.now() / 1000);
    const payload = base64url.encode(
      JSON.stringify({ ...issuer.github(), iss: issuer.url, iat: now, exp: now + 300 }),
    );
    expect(await login(auth, `${header}.${payload}.`)).toEqual({ outcome: 'refused' });
    expect(reasons).toEqual(['the token is signed with an algorithm that is not accepted']);
  });

  it('refuses HS256 "signed" with the issuer’s public key (algorithm confusion)', async () => {
    const { auth, reasons } = github(issuer);
    const secret = new TextEncoder().encode(await issuer.publicKeyPem());
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ ...issuer.github(), iss: issuer.url, iat: now, exp: now + 300 })
      .setProtectedHeader({ alg: 'HS256', kid: issuer.kid })
      .sign(secret);
    expect(await login(auth, token)).toEqual({ outcome: 'refused' });
    expect(reasons).toEqual(['the token is signed with an algorithm that is not accepted']);
  });

  it('refuses a tampered payload', async () => {
    const { auth, reasons } = github(issuer);
    const [header, , signature] = (await issuer.sign(issuer.github())).split('.');
    const now = Math.floor(Date.now() / 1000);
    const forged = base64url.encode(
      JSON.stringify({
        ...issuer.github({ repository: 'victim-org/prod' }),
        iss: issuer.url,
        iat: now,
        exp: now + 300,
      }),
    );
    expect(await login(auth, `${header}.${forged}.${signature}`)).toEqual({ outcome: 'refused' });
    expect(reasons).toEqual(['the signature does not verify']);
  });
});

describe('OIDC authenticator: key fetching', () => {
  it('fetches discovery and keys once for many logins', async () => {
    const issuer = await issuerFor();
    const { auth } = github(issuer);
    const tokens = await Promise.all(Array.from({ length: 5 }, () => issuer.sign(issuer.github())));
    const results = await Promise.all(tokens.map((t) => login(auth, t)));
    for (const t of tokens) expect((await login(auth, t)).outcome).toBe('accepted');
    expect(results.map((r) => r.outcome)).toEqual(Array(5).fill('accepted'));
    expect(issuer.requests).toEqual({ discovery: 1, jwks: 1 });
  });

  it('refetches once for an unknown kid, then not again within the cooldown', async () => {
    const issuer = await issuerFor();
    const { auth, reasons, advance } = github(issuer, { refreshCooldownMs: 30_000 });
    expect((await login(auth, await issuer.sign(issuer.github()))).outcome).toBe('accepted');
    expect(issuer.requests.jwks).toBe(1);
    for (let i = 0; i < 20; i += 1) {
      const bogus = await issuer.sign(issuer.github(), { kid: `bogus-${i}` });
      expect(await login(auth, bogus)).toEqual({ outcome: 'refused' });
    }
    // The first bogus kid cost one fetch; the other 19 none.
    expect(issuer.requests.jwks).toBe(2);
    expect(new Set(reasons)).toEqual(new Set(["no key of the issuer's key set matches the token's kid"]));
    advance(31_000);
    expect(await login(auth, await issuer.sign(issuer.github(), { kid: 'bogus-late' }))).toEqual({
      outcome: 'refused',
    });
    expect(issuer.requests.jwks).toBe(3);
  });

  it('picks up a rotated key (new kid) with one fetch; old tokens keep working while published', async () => {
    const issuer = await issuerFor();
    const { auth } = github(issuer);
    const old = await issuer.sign(issuer.github());
    expect((await login(auth, old)).outcome).toBe('accepted');
    await issuer.rotate();
    const rotated = await issuer.sign(issuer.github());
    expect((await login(auth, rotated)).outcome).toBe('accepted');
    expect((await login(auth, old)).outcome).toBe('accepted');
    expect(issuer.requests).toEqual({ discovery: 1, jwks: 2 });
  });

  it('drops a withdrawn key once the cached keys are older than their max age', async () => {
    const issuer = await issuerFor();
    // A clock that stands still between steps: keys fetched in the millisecond a login began are
    // as fresh as can be, and must not be fetched again for that login's unknown kid.
    const base = Date.now();
    let offset = 0;
    const { auth } = github(issuer, { keysMaxAgeMs: 60_000, now: () => base + offset });
    const old = await issuer.sign(issuer.github(), { expiresIn: 600 });
    expect((await login(auth, old)).outcome).toBe('accepted');
    await issuer.rotate({ dropOld: true });
    expect((await login(auth, old)).outcome).toBe('accepted');
    offset += 61_000;
    expect(await login(auth, old)).toEqual({ outcome: 'refused' });
    expect(issuer.requests.jwks).toBe(2);
  });

  it('keeps using fetched keys while the issuer is down', async () => {
    const issuer = await issuerFor();
    const { auth, advance } = github(issuer, { keysMaxAgeMs: 60_000 });
    const token = await issuer.sign(issuer.github(), { expiresIn: 600 });
    expect((await login(auth, token)).outcome).toBe('accepted');
    issuer.behave('error');
    advance(61_000);
    expect((await login(auth, token)).outcome).toBe('accepted');
  });

  it('throws a clear error when the issuer answers 500, and does not ask again at once', async () => {
    const issuer = await issuerFor();
    issuer.behave('error');
    const { auth } = github(issuer);
    const token = await issuer.sign(issuer.github());
    const errors: unknown[] = [];
    for (let i = 0; i < 5; i += 1) errors.push(await login(auth, token).catch((e: unknown) => e));
    for (const error of errors) {
      expect(error).toBeInstanceOf(RegauthError);
      expect((error as RegauthError).message).toContain(
        `OIDC issuer ${issuer.url}: cannot fetch its discovery document`,
      );
      expect((error as RegauthError).message).toContain('HTTP 500');
      expect((error as RegauthError).message).not.toContain(token.split('.')[1]);
    }
    expect(issuer.requests.discovery).toBe(1);
  });

  it('throws a clear error when the issuer is not listening', async () => {
    const issuer = await startOidcIssuer();
    const token = await issuer.sign(issuer.github());
    await issuer.close();
    const { auth } = github(issuer);
    const error = await login(auth, token).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegauthError);
    expect((error as RegauthError).code).toBe('ERR_NETWORK');
    expect((error as RegauthError).message).toMatch(/cannot fetch its discovery document .*ECONNREFUSED/);
  });

  it('gives up on an issuer that does not answer, within the fetch timeout', async () => {
    const issuer = await issuerFor();
    issuer.behave('hang');
    const { auth } = github(issuer, { fetchTimeoutMs: 300 });
    const error = await login(auth, await issuer.sign(issuer.github())).catch((e: unknown) => e);
    expect((error as RegauthError).code).toBe('ERR_NETWORK');
    expect((error as RegauthError).message).toContain('no answer within 300 ms');
  });

  it('stops reading an endless discovery document', async () => {
    const issuer = await issuerFor({ hugeBytes: 8 * 1024 * 1024 });
    issuer.behave('huge');
    const { auth } = github(issuer);
    const error = await login(auth, await issuer.sign(issuer.github())).catch((e: unknown) => e);
    expect((error as RegauthError).code).toBe('ERR_TOO_LARGE');
  });

  it('refuses a discovery document naming another issuer, or keys on another host', async () => {
    const elsewhere = await issuerFor();
    const liar = await issuerFor({ discoveryIssuer: elsewhere.url });
    const err1 = await login(github(liar).auth, await liar.sign(liar.github())).catch((e: unknown) => e);
    expect((err1 as RegauthError).message).toContain('names another issuer');
    const redirector = await issuerFor({ jwksUri: `${elsewhere.url}/.well-known/jwks` });
    const err2 = await login(github(redirector).auth, await redirector.sign(redirector.github())).catch(
      (e: unknown) => e,
    );
    expect((err2 as RegauthError).message).toContain('"jwks_uri" is on another host than the issuer');
    expect(elsewhere.requests).toEqual({ discovery: 0, jwks: 0 });
  });

  it('uses a configured jwks_uri without discovery', async () => {
    const issuer = await issuerFor();
    const { auth } = github(issuer, { jwksUri: `${issuer.url}/.well-known/jwks` });
    expect((await login(auth, await issuer.sign(issuer.github()))).outcome).toBe('accepted');
    expect(issuer.requests).toEqual({ discovery: 0, jwks: 1 });
  });

  it('fetches over HTTPS from an issuer whose certificate a configured CA signed, and not without it', async () => {
    const tls = await makeLoopbackTls();
    const issuer = await issuerFor({ tls, path: '/tenant-1' });
    const token = await issuer.sign(issuer.github());
    expect((await login(github(issuer, { ca: tls.caPem }).auth, token)).outcome).toBe('accepted');
    const error = await login(github(issuer).auth, token).catch((e: unknown) => e);
    expect((error as RegauthError).code).toBe('ERR_NETWORK');
  });

  it('refuses plain-http issuers that are not on loopback', () => {
    expect(() =>
      createOidcAuthenticator({ issuer: 'http://issuer.example.test', audience: AUDIENCE, name: '${sub}' }),
    ).toThrow(/must be an https:\/\/ URL/);
  });
});

describe('OIDC authenticator: hostile claims', () => {
  let issuer: OidcIssuer;
  beforeAll(async () => {
    issuer = await issuerFor();
  });

  const cases: [string, Record<string, unknown>, string][] = [
    [
      'a huge repository',
      { repository: `octo-org/${'r'.repeat(1000)}` },
      'claim repository is over 255 characters',
    ],
    [
      'a newline in repository',
      { repository: 'octo-org/app\n{"msg":"forged"}' },
      'claim repository holds a control character',
    ],
    ['a NUL in a label', { ref: 'refs/heads/main\u0000' }, 'claim ref holds a control character'],
    ['a line separator', { environment: 'prod\u2028x' }, 'claim environment holds a control character'],
    [
      'a glob in repository',
      { repository: 'octo-org/*' },
      'claim repository holds a pattern character (* ? [ ] \\)',
    ],
    [
      'a glob in a label',
      { repository_owner: '*' },
      'claim repository_owner holds a pattern character (* ? [ ] \\)',
    ],
    ['a regex class', { ref: 'refs/heads/[a-z]' }, 'claim ref holds a pattern character (* ? [ ] \\)'],
    ['an object for a string', { repository: { toString: 'x' } }, 'claim repository is not a string'],
    ['a number for a string', { repository_owner: 7 }, 'claim repository_owner is not a string'],
    ['an empty repository', { repository: '' }, 'claim repository is empty'],
    ['no repository', { repository: undefined }, 'claim repository is missing'],
    [
      'too many label values',
      { ref: Array.from({ length: 100 }, (_, i) => `r${i}`) },
      'claim ref has over 64 values',
    ],
  ];

  for (const [what, overrides, reason] of cases) {
    it(`refuses a token with ${what}`, async () => {
      const { auth, reasons } = github(issuer);
      const token = await issuer.sign(issuer.github(overrides));
      expect(await login(auth, token)).toEqual({ outcome: 'refused' });
      expect(reasons).toEqual([reason]);
    });
  }

  it('never expands a placeholder a claim value carries', async () => {
    const { auth } = github(issuer);
    const token = await issuer.sign(issuer.github({ repository: '${repository_owner}' }));
    expect(await login(auth, token)).toMatchObject({
      outcome: 'accepted',
      expiresAt: expect.any(Number),
      identity: { name: 'repo:${repository_owner}' },
    });
  });

  it('puts neither the token nor a claim value into reasons or errors', async () => {
    const { auth, reasons } = github(issuer);
    const secretish = 'leak-me-7f3a';
    const tokens = [
      await issuer.sign(issuer.github({ repository: `${secretish}\n` })),
      await issuer.sign(issuer.github({ aud: secretish })),
      await issuer.sign(issuer.github(), { expiresIn: -3600 }),
      await issuer.sign(issuer.github(), { kid: secretish }),
    ];
    for (const token of tokens) expect((await login(auth, token)).outcome).toBe('refused');
    const text = reasons.join('\n');
    expect(text).not.toContain(secretish);
    for (const token of tokens) {
      for (const part of token.split('.')) expect(text).not.toContain(part);
    }
  });
});
