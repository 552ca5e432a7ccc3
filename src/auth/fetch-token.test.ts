import { afterEach, describe, expect, it } from 'vitest';
import { isRegauthError, type RegauthError } from '../errors/regauth-error.js';
import { controlCharacters } from '../testing/control-characters.js';
import { loopbackServers } from '../testing/loopback-server.js';
import { createTransport } from '../transport/create-transport.js';
import { fetchToken } from './fetch-token.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());
const send = createTransport({ env: {}, maxRetries: 0 });
const NOW = Date.UTC(2026, 0, 1);

const tokenAnswer = (
  res: import('node:http').ServerResponse,
  body: object = { token: 'tok-1', expires_in: 120 },
) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('fetchToken', () => {
  it('asks with GET, Basic credentials, account, service and every scope', async () => {
    const realm = await servers.start((_req, res) => tokenAnswer(res));
    const token = await fetchToken({
      send,
      realm: realm.url('/token'),
      service: 'reg',
      scopes: ['repository:a/b:pull', 'repository:c/d:pull,push'],
      found: { credential: { username: 'alice', password: 's3cret' }, source: 'test' },
      now: () => NOW,
    });
    expect(token).toEqual({ token: 'tok-1', expiresAt: NOW + 120_000 });
    const req = realm.requests[0];
    expect(req?.method).toBe('GET');
    expect(req?.url.searchParams.get('service')).toBe('reg');
    expect(req?.url.searchParams.get('account')).toBe('alice');
    expect(req?.url.searchParams.getAll('scope')).toEqual([
      'repository:a/b:pull',
      'repository:c/d:pull,push',
    ]);
    expect(req?.headers.authorization).toBe(`Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
  });

  it('asks anonymously without an Authorization header or account', async () => {
    const realm = await servers.start((_req, res) => tokenAnswer(res));
    await fetchToken({ send, realm: realm.url('/token'), scopes: ['repository:a/b:pull'] });
    expect(realm.requests[0]?.headers.authorization).toBeUndefined();
    expect(realm.requests[0]?.url.searchParams.has('account')).toBe(false);
  });

  it('asks like docker login: offline_token and client_id, and keeps the refresh token', async () => {
    const realm = await servers.start((_req, res) => tokenAnswer(res, { token: 't', refresh_token: 'r-1' }));
    const token = await fetchToken({
      send,
      realm: realm.url('/token'),
      scopes: [],
      offline: true,
      found: { credential: { username: 'alice', password: 'pw' }, source: 'test' },
    });
    expect(token.refreshToken).toBe('r-1');
    expect(realm.requests[0]?.url.searchParams.get('offline_token')).toBe('true');
    expect(realm.requests[0]?.url.searchParams.get('client_id')).toBe('regauth');
  });

  it('uses the OAuth2 refresh_token grant for an identity token, scopes space-separated', async () => {
    const realm = await servers.start((_req, res) => tokenAnswer(res));
    await fetchToken({
      send,
      realm: realm.url('/token'),
      service: 'reg',
      scopes: ['repository:a/b:pull', 'repository:c/d:push'],
      found: { credential: { username: 'alice', identityToken: 'rt-xyz' }, source: 'test' },
    });
    const req = realm.requests[0];
    expect(req?.method).toBe('POST');
    expect(req?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(req?.body))).toEqual({
      grant_type: 'refresh_token',
      refresh_token: 'rt-xyz',
      client_id: 'regauth',
      service: 'reg',
      scope: 'repository:a/b:pull repository:c/d:push',
    });
  });

  it('falls back to GET with the identity token as Basic password when the realm has no OAuth2 (404)', async () => {
    const realm = await servers.start((req, res) => {
      if (req.method === 'POST') {
        res.writeHead(404);
        res.end();
        return;
      }
      tokenAnswer(res);
    });
    const token = await fetchToken({
      send,
      realm: realm.url('/token'),
      scopes: ['repository:a/b:pull'],
      found: { credential: { identityToken: 'rt-xyz' }, source: 'test' },
    });
    expect(token.token).toBe('tok-1');
    expect(realm.requests.map((r) => r.method)).toEqual(['POST', 'GET']);
    expect(realm.requests[1]?.headers.authorization).toBe(
      `Basic ${Buffer.from('<token>:rt-xyz').toString('base64')}`,
    );
    expect(realm.requests[1]?.url.searchParams.has('account')).toBe(false);
  });

  it('reports refused credentials with the user and the source, never the password', async () => {
    const realm = await servers.start((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"bad login"}]}');
    });
    const err = await fetchToken({
      send,
      realm: realm.url('/token'),
      scopes: [],
      found: {
        credential: { username: 'alice', password: 'hunter2-secret' },
        source: 'REGAUTH_USERNAME/REGAUTH_PASSWORD',
      },
    }).catch((e: unknown) => e);
    expect(isRegauthError(err, 'ERR_UNAUTHORIZED')).toBe(true);
    const message = (err as Error).message;
    expect(message).toContain(`token server at ${realm.host} refused the credentials for alice`);
    expect(message).toContain('REGAUTH_USERNAME/REGAUTH_PASSWORD');
    expect(message).toContain('bad login');
    expect(message).not.toContain('hunter2-secret');
  });

  it('reports 429 with the Retry-After the realm sent', async () => {
    const realm = await servers.start((_req, res) => {
      res.writeHead(429, { 'retry-after': '120' });
      res.end();
    });
    const err = await fetchToken({ send, realm: realm.url('/token'), scopes: [] }).catch((e: unknown) => e);
    expect(isRegauthError(err, 'ERR_TOO_MANY_REQUESTS')).toBe(true);
    expect((err as Error).message).toMatch(/retry in 120 s/);
  });

  it("shows the control characters of a realm's error description as escapes, on one line", async () => {
    const realm = await servers.start((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: 'invalid_grant',
          error_description: 'no\u001b]0;pwned\u0007\r\nPassword: \u009b',
        }),
      );
    });
    const err = await fetchToken({ send, realm: realm.url('/token'), scopes: [] }).catch((e: unknown) => e);
    expect(isRegauthError(err, 'ERR_UNAUTHORIZED')).toBe(true);
    const message = (err as Error).message;
    expect(message).toMatch(/: no\\x1b\]0;pwned\\x07\\r\\nPassword: \\x9b$/);
    expect((err as RegauthError).hint).toEqual({ kind: 'login', reason: 'missing' });
    expect(message).not.toMatch(/regauth login|--username/);
    expect(controlCharacters(message, { lineBreaks: true })).toEqual([]);
  });

  it('refuses an answer that is not JSON, or too large', async () => {
    const html = await servers.start((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>login page</html>');
    });
    const notJson = await fetchToken({ send, realm: html.url('/token'), scopes: [] }).catch(
      (e: unknown) => e,
    );
    expect(isRegauthError(notJson, 'ERR_TOKEN_RESPONSE')).toBe(true);
    const huge = await servers.start((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"token":"${'a'.repeat(100 * 1024)}"}`);
    });
    const tooLarge = await fetchToken({ send, realm: huge.url('/token'), scopes: [] }).catch(
      (e: unknown) => e,
    );
    expect(isRegauthError(tooLarge, 'ERR_TOO_LARGE')).toBe(true);
  });
});

describe('fetchToken errors from an answer', () => {
  const PASSWORD = 'alice-Pw-93kd';
  const SIG = 'sig-Qm20-secret';
  it.each([
    [401, 'ERR_UNAUTHORIZED'],
    [403, 'ERR_UNAUTHORIZED'],
    [429, 'ERR_TOO_MANY_REQUESTS'],
    [500, 'ERR_TOKEN_RESPONSE'],
    [503, 'ERR_TOKEN_RESPONSE'],
  ] as const)(
    'a %i carries the status and the redacted request, never the password',
    async (status, code) => {
      const realm = await servers.start((_req, res) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end('{"details":"no"}');
      });
      const url = realm.url('/token');
      url.searchParams.set('sig', SIG);
      const err = await fetchToken({
        send,
        realm: url,
        service: 'reg',
        scopes: ['repository:a/b:pull'],
        found: { credential: { username: 'alice', password: PASSWORD }, source: 'test' },
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isRegauthError(err, code)).toBe(true);
      if (!isRegauthError(err, code)) return;
      expect(err.status).toBe(status);
      expect(err.request?.method).toBe('GET');
      expect(err.request?.url).toMatch(
        new RegExp(`^${realm.origin}/token\\?sig=redacted&service=reg&scope=`),
      );
      const shown = `${err.message} ${String(err)} ${JSON.stringify(err.request)}`;
      expect(shown).not.toContain(PASSWORD);
      expect(shown).not.toContain(SIG);
      expect(shown).not.toContain(Buffer.from(`alice:${PASSWORD}`).toString('base64'));
    },
  );

  it('a 200 that is no token carries status 200 and the POST it answered', async () => {
    const realm = await servers.start((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"nothing":1}');
    });
    const err = await fetchToken({
      send,
      realm: realm.url('/token'),
      scopes: [],
      found: { credential: { identityToken: 'refresh-Xy7' }, source: 'test' },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isRegauthError(err, 'ERR_TOKEN_RESPONSE')).toBe(true);
    if (!isRegauthError(err)) return;
    expect(err.status).toBe(200);
    expect(err.request).toEqual({ method: 'POST', url: `${realm.origin}/token` });
    expect(`${err.message} ${JSON.stringify(err.request)}`).not.toContain('refresh-Xy7');
  });
});
