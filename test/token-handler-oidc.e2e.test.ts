import { decodeJwt } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../src/server/authenticator.js';
import { createLdapAuthenticator } from '../src/server/ldap-authenticator.js';
import { createOidcAuthenticator } from '../src/server/oidc-authenticator.js';
import { testKeyPair } from '../src/server/testing/fixtures.js';
import { createTokenHandler, type TokenHandler } from '../src/server/token-handler.js';
import type { TokenHandlerConfig } from '../src/server/token-handler-config.js';
import type { ServerLogEntry } from '../src/server/token-server.js';
import { type OidcIssuer, startOidcIssuer } from './harness/oidc-issuer.js';
import { freePort } from './harness/processes.js';

const SERVICE = 'oidc-registry';
const AUDIENCE = 'https://registry.example.test';
const ADDRESS = '127.0.0.9';
const SCOPE = 'repository:octo-org/app:pull,push';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** One clock for the handler and the authenticator, moved by the tests. */
const clock = { offset: 0, now: () => Date.now() + clock.offset };

let issuer: OidcIssuer;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  issuer = await startOidcIssuer();
});
afterAll(async () => {
  await issuer?.close();
});
afterEach(async () => {
  clock.offset = 0;
  issuer.behave('ok');
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function oidc(): Authenticator {
  return createOidcAuthenticator({
    issuer: issuer.url,
    audience: AUDIENCE,
    user: 'github-actions',
    name: 'repo:${repository}',
    labels: { owner: 'repository_owner' },
    now: clock.now,
  });
}

async function handler(
  authenticators: readonly Authenticator[],
  extra: Partial<TokenHandlerConfig> = {},
  log: ServerLogEntry[] = [],
): Promise<TokenHandler> {
  const pair = await testKeyPair();
  const tokens = await createTokenHandler(
    {
      token: {
        issuer: 'oidc-test',
        service: SERVICE,
        key: { pem: pair.keyPem },
        certificate: { pem: pair.certPem },
        expiration: 300,
      },
      authenticators,
      acl: [{ match: { account: 'repo:*' }, actions: ['pull', 'push'] }],
      ...extra,
    },
    { now: clock.now, log: (entry) => log.push(entry) },
  );
  cleanups.push(() => tokens.close());
  return tokens;
}

async function ask(
  tokens: TokenHandler,
  user: string,
  password: string,
  query = `service=${SERVICE}&scope=${SCOPE}`,
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const response = await tokens.fetch(
    new Request(`http://127.0.0.1/token?${query}`, { headers: { authorization: basic(user, password) } }),
    { address: ADDRESS },
  );
  if (response === undefined) throw new Error('the handler did not answer /token');
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

const ciToken = (expiresIn: number) =>
  issuer.sign(issuer.github({ aud: AUDIENCE, repository: 'octo-org/app' }), { expiresIn });

describe('an OIDC identity never outlives its CI token', () => {
  it("caps the access token's exp at the CI token's exp", async () => {
    const tokens = await handler([oidc()]);
    const ci = await ciToken(90);
    const ciExp = decodeJwt(ci).exp as number;
    const answer = await ask(tokens, 'github-actions', ci);
    expect(answer.status).toBe(200);
    const exp = decodeJwt(answer.body.token as string).exp as number;
    expect(exp).toBeLessThanOrEqual(ciExp);
    expect(exp).toBeGreaterThan(ciExp - 30);
    expect(answer.body.expires_in).toBeLessThanOrEqual(90);
  });

  it('issues no refresh token for it, even when asked for an offline token', async () => {
    const tokens = await handler([oidc()]);
    const answer = await ask(
      tokens,
      'github-actions',
      await ciToken(240),
      `service=${SERVICE}&scope=${SCOPE}&offline_token=true`,
    );
    expect(answer.status).toBe(200);
    expect(answer.body.refresh_token).toBeUndefined();
  });

  it('does not keep the login in the verified cache past the CI token expiry', async () => {
    const tokens = await handler([oidc()], { users: { entries: '', cacheSeconds: 3600 } });
    const ci = await ciToken(120);
    expect((await ask(tokens, 'github-actions', ci)).status).toBe(200);
    // Ten minutes on: the CI token expired long ago (beyond any leeway), the cache's hour has not.
    clock.offset = 600_000;
    const later = await ask(tokens, 'github-actions', ci);
    expect(later.status).toBe(401);
  });
});

describe('per-user back-off and OIDC', () => {
  it('lets junk tokens sent as github-actions not lock out a valid CI token', async () => {
    const tokens = await handler([oidc()], { limits: { loginFailures: 3, addressFailures: 0 } });
    const forged = `${(await ciToken(300)).slice(0, -8)}AAAAAAAA`;
    for (let i = 0; i < 5; i++) {
      const junk = await ask(tokens, 'github-actions', i % 2 === 0 ? `junk-${i}` : forged);
      expect(junk.status).toBe(401);
    }
    const valid = await ask(tokens, 'github-actions', await ciToken(300));
    expect(valid.status).toBe(200);
  });

  it("still spends the address's failure budget", async () => {
    const tokens = await handler([oidc()], { limits: { addressFailures: 3 } });
    for (let i = 0; i < 3; i++) expect((await ask(tokens, 'github-actions', `junk-${i}`)).status).toBe(401);
    const spent = await ask(tokens, 'github-actions', await ciToken(300));
    expect(spent.status).toBe(429);
    expect(spent.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
  });
});

describe('a backend that is down answers 503 with Retry-After', () => {
  it('OIDC: the issuer answers errors for its discovery document and keys', async () => {
    const log: ServerLogEntry[] = [];
    const tokens = await handler([oidc()], {}, log);
    issuer.behave('error');
    const answer = await ask(tokens, 'github-actions', await ciToken(300));
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    expect(log).toContainEqual(
      expect.objectContaining({ msg: 'token', outcome: 'unavailable', status: 503 }),
    );
  });

  it('LDAP: nothing listens where the directory should be', async () => {
    const port = await freePort();
    const ldap = await createLdapAuthenticator({
      url: `ldap://127.0.0.1:${port}`,
      baseDn: 'ou=people,dc=regauth,dc=test',
      timeoutSeconds: 2,
    });
    const tokens = await handler([ldap]);
    const answer = await ask(tokens, 'alice', 'alice-pw');
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
  });
});
