import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isRegauthError } from '../errors/regauth-error.js';
import { htpasswdLine, testKeyPair } from './testing/fixtures.js';
import { createTokenHandler, MAX_BODY_BYTES, type TokenHandler } from './token-handler.js';
import type { TokenHandlerConfig } from './token-handler-config.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function handlerConfig(extra: Partial<TokenHandlerConfig> = {}): Promise<TokenHandlerConfig> {
  const pair = await testKeyPair();
  return {
    basePath: '/auth',
    token: {
      issuer: 'unit-issuer',
      service: 'unit-registry',
      key: { pem: pair.keyPem },
      certificate: { pem: async () => pair.certPem },
    },
    users: { entries: () => htpasswdLine('alice', 'alice-pw') },
    acl: [{ match: { account: 'alice' }, actions: ['pull'] }],
    ...extra,
  };
}

async function handler(extra: Partial<TokenHandlerConfig> = {}): Promise<TokenHandler> {
  const tokens = await createTokenHandler(await handlerConfig(extra));
  cleanups.push(() => tokens.close());
  return tokens;
}

/** A node:http server where the handler comes first and an app route answers the rest. */
async function mount(tokens: TokenHandler): Promise<string> {
  const server: Server = createServer((req, res) => {
    if (tokens.handle(req, res)) return;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`app saw ${req.method} ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('createTokenHandler', () => {
  it('serves tokens and the health check under the base path, from PEM values and htpasswd text', async () => {
    const tokens = await handler();
    expect(tokens.realmPath).toBe('/auth/token');
    const url = await mount(tokens);
    const res = await fetch(`${url}/auth/token?service=unit-registry&scope=repository:alice/app:pull`, {
      headers: { authorization: basic('alice', 'alice-pw') },
    });
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
      access: unknown;
      iss: string;
    };
    expect(claims.iss).toBe('unit-issuer');
    expect(claims.access).toEqual([{ type: 'repository', name: 'alice/app', actions: ['pull'] }]);
    const health = await fetch(`${url}/auth/healthz`);
    expect(await health.json()).toEqual({ status: 'ok' });
  });

  it('asks the authorizers given for what no acl rule matched, and answers 503 when one fails', async () => {
    const asked: string[] = [];
    const tokens = await handler({
      acl: [{ match: { name: 'frozen/*' }, actions: [] }],
      authorizers: [
        {
          kind: 'custom',
          async decide(identity, scope) {
            asked.push(`${identity?.name ?? ''} ${scope.name}`);
            if (scope.name === 'broken/app') throw new Error('the policy service is down');
            return scope.name.startsWith(`${identity?.name}/`) ? { granted: ['pull', 'delete'] } : undefined;
          },
        },
      ],
    });
    const url = await mount(tokens);
    const get = (...scopes: string[]) =>
      fetch(`${url}/auth/token?service=unit-registry&${scopes.map((s) => `scope=${s}`).join('&')}`, {
        headers: { authorization: basic('alice', 'alice-pw') },
      });
    const res = await get(
      'repository:alice/app:pull,push',
      'repository:frozen/app:pull',
      'repository:bob/app:pull',
    );
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
      access: unknown;
    };
    // Never more than was asked: delete was not.
    expect(claims.access).toEqual([{ type: 'repository', name: 'alice/app', actions: ['pull'] }]);
    expect(asked).toEqual(['alice alice/app', 'alice bob/app']);
    const failed = await get('repository:alice/app:pull', 'repository:broken/app:pull');
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).toBe('5');
    expect(JSON.stringify(await failed.json())).not.toContain('the policy service is down');
    await expect(handler({ authorizers: [{ kind: 'x' } as never] })).rejects.toThrow(
      'token handler config: authorizers: must be a list of ScopeAuthorizers (objects with a kind and a decide method)',
    );
  });

  it('falls through on every path it does not own, leaving the response to the app', async () => {
    const url = await mount(await handler());
    for (const path of [
      '/',
      '/token',
      '/healthz',
      '/auth',
      '/auth/',
      '/auth/tokens',
      '/authx/token',
      '/other/auth/token',
    ]) {
      const res = await fetch(`${url}${path}`);
      expect([path, res.status, await res.text()]).toEqual([path, 200, `app saw GET ${path}`]);
    }
  });

  it('refuses a wrong password under the base path with 401', async () => {
    const url = await mount(await handler());
    const res = await fetch(`${url}/auth/token?scope=repository:alice/app:pull`, {
      headers: { authorization: basic('alice', 'wrong') },
    });
    expect(res.status).toBe(401);
  });

  it('calls next() express-style on paths it does not own, and not on its own', async () => {
    const tokens = await handler();
    let nextCalls = 0;
    const server = createServer((req, res) => {
      tokens.handle(req, res, () => {
        nextCalls++;
        res.end('next');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(await (await fetch(`${url}/elsewhere`)).text()).toBe('next');
    expect((await fetch(`${url}/auth/healthz`)).status).toBe(200);
    expect(nextCalls).toBe(1);
  });

  it('matches express mounts by originalUrl, which keeps the mount prefix', async () => {
    const tokens = await handler();
    const server = createServer((req, res) => {
      // What express does for app.use('/auth', handle): req.url loses the prefix.
      (req as { originalUrl?: string }).originalUrl = req.url ?? '/';
      req.url = (req.url ?? '/').replace(/^\/auth/, '') || '/';
      if (!tokens.handle(req, res)) res.end('app');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect((await fetch(`${url}/auth/healthz`)).status).toBe(200);
    expect(await (await fetch(`${url}/healthz`)).text()).toBe('app');
  });

  it('caps POST bodies when mounted, as the standalone server does', async () => {
    const url = await mount(await handler());
    const res = await fetch(`${url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=password&x=${'a'.repeat(MAX_BODY_BYTES)}`,
    }).catch(() => undefined);
    // Either the 413 arrives or the socket is cut after it: never a token, never a hang.
    if (res !== undefined) expect(res.status).toBe(413);
  });

  it('answers Web Requests with fetch(), and undefined on paths it does not own', async () => {
    const tokens = await handler({ basePath: '/v1/auth/' });
    expect(tokens.realmPath).toBe('/v1/auth/token');
    const res = await tokens.fetch(
      new Request('http://app.invalid/v1/auth/token?service=unit-registry&scope=repository:alice/app:pull', {
        headers: { authorization: basic('alice', 'alice-pw') },
      }),
      { address: '127.0.0.1' },
    );
    expect(res?.status).toBe(200);
    const body = (await res?.json()) as { token?: string } | undefined;
    expect(body?.token?.split('.')).toHaveLength(3);
    expect(await tokens.fetch(new Request('http://app.invalid/v1/other'))).toBeUndefined();
    expect(await tokens.fetch(new Request('http://app.invalid/token'))).toBeUndefined();
  });

  it('takes the OAuth2 POST form through fetch()', async () => {
    const tokens = await handler();
    const res = await tokens.fetch(
      new Request('http://app.invalid/auth/token', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=password&service=unit-registry&client_id=t&username=alice&password=alice-pw&scope=repository:alice/app:pull',
      }),
    );
    expect(res?.status).toBe(200);
    expect(await res?.json()).toHaveProperty('access_token');
  });

  it('calls the users function again on reloadUsers()', async () => {
    let entries = htpasswdLine('alice', 'alice-pw');
    const tokens = await handler({ users: { entries: () => entries } });
    const ask = async (user: string, password: string) =>
      (
        await tokens.fetch(
          new Request('http://app.invalid/auth/token?scope=repository:alice/app:pull', {
            headers: { authorization: basic(user, password) },
          }),
        )
      )?.status;
    expect(await ask('alice', 'alice-pw')).toBe(200);
    entries = htpasswdLine('alice', 'new-pw');
    await tokens.reloadUsers();
    expect(await ask('alice', 'alice-pw')).toBe(401);
    expect(await ask('alice', 'new-pw')).toBe(200);
  });

  it.each([
    [{ basePath: 'a b' }, /basePath/],
    [{ limits: { maxScopes: 0 } }, /limits\.maxScopes: must be a whole number of at least 1/],
    [{ trustedProxies: ['not-an-ip'] }, /trustedProxies\[0\]/],
    [{ users: {} as never }, /users: must be/],
  ] as const)('checks the config when created: %j', async (extra, message) => {
    const error = await createTokenHandler(await handlerConfig(extra as Partial<TokenHandlerConfig>)).catch(
      (e: unknown) => e,
    );
    expect(isRegauthError(error) && error.code).toBe('ERR_INVALID_CONFIG');
    expect((error as Error).message).toMatch(message);
  });

  it('signs with the first of several keys given as values or functions', async () => {
    const [es, rsa] = await Promise.all([testKeyPair('ES256'), testKeyPair('RS256')]);
    const config = await handlerConfig();
    const tokens = await createTokenHandler({
      ...config,
      token: {
        issuer: config.token.issuer,
        service: config.token.service,
        keys: [
          { key: { pem: async () => rsa.keyPem }, certificate: { pem: rsa.certPem } },
          { key: { pem: es.keyPem }, certificate: { pem: () => es.certPem } },
        ],
      },
    });
    cleanups.push(() => tokens.close());
    const url = await mount(tokens);
    const res = await fetch(`${url}/auth/token?service=unit-registry&scope=repository:alice/app:pull`, {
      headers: { authorization: basic('alice', 'alice-pw') },
    });
    const { token } = (await res.json()) as { token: string };
    expect(JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()).alg).toBe('RS256');
  });

  it.each([
    [{ keys: [] }, /token\.keys: must be a list/],
    [{ keys: [{ key: { pem: 'k' } }] }, /token\.keys\[0\]\.certificate: must be/],
    [{ key: { pem: 'k' }, keys: [{ key: { pem: 'k' }, certificate: { pem: 'c' } }] }, /not both/],
  ])('checks the key list: %j', async (keys, message) => {
    const config = await handlerConfig();
    const token = { issuer: 'i', service: 's', ...keys } as unknown as TokenHandlerConfig['token'];
    const error = await createTokenHandler({ ...config, token }).catch((e: unknown) => e);
    expect(isRegauthError(error) && error.code).toBe('ERR_INVALID_CONFIG');
    expect((error as Error).message).toMatch(message);
  });

  it('names the config key when a PEM value is not a key', async () => {
    const config = await handlerConfig();
    const error = await createTokenHandler({
      ...config,
      token: { ...config.token, key: { pem: 'not a key' } },
    }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/^token\.key: not a readable/);
  });
});
