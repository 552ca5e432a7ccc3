import { decodeJwt } from 'jose';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { compileAcl } from './acl.js';
import { createAclAuthorizer } from './acl-authorizer.js';
import type { Authenticator, AuthorizationContext, Authorizer, Identity } from './authenticator.js';
import { UserStore } from './htpasswd.js';
import { createHtpasswdAuthenticator } from './htpasswd-authenticator.js';
import { KeyedDigest } from './keyed-digest.js';
import { PasswordGuard } from './password-guard.js';
import { htpasswdLine, testSigning } from './testing/fixtures.js';
import { TokenIssuer } from './token-issuer.js';
import { TokenReuse } from './token-reuse.js';
import {
  createTokenService,
  type TokenLogEntry,
  type TokenRequest,
  type TokenResponse,
} from './token-service.js';

const PASSWORDS = { alice: 'alice-pw', admin: 'admin-pw' };
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function setup(options: { failures?: number; service?: string; reuse?: boolean } = {}) {
  const clock = { now: 1_700_000_000_000 };
  const signing = await testSigning();
  const issuer = new TokenIssuer({
    signing,
    issuer: 'unit-issuer',
    expiration: 300,
    refreshExpiration: 3600,
  });
  const text = Object.entries(PASSWORDS)
    .map(([u, p]) => htpasswdLine(u, p))
    .join('\n');
  const state = { users: await UserStore.fromText(text, 'users.htpasswd') };
  const logs: TokenLogEntry[] = [];
  const digest = new KeyedDigest(Buffer.alloc(32, 7));
  const acl = compileAcl([
    { match: { account: 'admin' }, actions: ['*'] },
    { match: { account: '/.+/', name: '${account}/*' }, actions: ['pull', 'push', 'delete'] },
    { match: { account: '', name: 'public/**' }, actions: ['pull'] },
  ]);
  const handle = createTokenService({
    service: options.service ?? 'unit-registry',
    maxScopes: 4,
    authorizer: () => createAclAuthorizer(acl),
    guard: new PasswordGuard({
      authenticators: () => [createHtpasswdAuthenticator(() => state.users)],
      cacheSeconds: 60,
      loginFailures: options.failures ?? 3,
      loginWindow: 300,
      backoffMaxSeconds: 300,
      addressFailures: 30,
      passwordChecks: 4,
      passwordQueue: 32,
      checksPerAddress: 4,
      digest,
      now: () => clock.now,
    }),
    issuer,
    ...(options.reuse ? { reuse: new TokenReuse(5, () => clock.now) } : {}),
    log: (e) => logs.push(e),
  });
  const get = (params: Record<string, string | string[]>, authorization?: string, address = '10.0.0.1') => {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const one of [v].flat()) query.append(k, one);
    const req: TokenRequest = { method: 'GET', query, address, ...(authorization ? { authorization } : {}) };
    return handle(req);
  };
  const post = (
    form: Record<string, string | string[]>,
    contentType = 'application/x-www-form-urlencoded',
    address = '10.0.0.1',
  ) => {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) for (const one of [v].flat()) body.append(k, one);
    return handle({
      method: 'POST',
      query: new URLSearchParams(),
      body: body.toString(),
      contentType,
      address,
    });
  };
  return { handle, get, post, logs, state, issuer, clock, digest };
}

type Json = Record<string, unknown> & { errors?: { code: string; message: string }[] };
const json = (res: TokenResponse) => JSON.parse(res.body) as Json;
const claimsOf = (res: TokenResponse) => decodeJwt(json(res).token as string);

describe('token endpoint, GET (token.md)', () => {
  let t: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    t = await setup();
  });

  it('gives an anonymous client only what the ACL grants to ""', async () => {
    const res = await t.get({
      service: 'unit-registry',
      scope: ['repository:public/base:pull,push', 'repository:alice/app:pull'],
    });
    expect(res.status).toBe(200);
    const body = json(res);
    expect(body.token).toBe(body.access_token);
    expect(body.expires_in).toBe(300);
    expect(Date.parse(body.issued_at as string)).toBeGreaterThan(Date.now() - 5000);
    expect(body.refresh_token).toBeUndefined();
    const claims = claimsOf(res);
    expect(claims.sub).toBe('');
    expect(claims.access).toEqual([{ type: 'repository', name: 'public/base', actions: ['pull'] }]);
  });

  it('issues the intersection of asked and allowed actions to an authenticated user', async () => {
    const res = await t.get(
      { service: 'unit-registry', scope: 'repository:alice/app:pull,push,delete,*', account: 'alice' },
      basic('alice', PASSWORDS.alice),
    );
    expect(res.status).toBe(200);
    expect(claimsOf(res).sub).toBe('alice');
    expect(claimsOf(res).access).toEqual([
      { type: 'repository', name: 'alice/app', actions: ['pull', 'push', 'delete'] },
    ]);
  });

  it('answers a wrong password with 401 and a Basic challenge, never an anonymous token', async () => {
    const res = await t.get(
      { service: 'unit-registry', scope: 'repository:public/base:pull' },
      basic('alice', 'nope'),
    );
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Basic realm="unit-registry", charset="UTF-8"');
    expect(json(res).errors?.[0]?.code).toBe('UNAUTHORIZED');
    expect(json(res).error).toBe('invalid_grant');
    expect(json(res).token).toBeUndefined();
  });

  it('answers an unknown user exactly like a wrong password', async () => {
    const wrong = await t.get(
      { service: 'unit-registry', scope: 'repository:x/y:pull' },
      basic('alice', 'nope'),
    );
    const unknown = await t.get(
      { service: 'unit-registry', scope: 'repository:x/y:pull' },
      basic('mallory', 'nope'),
    );
    expect(unknown.status).toBe(wrong.status);
    expect(unknown.body).toBe(wrong.body);
  });

  it('answers a login probe (no credentials, no scope) with 401', async () => {
    const res = await t.get({ service: 'unit-registry' });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Basic /);
  });

  it('answers docker login (credentials, no scope, offline_token) with a token and a refresh token', async () => {
    const res = await t.get(
      { service: 'unit-registry', account: 'alice', client_id: 'docker', offline_token: 'true' },
      basic('alice', PASSWORDS.alice),
    );
    expect(res.status).toBe(200);
    expect(claimsOf(res).access).toEqual([]);
    const refresh = json(res).refresh_token as string;
    expect(t.issuer.verifyRefreshToken(refresh)).toMatchObject({ sub: 'alice', service: 'unit-registry' });
    expect(t.logs.at(-1)).toMatchObject({ clientId: 'docker', account: 'alice', outcome: 'issued' });
  });

  it('answers a reused token with the same text each time, and a refresh token only to who asked', async () => {
    const r = await setup({ reuse: true });
    const scope = { service: 'unit-registry', scope: 'repository:alice/a:pull' };
    const first = await r.get(scope, basic('alice', PASSWORDS.alice));
    r.clock.now += 2000;
    const again = await r.get(scope, basic('alice', PASSWORDS.alice));
    expect(again.body).toBe(first.body);
    expect(Object.keys(json(first))).toEqual(['token', 'access_token', 'expires_in', 'issued_at']);
    expect(json(first)).toMatchObject({ access_token: json(first).token, expires_in: 300 });
    const offline = await r.get({ ...scope, offline_token: 'true' }, basic('alice', PASSWORDS.alice));
    expect(json(offline).token).toBe(json(first).token);
    expect(typeof json(offline).refresh_token).toBe('string');
    // The refresh token went to that answer only, never into the text later answers share.
    const later = await r.get(scope, basic('alice', PASSWORDS.alice));
    expect(later.body).toBe(first.body);
    expect(json(later).refresh_token).toBeUndefined();
  });

  it('answers the same scope value alike each time it comes, and refuses a bad one every time', async () => {
    for (let i = 0; i < 3; i++) {
      const ok = await t.get(
        { service: 'unit-registry', scope: 'repository:alice/a:pull,push repository:alice/b:pull' },
        basic('alice', PASSWORDS.alice),
      );
      expect(claimsOf(ok).access).toEqual([
        { type: 'repository', name: 'alice/a', actions: ['pull', 'push'] },
        { type: 'repository', name: 'alice/b', actions: ['pull'] },
      ]);
      const bad = await t.get({ service: 'unit-registry', scope: 'repository:Alice/A:pull' });
      expect(bad.status).toBe(400);
      expect(json(bad).error).toBe('invalid_scope');
    }
    // A value longer than what is kept parsed (four names of 255 characters) is parsed each time.
    const names = ['a', 'b', 'c', 'd'].map((c) => `alice/${c.repeat(249)}`);
    for (let i = 0; i < 2; i++) {
      const res = await t.get(
        { service: 'unit-registry', scope: names.map((n) => `repository:${n}:pull`).join(' ') },
        basic('alice', PASSWORDS.alice),
      );
      expect(claimsOf(res).access).toEqual(
        names.map((name) => ({ type: 'repository', name, actions: ['pull'] })),
      );
    }
  });

  it('gives no refresh token without offline_token, nor to anonymous clients', async () => {
    const named = await t.get(
      { service: 'unit-registry', scope: 'repository:alice/a:pull' },
      basic('alice', PASSWORDS.alice),
    );
    expect(json(named).refresh_token).toBeUndefined();
    const anonymous = await t.get({
      service: 'unit-registry',
      scope: 'repository:public/a:pull',
      offline_token: 'true',
    });
    expect(anonymous.status).toBe(200);
    expect(json(anonymous).refresh_token).toBeUndefined();
  });

  it('refuses an account parameter that is not the authenticated user with 400', async () => {
    const res = await t.get({ service: 'unit-registry', account: 'admin' }, basic('alice', PASSWORDS.alice));
    expect(res.status).toBe(400);
    expect(json(res).errors?.[0]?.message).toMatch(/account/);
  });

  it('asks for credentials when an anonymous request names an account', async () => {
    const res = await t.get({
      service: 'unit-registry',
      account: 'alice',
      scope: 'repository:public/a:pull',
    });
    expect(res.status).toBe(401);
  });

  it('refuses another service with 400 and accepts a request that names none', async () => {
    const other = await t.get({ service: 'other-registry', scope: 'repository:public/a:pull' });
    expect(other.status).toBe(400);
    expect(json(other).errors?.[0]?.message).toContain('"unit-registry"');
    const none = await t.get({ scope: 'repository:public/a:pull' });
    expect(none.status).toBe(200);
    expect(claimsOf(none).aud).toBe('unit-registry');
  });

  it.each([
    ['a malformed scope', { scope: 'repository:library/UPPER:pull' }, /invalid scope/],
    ['a scope without actions', { scope: 'repository:alice/app' }, /invalid scope/],
    [
      'too many scopes',
      {
        scope:
          'repository:a/a:pull repository:a/b:pull repository:a/c:pull repository:a/d:pull repository:a/e:pull',
      },
      /at most 4/,
    ],
  ])('answers %s with 400 and says what was wrong', async (_name, params, message) => {
    const res = await t.get({ service: 'unit-registry', ...params });
    expect(res.status).toBe(400);
    expect(json(res).error).toBe('invalid_scope');
    expect(json(res).errors?.[0]?.message).toMatch(message);
  });

  it.each([
    ['bad base64', 'Basic !!!notbase64'],
    ['no colon', `Basic ${Buffer.from('alice').toString('base64')}`],
    ['another scheme', 'Bearer abc.def.ghi'],
  ])('answers Basic credentials with %s with 400', async (_name, header) => {
    const res = await t.get({ service: 'unit-registry', scope: 'repository:public/a:pull' }, header);
    expect(res.status).toBe(400);
    expect(res.body).not.toContain('abc.def.ghi');
  });

  it('backs a user off after repeated failures from any address, doubling Retry-After', async () => {
    const scope = { scope: 'repository:alice/a:pull' };
    // Three free failures, each from another address: rotating addresses gains nothing.
    for (let i = 0; i < 4; i++) {
      expect((await t.get(scope, basic('alice', `bad-${i}`), `10.0.1.${i}`)).status).toBe(401);
    }
    const backedOff = await t.get(scope, basic('alice', PASSWORDS.alice), '10.0.2.1');
    expect(backedOff.status).toBe(429);
    expect(backedOff.headers['retry-after']).toBe('1');
    t.clock.now += 1000;
    expect((await t.get(scope, basic('alice', 'bad-4'), '10.0.1.9')).status).toBe(401);
    expect((await t.get(scope, basic('alice', 'bad-5'), '10.0.1.9')).headers['retry-after']).toBe('2');
    // Another user is not backed off.
    const admin = await t.get({ scope: 'repository:x/a:pull' }, basic('admin', PASSWORDS.admin));
    expect(admin.status).toBe(200);
    t.clock.now += 2000;
    expect((await t.get(scope, basic('alice', PASSWORDS.alice), '10.0.2.1')).status).toBe(200);
  });

  it('backs an unknown name off exactly like a real user', async () => {
    const scope = { scope: 'repository:x/a:pull' };
    const answers = async (user: string) => {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await t.get(scope, basic(user, `bad-${i}`))).status);
      return statuses;
    };
    expect(await answers('mallory')).toEqual(await answers('alice'));
  });

  it.each([
    ['a Basic user name', () => t.get({}, basic('a'.repeat(257), 'pw'))],
    ['a multi-byte Basic user name', () => t.get({}, basic('é'.repeat(129), 'pw'))],
    ['a POST username', () => t.post({ grant_type: 'password', username: 'b'.repeat(300), password: 'pw' })],
    ['an account parameter', () => t.get({ account: 'c'.repeat(257) }, basic('alice', PASSWORDS.alice))],
  ])('refuses %s over 256 bytes with 400, before any password check', async (_name, send) => {
    const verify = vi.spyOn(t.state.users, 'verify');
    const res = await send();
    expect(res.status).toBe(400);
    expect(json(res).errors?.[0]?.message).toMatch(/longer than 256 bytes/);
    expect(verify).not.toHaveBeenCalled();
  });

  it('accepts a user name of exactly 256 bytes', async () => {
    const res = await t.get({ scope: 'repository:x/a:pull' }, basic('é'.repeat(128), 'pw'));
    expect(res.status).toBe(401);
  });

  it('logs an unknown user name as a keyed hash, a known one by name', async () => {
    await t.get({ scope: 'repository:x/a:pull' }, basic('hunter2-typed-as-user', 'x'));
    await t.get({ scope: 'repository:x/a:pull' }, basic('alice', 'wrong'));
    expect(t.logs.map((l) => l.account)).toEqual([t.digest.label('hunter2-typed-as-user'), 'alice']);
    expect(t.logs[0]?.account).toMatch(/^unknown:[0-9a-f]{16}$/);
    expect(JSON.stringify(t.logs)).not.toContain('hunter2');
  });

  it('never counts successful requests toward a lock-out', async () => {
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.get({ scope: `repository:alice/r${i}:pull` }, basic('alice', PASSWORDS.alice)),
      ),
    );
    expect(burst.map((r) => r.status)).toEqual(Array(20).fill(200));
  });

  it('verifies a password with bcrypt once for a burst of requests', async () => {
    const verify = vi.spyOn(t.state.users, 'verify');
    const first = await t.get({ scope: 'repository:alice/a:pull' }, basic('alice', PASSWORDS.alice));
    expect(first.status).toBe(200);
    const rest = await Promise.all(
      Array.from({ length: 5 }, () =>
        t.get({ scope: 'repository:alice/b:pull' }, basic('alice', PASSWORDS.alice)),
      ),
    );
    expect(rest.every((r) => r.status === 200)).toBe(true);
    expect(verify).toHaveBeenCalledTimes(1);
    // A wrong password is never answered from the cache.
    expect((await t.get({ scope: 'repository:alice/a:pull' }, basic('alice', 'wrong'))).status).toBe(401);
    expect(verify).toHaveBeenCalledTimes(2);
  });

  it('stops honouring a cached login once the password changed', async () => {
    expect((await t.get({ scope: 'repository:alice/a:pull' }, basic('alice', PASSWORDS.alice))).status).toBe(
      200,
    );
    t.state.users = await UserStore.fromText(htpasswdLine('alice', 'new-password'), 'users.htpasswd');
    expect((await t.get({ scope: 'repository:alice/a:pull' }, basic('alice', PASSWORDS.alice))).status).toBe(
      401,
    );
    expect((await t.get({ scope: 'repository:alice/a:pull' }, basic('alice', 'new-password'))).status).toBe(
      200,
    );
  });

  it('logs one line per request with the requested and granted scopes and no secret', async () => {
    const res = await t.get(
      {
        service: 'unit-registry',
        scope: 'repository:alice/app:pull,push repository:admin/x:pull',
        offline_token: 'true',
      },
      basic('alice', PASSWORDS.alice),
    );
    expect(t.logs).toHaveLength(1);
    expect(t.logs[0]).toEqual({
      msg: 'token',
      method: 'GET',
      grantType: 'basic',
      account: 'alice',
      address: '10.0.0.1',
      requested: ['repository:alice/app:pull,push', 'repository:admin/x:pull'],
      granted: ['repository:alice/app:pull,push'],
      outcome: 'issued',
      status: 200,
      authn: 'htpasswd',
    });
    const line = JSON.stringify(t.logs);
    expect(line).not.toContain(PASSWORDS.alice);
    expect(line).not.toContain(json(res).token as string);
    expect(line).not.toContain(json(res).refresh_token as string);
  });
});

describe('token endpoint, POST (oauth.md)', () => {
  let t: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    t = await setup();
  });

  it('issues a token for grant_type=password with scopes space-separated or repeated', async () => {
    const res = await t.post({
      grant_type: 'password',
      service: 'unit-registry',
      client_id: 'regauth-test',
      username: 'alice',
      password: PASSWORDS.alice,
      scope: ['repository:alice/a:pull repository:alice/b:push', 'repository:alice/c:pull'],
    });
    expect(res.status).toBe(200);
    expect(claimsOf(res).access).toEqual([
      { type: 'repository', name: 'alice/a', actions: ['pull'] },
      { type: 'repository', name: 'alice/b', actions: ['push'] },
      { type: 'repository', name: 'alice/c', actions: ['pull'] },
    ]);
    expect(json(res).refresh_token).toBeUndefined();
  });

  it('returns a refresh token with access_type=offline that later renews access', async () => {
    const login = await t.post({
      grant_type: 'password',
      service: 'unit-registry',
      client_id: 'regauth-test',
      access_type: 'offline',
      username: 'alice',
      password: PASSWORDS.alice,
    });
    const refreshToken = json(login).refresh_token as string;
    expect(refreshToken).toMatch(/^rt1\./);
    const renewed = await t.post({
      grant_type: 'refresh_token',
      service: 'unit-registry',
      client_id: 'regauth-test',
      refresh_token: refreshToken,
      scope: 'repository:alice/app:push',
    });
    expect(renewed.status).toBe(200);
    expect(claimsOf(renewed).sub).toBe('alice');
    expect(claimsOf(renewed).access).toEqual([{ type: 'repository', name: 'alice/app', actions: ['push'] }]);
  });

  it('refuses a refresh token after the password changed, or when tampered with', async () => {
    const login = await t.post({
      grant_type: 'password',
      access_type: 'offline',
      username: 'alice',
      password: PASSWORDS.alice,
    });
    const refreshToken = json(login).refresh_token as string;
    const tampered = await t.post({ grant_type: 'refresh_token', refresh_token: `${refreshToken}x` });
    expect(tampered.status).toBe(401);
    t.state.users = await UserStore.fromText(htpasswdLine('alice', 'changed'), 'users.htpasswd');
    const revoked = await t.post({ grant_type: 'refresh_token', refresh_token: refreshToken });
    expect(revoked.status).toBe(401);
    expect(json(revoked).errors?.[0]?.message).toMatch(/log in again/);
  });

  it('refuses a refresh token issued for another service', async () => {
    const other = await setup({ service: 'other-registry' });
    const login = await other.post({
      grant_type: 'password',
      access_type: 'offline',
      username: 'alice',
      password: PASSWORDS.alice,
    });
    const res = await t.post({
      grant_type: 'refresh_token',
      refresh_token: json(login).refresh_token as string,
    });
    expect(res.status).toBe(401);
  });

  it.each([
    ['an unknown grant_type', { grant_type: 'client_credentials' }, 400, 'unsupported_grant_type'],
    [
      'a password grant without password',
      { grant_type: 'password', username: 'alice' },
      400,
      'invalid_request',
    ],
    ['a wrong password', { grant_type: 'password', username: 'alice', password: 'x' }, 401, 'invalid_grant'],
  ])('answers %s with %s', async (_name, form, status, error) => {
    const res = await t.post(form);
    expect(res.status).toBe(status);
    expect(json(res).error).toBe(error);
  });

  it('answers a body that is not a form with 415', async () => {
    const res = await t.post({ grant_type: 'password' }, 'application/json');
    expect(res.status).toBe(415);
  });

  it('answers other methods with 405 and an Allow header', async () => {
    const res = await t.handle({ method: 'PUT', query: new URLSearchParams(), address: '10.0.0.1' });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, POST');
  });
});

describe('token endpoint with another authenticator and authorizer', () => {
  async function setupWith(authenticate: Authenticator['authenticate']) {
    const issuer = new TokenIssuer({
      signing: await testSigning(),
      issuer: 'unit-issuer',
      expiration: 300,
      refreshExpiration: 3600,
    });
    const seen: { identity: Identity | undefined; context: AuthorizationContext }[] = [];
    const authorizer: Authorizer = {
      async authorize(identity, requested, context) {
        seen.push({ identity, context });
        return identity?.labels.group?.includes('ci') ? [...requested] : [];
      },
    };
    const logs: TokenLogEntry[] = [];
    const handle = createTokenService({
      service: 'unit-registry',
      maxScopes: 4,
      authorizer: () => authorizer,
      guard: new PasswordGuard({
        authenticators: () => [{ kind: 'ext_auth', authenticate }],
        cacheSeconds: 60,
        loginFailures: 3,
        loginWindow: 300,
        backoffMaxSeconds: 300,
        addressFailures: 30,
        passwordChecks: 4,
        passwordQueue: 32,
        checksPerAddress: 4,
      }),
      issuer,
      log: (e) => logs.push(e),
    });
    const post = (form: Record<string, string>) =>
      handle({
        method: 'POST',
        query: new URLSearchParams(),
        body: new URLSearchParams(form).toString(),
        contentType: 'application/x-www-form-urlencoded',
        address: '10.0.0.9',
      });
    return { handle, post, seen, logs };
  }

  it('hands the identity and its labels to the authorizer, and label names to the log', async () => {
    const t = await setupWith(async ({ user }) => ({
      outcome: 'accepted',
      identity: { name: `ci:${user}`, labels: { group: ['ci'], secretish: ['value-not-logged'] } },
    }));
    const res = await t.post({
      grant_type: 'password',
      username: 'runner',
      password: 'runner-pw',
      access_type: 'offline',
      scope: 'repository:app:push',
    });
    expect(res.status).toBe(200);
    expect(claimsOf(res).sub).toBe('ci:runner');
    expect(claimsOf(res).access).toEqual([{ type: 'repository', name: 'app', actions: ['push'] }]);
    expect(t.seen[0]).toEqual({
      identity: { name: 'ci:runner', labels: { group: ['ci'], secretish: ['value-not-logged'] } },
      context: { service: 'unit-registry', address: '10.0.0.9' },
    });
    expect(t.logs[0]).toMatchObject({
      account: 'ci:runner',
      authn: 'ext_auth',
      labels: ['group', 'secretish'],
    });
    expect(JSON.stringify(t.logs)).not.toMatch(/runner-pw|value-not-logged/);

    // The refresh token keeps the labels: the authorizer sees them again without the backend.
    const renewed = await t.post({
      grant_type: 'refresh_token',
      refresh_token: json(res).refresh_token as string,
      scope: 'repository:app:pull',
    });
    expect(renewed.status).toBe(200);
    expect(claimsOf(renewed).access).toEqual([{ type: 'repository', name: 'app', actions: ['pull'] }]);
    expect(t.seen[1]?.identity).toEqual(t.seen[0]?.identity);
    expect(t.logs[1]).toMatchObject({ grantType: 'refresh_token', authn: 'refresh_token' });
  });

  it('answers 503 with Retry-After when the authenticator fails, and logs why without the password', async () => {
    const t = await setupWith(async () => {
      throw new Error('ext_auth program /opt/check: exited with code 3; the login was not decided');
    });
    const res = await t.post({ grant_type: 'password', username: 'runner', password: 'runner-pw' });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(json(res).error).toBe('temporarily_unavailable');
    expect(JSON.stringify(json(res))).not.toContain('/opt/check');
    expect(t.logs[0]).toMatchObject({
      outcome: 'unavailable',
      reason: expect.stringContaining('exited with code 3'),
    });
    expect(JSON.stringify(t.logs)).not.toContain('runner-pw');
  });
});
