import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { ResourceScope } from '../scope/parse-scope.js';
import { type LoopbackServer, loopbackServers, type RecordedRequest } from '../testing/loopback-server.js';
import { rejection } from '../testing/rejection.js';
import { createTransport } from '../transport/create-transport.js';
import type { HeaderValue, HttpRequest, HttpResponse, Send } from '../transport/http-types.js';
import { type AuthRequest, type ChallengeStore, createAuthClient } from './create-auth-client.js';
import type { Credential, CredentialSource } from './credentials/credential.js';
import type { Challenge } from './parse-challenge.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

const T0 = 1_700_000_000_000;
const SERVICE = 'fake-registry';
const USER = 'alice';
const PASSWORD = 'pw-4f1c9a';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const PULL: ResourceScope = { type: 'repository', name: 'a/b', actions: ['pull'] };

/** A real transport that never sleeps, so a stray retry cannot slow a test down. */
const transport = (): Send => createTransport({ env: {}, maxRetries: 0, sleep: async () => {} });

/** A CredentialSource that counts how often it is asked. */
function countingCredentials(credential: Credential | null = { username: USER, password: PASSWORD }) {
  const calls: string[] = [];
  const source: CredentialSource = {
    find: async (registry) => {
      calls.push(registry);
      return credential === null ? undefined : { credential, source: 'test' };
    },
  };
  return { source, calls };
}

/** `repository:a/b:pull,push` → does a granted scope list cover it (a `*` action covers any)? */
function covers(granted: readonly string[], needed: string): boolean {
  const cut = needed.lastIndexOf(':');
  const resource = needed.slice(0, cut);
  const actions = needed.slice(cut + 1).split(',');
  const have = granted
    .filter((g) => g.slice(0, g.lastIndexOf(':')) === resource)
    .flatMap((g) => g.slice(g.lastIndexOf(':') + 1).split(','));
  return actions.every((a) => have.includes(a) || have.includes('*'));
}

interface FakeOptions {
  /** The scope a registry path needs; '' = public, no auth. Default: repository:a/b:pull. */
  readonly need?: (req: RecordedRequest) => string;
  /** The realm param sent in challenges. Default: this server's /token. */
  readonly realm?: (fake: { origin: string }) => string;
  /** Answer a refused request without any WWW-Authenticate (GCR). */
  readonly bareUnauthorized?: (req: RecordedRequest) => boolean;
}

interface Fake {
  readonly server: LoopbackServer;
  readonly registry: string;
  readonly tokenRequests: () => RecordedRequest[];
  readonly registryRequests: () => RecordedRequest[];
  /** Tokens the registry refuses from now on, as if revoked. */
  readonly revoked: Set<string>;
  request(path: string, scopes?: readonly ResourceScope[], method?: string): AuthRequest;
}

/**
 * A registry and its token realm on one loopback server: `/token` issues `tok-<n>` for exactly
 * the scopes asked (anonymous or as alice), `/v2/…` wants a token covering the path's scope.
 */
async function startFake(options: FakeOptions = {}): Promise<Fake> {
  const granted = new Map<string, string[]>();
  const revoked = new Set<string>();
  let issued = 0;
  let origin = '';
  const challenge = (scope: string, error?: string) =>
    `Bearer realm="${options.realm ? options.realm({ origin }) : `${origin}/token`}",service="${SERVICE}",scope="${scope}"${
      error ? `,error="${error}"` : ''
    }`;
  const unauthorized = (res: ServerResponse, header: string | undefined) => {
    res.writeHead(401, {
      'content-type': 'application/json',
      ...(header === undefined ? {} : { 'www-authenticate': header }),
    });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  };
  const server = await servers.start((req, res) => {
    if (req.url.pathname === '/token') {
      const auth = req.headers.authorization;
      if (auth !== undefined && auth !== BASIC) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"details":"bad credentials"}');
        return;
      }
      issued++;
      const token = `tok-${issued}`;
      granted.set(token, req.url.searchParams.getAll('scope'));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    const need = options.need ? options.need(req) : 'repository:a/b:pull';
    const ok = () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url.pathname }));
    };
    if (need === '') return ok();
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const scopes = token === undefined || revoked.has(token) ? undefined : granted.get(token);
    if (scopes && covers(scopes, need)) return ok();
    if (options.bareUnauthorized?.(req)) return unauthorized(res, undefined);
    unauthorized(res, challenge(need, scopes ? 'insufficient_scope' : token ? 'invalid_token' : undefined));
  });
  origin = server.origin;
  return {
    server,
    registry: server.host,
    revoked,
    tokenRequests: () => server.requests.filter((r) => r.url.pathname === '/token'),
    registryRequests: () => server.requests.filter((r) => r.url.pathname !== '/token'),
    request: (path, scopes = [PULL], method = 'GET') => ({
      method,
      url: server.url(path),
      registry: server.host,
      scopes,
    }),
  };
}

async function json(res: HttpResponse): Promise<unknown> {
  return JSON.parse(await res.text(64 * 1024));
}

describe('createAuthClient: Bearer', () => {
  it('answers a cold 401 with a token from the realm (3 requests), then reuses both (1 request)', async () => {
    const fake = await startFake();
    const creds = countingCredentials();
    const client = createAuthClient({ send: transport(), credentials: creds.source, now: () => T0 });

    const res = await client.send(fake.request('/v2/a/b/manifests/latest'));
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ path: '/v2/a/b/manifests/latest' });
    expect(fake.server.requests.map((r) => [r.url.pathname, r.headers.authorization])).toEqual([
      ['/v2/a/b/manifests/latest', undefined],
      ['/token', BASIC],
      ['/v2/a/b/manifests/latest', 'Bearer tok-1'],
    ]);
    const tokenQuery = fake.tokenRequests()[0]?.url.searchParams;
    expect(tokenQuery?.get('account')).toBe(USER);
    expect(tokenQuery?.get('service')).toBe(SERVICE);
    expect(tokenQuery?.getAll('scope')).toEqual(['repository:a/b:pull']);

    const again = await client.send(fake.request('/v2/a/b/manifests/other'));
    expect(again.status).toBe(200);
    await again.dump();
    expect(fake.server.requests).toHaveLength(4);
    expect(fake.server.requests[3]?.headers.authorization).toBe('Bearer tok-1');
    expect(creds.calls).toEqual([fake.registry]);
  });

  it('asks the realm anonymously when no credential is found', async () => {
    const fake = await startFake();
    const creds = countingCredentials(null);
    const client = createAuthClient({ send: transport(), credentials: creds.source });
    const res = await client.send(fake.request('/v2/a/b/tags/list'));
    expect(res.status).toBe(200);
    await res.dump();
    const [tokenRequest] = fake.tokenRequests();
    expect(tokenRequest?.headers.authorization).toBeUndefined();
    expect(tokenRequest?.url.searchParams.has('account')).toBe(false);
    expect(tokenRequest?.url.searchParams.getAll('scope')).toEqual(['repository:a/b:pull']);
    expect(fake.registryRequests().map((r) => r.headers.authorization)).toEqual([undefined, 'Bearer tok-1']);
    expect(creds.calls).toHaveLength(1);
  });

  it('marks each answer with who the request went as, never with a secret', async () => {
    const fake = await startFake();
    const asAlice = createAuthClient({ send: transport(), credentials: countingCredentials().source });
    const alice = { anonymous: false, account: USER, source: 'test' };
    // Cold (401, token, retry), then warm (the token up front): both say whose the request was.
    for (let i = 0; i < 2; i++) {
      const res = await asAlice.send(fake.request('/v2/a/b/tags/list'));
      await res.dump();
      expect(res.sentAs).toEqual(alice);
      expect(JSON.stringify(res.sentAs)).not.toContain(PASSWORD);
    }
    expect(fake.server.requests).toHaveLength(4);

    const anonymous = createAuthClient({ send: transport(), credentials: countingCredentials(null).source });
    const res = await anonymous.send(fake.request('/v2/a/b/tags/list'));
    await res.dump();
    expect(res.sentAs).toEqual({ anonymous: true });
  });

  it('does not look credentials up when the registry answers without a challenge', async () => {
    const fake = await startFake({ need: () => '' });
    const creds = countingCredentials();
    const client = createAuthClient({ send: transport(), credentials: creds.source });
    const res = await client.send(fake.request('/v2/public/manifests/1'));
    expect(res.status).toBe(200);
    await res.dump();
    expect(creds.calls).toHaveLength(0);
    expect(res.sentAs).toBeUndefined();
    expect(fake.server.requests).toHaveLength(1);
    expect(fake.server.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('shares one token request between 20 concurrent requests on a fresh client', async () => {
    const fake = await startFake();
    const creds = countingCredentials();
    const client = createAuthClient({ send: transport(), credentials: creds.source });
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client.send(fake.request(`/v2/a/b/blobs/sha256:${i}`))),
    );
    for (const res of responses) {
      expect(res.status).toBe(200);
      await res.dump();
    }
    expect(fake.tokenRequests()).toHaveLength(1);
    // The first request meets the 401; the others wait for the challenge it learns, and every
    // one then goes through with the token: 1 + 20 requests, not 2 × 20.
    expect(fake.registryRequests()).toHaveLength(21);
    expect(fake.registryRequests().filter((r) => r.headers.authorization === undefined)).toHaveLength(1);
    expect(fake.registryRequests().filter((r) => r.headers.authorization === 'Bearer tok-1')).toHaveLength(
      20,
    );
    expect(creds.calls).toHaveLength(1);
  });

  it('asks for the wider scope an insufficient_scope challenge names, and retries once', async () => {
    const fake = await startFake({
      need: (req) =>
        req.url.pathname.includes('/uploads/') ? 'repository:a/b:pull,push' : 'repository:a/b:pull',
    });
    const client = createAuthClient({ send: transport(), credentials: countingCredentials().source });
    await (await client.send(fake.request('/v2/a/b/manifests/latest'))).dump();
    expect(fake.server.requests).toHaveLength(3);

    // The caller asked for pull only; the registry wants pull,push for an upload.
    const res = await client.send(fake.request('/v2/a/b/blobs/uploads/', [PULL], 'POST'));
    expect(res.status).toBe(200);
    await res.dump();
    const added = fake.server.requests.slice(3);
    expect(added.map((r) => [r.url.pathname, r.headers.authorization])).toEqual([
      ['/v2/a/b/blobs/uploads/', 'Bearer tok-1'],
      ['/token', BASIC],
      ['/v2/a/b/blobs/uploads/', 'Bearer tok-2'],
    ]);
    expect(added[1]?.url.searchParams.getAll('scope')).toEqual([
      'repository:a/b:pull',
      'repository:a/b:pull,push',
    ]);
  });

  it('returns the 401 after one retry when the registry keeps refusing, without looping', async () => {
    let issued = 0;
    // A registry that refuses every token with insufficient_scope, however wide.
    const server = await servers.start((req, res) => {
      if (req.url.pathname === '/token') {
        issued++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ token: `tok-${issued}` }));
        return;
      }
      const error = req.headers.authorization ? ',error="insufficient_scope"' : '';
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="${server.origin}/token",service="s",scope="repository:a/b:pull,push"${error}`,
      });
      res.end('{"errors":[{"code":"DENIED","message":"no"}]}');
    });
    const client = createAuthClient({ send: transport(), credentials: countingCredentials().source });
    const req: AuthRequest = {
      method: 'GET',
      url: server.url('/v2/a/b/manifests/1'),
      registry: server.host,
      scopes: [PULL],
    };

    const res = await client.send(req);
    expect(res.status).toBe(401);
    expect(await json(res)).toEqual({ errors: [{ code: 'DENIED', message: 'no' }] });
    expect(server.requests.map((r) => [r.url.pathname, r.headers.authorization])).toEqual([
      ['/v2/a/b/manifests/1', undefined],
      ['/token', BASIC],
      ['/v2/a/b/manifests/1', 'Bearer tok-1'],
    ]);

    // With the challenge known, the token from before goes up front: it was asked for the scope
    // the registry named, which covers this request's. It is refused, the client fetches one for
    // the scope the registry names, retries once, and returns the 401.
    const again = await client.send(req);
    expect(again.status).toBe(401);
    await again.dump();
    const added = server.requests.slice(3);
    expect(added.map((r) => [r.url.pathname, r.headers.authorization])).toEqual([
      ['/v2/a/b/manifests/1', 'Bearer tok-1'],
      ['/token', BASIC],
      ['/v2/a/b/manifests/1', 'Bearer tok-2'],
    ]);
    expect(added[1]?.url.searchParams.getAll('scope')).toEqual([
      'repository:a/b:pull',
      'repository:a/b:pull,push',
    ]);
  });

  it('reuses the known challenge when a later 401 has no WWW-Authenticate (GCR)', async () => {
    const fake = await startFake({ bareUnauthorized: (req) => req.headers.authorization !== undefined });
    const client = createAuthClient({ send: transport(), credentials: countingCredentials().source });
    await (await client.send(fake.request('/v2/a/b/manifests/1'))).dump();
    expect(fake.server.requests).toHaveLength(3);

    fake.revoked.add('tok-1');
    const res = await client.send(fake.request('/v2/a/b/manifests/1'));
    expect(res.status).toBe(200);
    await res.dump();
    const added = fake.server.requests.slice(3);
    expect(added.map((r) => [r.url.pathname, r.headers.authorization])).toEqual([
      ['/v2/a/b/manifests/1', 'Bearer tok-1'],
      ['/token', BASIC],
      ['/v2/a/b/manifests/1', 'Bearer tok-2'],
    ]);
    expect(added[1]?.url.searchParams.get('service')).toBe(SERVICE);
  });

  it('returns a 401 without any challenge as it is when no challenge is known yet', async () => {
    const fake = await startFake({ bareUnauthorized: () => true });
    const client = createAuthClient({ send: transport(), credentials: countingCredentials().source });
    const res = await client.send(fake.request('/v2/a/b/manifests/1'));
    expect(res.status).toBe(401);
    await res.dump();
    expect(fake.server.requests).toHaveLength(1);
  });

  it('sends a registry token from the credential as the Bearer token, without asking the realm', async () => {
    const fake = await startFake();
    const seen: (string | undefined)[] = [];
    // This registry accepts exactly one token, the one the user's config holds.
    const server = await servers.start((req, res) => {
      seen.push(req.headers.authorization);
      if (req.headers.authorization === 'Bearer rt-77ab') {
        res.end('ok');
        return;
      }
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${fake.server.origin}/token",service="s"` });
      res.end();
    });
    const creds = countingCredentials({ registryToken: 'rt-77ab' });
    const client = createAuthClient({ send: transport(), credentials: creds.source });
    const res = await client.send({
      method: 'GET',
      url: server.url('/v2/a/b/manifests/1'),
      registry: server.host,
      scopes: [PULL],
    });
    expect(res.status).toBe(200);
    expect(await res.text(100)).toBe('ok');
    expect(seen).toEqual([undefined, 'Bearer rt-77ab']);
    expect(fake.server.requests).toHaveLength(0);
    expect(creds.calls).toHaveLength(1);
  });

  it('resolves a relative realm against the registry URL', async () => {
    const fake = await startFake({ realm: () => '/token' });
    const client = createAuthClient({ send: transport(), credentials: countingCredentials().source });
    const res = await client.send(fake.request('/v2/a/b/manifests/1'));
    expect(res.status).toBe(200);
    await res.dump();
    expect(fake.server.requests.map((r) => r.url.pathname)).toEqual([
      '/v2/a/b/manifests/1',
      '/token',
      '/v2/a/b/manifests/1',
    ]);
  });

  it('lets a second client use the challenge a first one saved in a shared store: no 401', async () => {
    const fake = await startFake();
    const saved = new Map<string, Challenge>();
    const store: ChallengeStore = {
      loadChallenge: (origin) => saved.get(origin),
      saveChallenge: (origin, challenge) => {
        saved.set(origin, challenge);
      },
      forgetChallenge: (origin) => {
        saved.delete(origin);
      },
    };
    const first = createAuthClient({
      send: transport(),
      credentials: countingCredentials().source,
      challengeStore: store,
    });
    await (await first.send(fake.request('/v2/a/b/manifests/1'))).dump();
    expect(fake.server.requests).toHaveLength(3);
    // What is kept describes the registry, not the one request: no scope, no error.
    expect({ ...saved.get(fake.server.origin)?.params }).toEqual({
      realm: `${fake.server.origin}/token`,
      service: SERVICE,
    });

    const second = createAuthClient({
      send: transport(),
      credentials: countingCredentials().source,
      challengeStore: store,
    });
    const res = await second.send(fake.request('/v2/a/b/manifests/1'));
    expect(res.status).toBe(200);
    await res.dump();
    const added = fake.server.requests.slice(3);
    expect(added.map((r) => [r.url.pathname, r.headers.authorization])).toEqual([
      ['/token', BASIC],
      ['/v2/a/b/manifests/1', 'Bearer tok-2'],
    ]);
  });

  it('token() returns the issued token after learning the challenge, without requesting the resource again', async () => {
    const fake = await startFake();
    const client = createAuthClient({
      send: transport(),
      credentials: countingCredentials().source,
      now: () => T0,
    });
    const info = await client.token(fake.request('/v2/a/b/manifests/1'));
    expect(info).toEqual({ token: 'tok-1', expiresAt: T0 + 300_000 });
    expect(fake.server.requests.map((r) => [r.url.pathname, r.headers.authorization])).toEqual([
      ['/v2/a/b/manifests/1', undefined],
      ['/token', BASIC],
    ]);
    // Challenge known and token cached: nothing more is sent.
    expect(await client.token(fake.request('/v2/a/b/manifests/1'))).toEqual(info);
    expect(fake.server.requests).toHaveLength(2);
  });

  it('token() gives undefined for a registry that asks for nothing', async () => {
    const fake = await startFake({ need: () => '' });
    const client = createAuthClient({ send: transport(), credentials: countingCredentials().source });
    expect(await client.token(fake.request('/v2/'))).toBeUndefined();
    expect(fake.server.requests).toHaveLength(1);
  });
});

describe('createAuthClient: Basic', () => {
  it('answers a Basic-only challenge with the Basic credential, and sends it up front afterwards', async () => {
    const server = await servers.start((req, res) => {
      if (req.headers.authorization === BASIC) {
        res.end('ok');
        return;
      }
      res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' });
      res.end();
    });
    const creds = countingCredentials();
    const client = createAuthClient({ send: transport(), credentials: creds.source });
    const req: AuthRequest = {
      method: 'GET',
      url: server.url('/v2/a/b/manifests/1'),
      registry: server.host,
      scopes: [PULL],
    };
    const res = await client.send(req);
    expect(res.status).toBe(200);
    expect(await res.text(100)).toBe('ok');
    await (await client.send(req)).dump();
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([undefined, BASIC, BASIC]);
    expect(creds.calls).toHaveLength(1);
  });

  it('returns the 401 of a Basic challenge when there is no credential', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' });
      res.end();
    });
    const client = createAuthClient({
      send: transport(),
      credentials: countingCredentials(null).source,
    });
    const res = await client.send({
      method: 'GET',
      url: server.url('/v2/'),
      registry: server.host,
      scopes: [],
    });
    expect(res.status).toBe(401);
    await res.dump();
    expect(server.requests).toHaveLength(1);
  });
});

/** A response as the transport would give it, for the one test that must not touch the network. */
function cannedResponse(url: URL, status: number, headers: Record<string, string>, body = ''): HttpResponse {
  const lower: Record<string, HeaderValue> = Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]),
  );
  const buf = Buffer.from(body);
  return {
    status,
    url,
    headers: lower,
    header: (name) => {
      const v = lower[name.toLowerCase()];
      return Array.isArray(v) ? v.join(', ') : v;
    },
    headerValues: (name) => {
      const v = lower[name.toLowerCase()];
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    },
    body: Readable.from([buf]),
    bytes: async () => buf,
    text: async () => body,
    dump: async () => {},
  };
}

describe('createAuthClient: realm checks', () => {
  const registryUrl = new URL('https://127.0.0.1:1/v2/a/b/manifests/1');

  function cannedSend(realm: string) {
    const sent: HttpRequest[] = [];
    const send: Send = async (req) => {
      sent.push(req);
      if (req.url.origin === registryUrl.origin) {
        return req.headers?.authorization
          ? cannedResponse(req.url, 200, {}, 'ok')
          : cannedResponse(req.url, 401, { 'WWW-Authenticate': `Bearer realm="${realm}",service="s"` });
      }
      return cannedResponse(req.url, 200, { 'content-type': 'application/json' }, '{"token":"t-1"}');
    };
    return { send, sent };
  }

  it('refuses a plain-HTTP realm for an HTTPS registry before sending anything to it', async () => {
    const { send, sent } = cannedSend('http://localhost.invalid.test/token');
    const client = createAuthClient({ send, credentials: countingCredentials().source });
    const err = await rejection(
      client.send({ method: 'GET', url: registryUrl, registry: '127.0.0.1:1', scopes: [PULL] }),
    );
    expect(err.code).toBe('ERR_INSECURE_REALM');
    expect(err.message).toContain('http://localhost.invalid.test');
    expect(err.message).not.toContain(PASSWORD);
    expect(sent.map((r) => r.url.href)).toEqual([registryUrl.href]);
  });

  it('allows a plain-HTTP realm on loopback for an HTTPS registry', async () => {
    const { send, sent } = cannedSend('http://127.0.0.2:1/token');
    const client = createAuthClient({ send, credentials: countingCredentials().source });
    const res = await client.send({
      method: 'GET',
      url: registryUrl,
      registry: '127.0.0.1:1',
      scopes: [PULL],
    });
    expect(res.status).toBe(200);
    expect(sent.map((r) => [r.url.origin, r.headers?.authorization])).toEqual([
      [registryUrl.origin, undefined],
      ['http://127.0.0.2:1', BASIC],
      [registryUrl.origin, 'Bearer t-1'],
    ]);
  });
});
