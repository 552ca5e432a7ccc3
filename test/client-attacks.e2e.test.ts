import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AuthRequest, createAuthClient } from '../src/auth/create-auth-client.js';
import type { Credential, CredentialSource } from '../src/auth/credentials/credential.js';
import { FileTokenStore } from '../src/auth/file-token-store.js';
import { TokenCache } from '../src/auth/token-cache.js';
import type { ResourceScope } from '../src/scope/parse-scope.js';
import {
  type LoopbackServer,
  loopbackServers,
  type RecordedRequest,
} from '../src/testing/loopback-server.js';
import { rejection } from '../src/testing/rejection.js';
import { createTransport } from '../src/transport/create-transport.js';
import { nodeHttpExchange } from '../src/transport/http-exchange.js';
import type { Send } from '../src/transport/http-types.js';
import { makeLoopbackTls } from './harness/tls.js';

/**
 * Attacks on the client's auth layer by a hostile registry, a hostile storage host behind a
 * redirect, or a registry that copies another's challenge. Every server is a real one on
 * 127.0.0.1; names under `.test` reach it through the transport's own lookup, so that a
 * registry can look public (a host name, HTTPS) while nothing leaves this machine.
 */

const REGISTRY = 'registry.example.test';
const AUTH = 'auth.example.test';
const STORAGE = 'storage.example.test';
const EVIL = 'evil.example.test';
const PULL: ResourceScope = { type: 'repository', name: 'a/b', actions: ['pull'] };
const ALICE: Credential = { username: 'alice', password: 'alice-secret-5d1e' };
const basic = (c: Credential) =>
  `Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64')}`;

/** Resolves every `.test` name to 127.0.0.1 and nothing else, so no request can leave loopback. */
const lookup: LookupFunction = (hostname, options, callback) => {
  const cb = callback as (err: Error | null, address: unknown, family?: number) => void;
  if (!hostname.endsWith('.test')) {
    cb(Object.assign(new Error(`test lookup: ${hostname} is not a test name`), { code: 'ENOTFOUND' }), '');
    return;
  }
  if ((options as { all?: boolean }).all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
};

const servers = loopbackServers();
afterEach(() => servers.closeAll());

let tls: { caPem: string; certPem: string; keyPem: string };
let work: string;
beforeAll(async () => {
  tls = await makeLoopbackTls([REGISTRY, AUTH, STORAGE, EVIL]);
  work = await mkdtemp(join(tmpdir(), 'regauth-attacks-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function transport(): Send {
  return createTransport({
    env: {},
    maxRetries: 0,
    sleep: async () => {},
    exchange: nodeHttpExchange({ ca: tls.caPem, lookup, connectTimeoutMs: 5_000, idleTimeoutMs: 10_000 }),
  });
}

/** Credentials per registry name; records every registry it was asked about. */
function credentialsFor(table: Record<string, Credential>) {
  const asked: string[] = [];
  const source: CredentialSource = {
    find: async (registry) => {
      asked.push(registry);
      const credential = table[registry];
      return credential === undefined ? undefined : { credential, source: 'test' };
    },
  };
  return { source, asked };
}

function startServer(handler: Parameters<typeof servers.start>[0], secure: boolean): Promise<LoopbackServer> {
  return servers.start(handler, secure ? { tls: { cert: tls.certPem, key: tls.keyPem } } : {});
}

function unauthorized(res: ServerResponse, challenge: string): void {
  res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': challenge });
  res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
}

/** A token realm that issues `<prefix>-<n>` to the credential it knows, and 401 to any other. */
async function startRealm(options: { secure: boolean; prefix: string; accepts: Credential }) {
  let issued = 0;
  const server = await startServer((req, res) => {
    const auth = req.headers.authorization;
    if (auth !== undefined && auth !== basic(options.accepts)) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"details":"wrong user name or password"}');
      return;
    }
    issued++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: `${options.prefix}-${issued}`, expires_in: 300 }));
  }, options.secure);
  return { server, tokens: () => server.requests };
}

/**
 * A registry that wants a token from `realm` (any token its realm issued, i.e. with `prefix`),
 * and answers `/v2/a/b/blobs/…` with a redirect when `redirect` names a location.
 */
async function startRegistry(options: {
  secure: boolean;
  challenge: () => string;
  accepts: (token: string) => boolean;
  redirect?: (req: RecordedRequest) => string | undefined;
}) {
  return startServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    if (token === undefined || !options.accepts(token)) {
      unauthorized(res, options.challenge());
      return;
    }
    const location = options.redirect?.(req);
    if (location !== undefined) {
      res.writeHead(307, { location });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url.pathname }));
  }, options.secure);
}

const at = (name: string, server: LoopbackServer, path: string, secure = server.origin.startsWith('https')) =>
  new URL(`${secure ? 'https' : 'http'}://${name}:${server.port}${path}`);

function request(url: URL, registry: string): AuthRequest {
  return { method: 'GET', url, registry, scopes: [PULL] };
}

async function login(send: Send, url: URL, credential: Credential) {
  const registry = url.host;
  const client = createAuthClient({ send, credentials: credentialsFor({ [registry]: credential }).source });
  return client.login({ method: 'GET', url, registry, scopes: [] });
}

describe('a storage host behind a redirect cannot collect registry credentials', () => {
  it('fails a fetch whose redirect target answers 401, sends it nothing, and remembers nothing of it', async () => {
    const realm = await startRealm({ secure: false, prefix: 'reg', accepts: ALICE });
    const storage = await startServer((req, res) => {
      if (req.url.pathname === '/token') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"token":"storage-token"}');
        return;
      }
      unauthorized(res, `Bearer realm="${at(STORAGE, storage, '/token').href}",service="storage"`);
    }, false);
    const registry = await startRegistry({
      secure: false,
      challenge: () => `Bearer realm="${realm.server.origin}/token",service="reg"`,
      accepts: (t) => t.startsWith('reg-'),
      redirect: (req) =>
        req.url.pathname.includes('/blobs/')
          ? at(STORAGE, storage, '/blob?X-Amz-Signature=abc').href
          : undefined,
    });
    const store = new FileTokenStore(join(work, 'redirect', 'tokens.json'));
    const client = createAuthClient({
      send: transport(),
      credentials: credentialsFor({ [registry.host]: ALICE }).source,
      tokenCache: new TokenCache({ store }),
      challengeStore: store,
    });
    // The client knows the registry's challenge (a manifest came first), as in every pull.
    const manifest = await client.send(request(registry.url('/v2/a/b/manifests/v1'), registry.host));
    expect(manifest.status).toBe(200);
    await manifest.dump();
    const err = await rejection(
      client.send(request(registry.url('/v2/a/b/blobs/sha256:0123'), registry.host)),
    );
    expect(err.code).toBe('ERR_FOREIGN_CHALLENGE');
    expect(err.message).toContain(`${STORAGE}:${storage.port}`);
    expect(err.message).not.toContain('X-Amz-Signature=abc');
    // The storage host saw one request, without credentials, and its realm was never asked.
    expect(storage.requests.map((r) => [r.url.pathname, r.headers.authorization])).toEqual([
      ['/blob', undefined],
    ]);
    // The registry's own challenge is what a later process finds.
    const file = await readFile(join(work, 'redirect', 'tokens.json'), 'utf8');
    expect(file).not.toContain(STORAGE);
    const later = createAuthClient({
      send: transport(),
      credentials: credentialsFor({ [registry.host]: ALICE }).source,
      challengeStore: new FileTokenStore(join(work, 'redirect', 'tokens.json')),
    });
    const res = await later.send(request(registry.url('/v2/a/b/manifests/v1'), registry.host));
    expect(res.status).toBe(200);
    await res.dump();
    expect(storage.requests).toHaveLength(1);
  });

  it('fails a fetch that an HTTPS registry redirects to a plain-HTTP hop asking for credentials', async () => {
    const realm = await startRealm({ secure: true, prefix: 'reg', accepts: ALICE });
    const evilRealm = await startRealm({ secure: true, prefix: 'evil', accepts: ALICE });
    const hop = await startServer((_req, res) => {
      unauthorized(res, `Bearer realm="${at(EVIL, evilRealm.server, '/token').href}",service="reg"`);
    }, false);
    const registry = await startRegistry({
      secure: true,
      challenge: () => `Bearer realm="${at(AUTH, realm.server, '/token').href}",service="reg"`,
      accepts: (t) => t.startsWith('reg-'),
      redirect: () => at(REGISTRY, hop, '/layer').href,
    });
    const client = createAuthClient({
      send: transport(),
      credentials: credentialsFor({ [REGISTRY]: ALICE }).source,
    });
    // Cold (the registry's 401, a token, then the redirect) and warm (the token up front).
    for (const digest of ['sha256:1', 'sha256:2']) {
      const err = await rejection(
        client.send(request(at(REGISTRY, registry, `/v2/a/b/blobs/${digest}`), REGISTRY)),
      );
      expect(err.code).toBe('ERR_FOREIGN_CHALLENGE');
      expect(err.message).toContain(`http://${REGISTRY}:${hop.port}`);
    }
    expect(evilRealm.tokens()).toHaveLength(0);
    expect(hop.requests.map((r) => r.headers.authorization)).toEqual([undefined, undefined]);
    expect(realm.tokens()).toHaveLength(1);
  });
});

describe('cached tokens belong to one registry and one secret', () => {
  it('never hands a token cached for one registry to another that copies its challenge', async () => {
    const realm = await startRealm({ secure: false, prefix: 'victim', accepts: ALICE });
    const challenge = () => `Bearer realm="${realm.server.origin}/token",service="victim-registry"`;
    const victim = await startRegistry({ secure: false, challenge, accepts: (t) => t.startsWith('victim-') });
    const copycat = await startRegistry({ secure: false, challenge, accepts: () => false });
    const file = join(work, 'copycat', 'tokens.json');
    const send = transport();
    const creds = credentialsFor({
      [victim.host]: ALICE,
      [copycat.host]: { username: 'alice', password: 'x' },
    });
    const first = createAuthClient({
      send,
      credentials: creds.source,
      tokenCache: new TokenCache({ store: new FileTokenStore(file) }),
      challengeStore: new FileTokenStore(file),
    });
    const ok = await first.send(request(victim.url('/v2/a/b/manifests/v1'), victim.host));
    expect(ok.status).toBe(200);
    await ok.dump();
    const tokenRequests = realm.tokens().length;

    // A later process talks to the copycat, whose challenge names the victim's realm and service.
    const second = createAuthClient({
      send,
      credentials: creds.source,
      tokenCache: new TokenCache({ store: new FileTokenStore(file) }),
      challengeStore: new FileTokenStore(file),
    });
    // It has to ask the realm itself, with its own credential, which the realm refuses.
    const err = await rejection(second.send(request(copycat.url('/v2/a/b/manifests/v1'), copycat.host)));
    expect(err.code).toBe('ERR_UNAUTHORIZED');
    const seen = copycat.requests.map((r) => r.headers.authorization ?? '');
    expect(seen.some((a) => a.includes('victim-'))).toBe(false);
    expect(
      realm
        .tokens()
        .slice(tokenRequests)
        .map((r) => r.headers.authorization),
    ).toEqual([basic({ username: 'alice', password: 'x' })]);
  });

  it('asks the realm again for a different password of the same user, rather than reuse the cached token', async () => {
    const realm = await startRealm({ secure: false, prefix: 'reg', accepts: ALICE });
    const registry = await startRegistry({
      secure: false,
      challenge: () => `Bearer realm="${realm.server.origin}/token",service="reg"`,
      accepts: (t) => t.startsWith('reg-'),
    });
    const file = join(work, 'wrong-password', 'tokens.json');
    const client = (credential: Credential) =>
      createAuthClient({
        send: transport(),
        credentials: credentialsFor({ [registry.host]: credential }).source,
        tokenCache: new TokenCache({ store: new FileTokenStore(file) }),
        challengeStore: new FileTokenStore(file),
      });
    const ok = await client(ALICE).send(request(registry.url('/v2/a/b/manifests/v1'), registry.host));
    expect(ok.status).toBe(200);
    await ok.dump();
    const err = await rejection(
      client({ username: 'alice', password: 'not-her-password' }).send(
        request(registry.url('/v2/a/b/manifests/v1'), registry.host),
      ),
    );
    expect(err.code).toBe('ERR_UNAUTHORIZED');
    expect(realm.tokens().map((r) => r.headers.authorization)).toEqual([
      basic(ALICE),
      basic({ username: 'alice', password: 'not-her-password' }),
    ]);
  });
});

describe('one realm check for every route to a token, login included', () => {
  it('refuses to log in through a plain-HTTP realm named by an HTTPS registry, sending the realm nothing', async () => {
    const clear = await startRealm({ secure: false, prefix: 'reg', accepts: ALICE });
    const registry = await startRegistry({
      secure: true,
      challenge: () => `Bearer realm="${at(AUTH, clear.server, '/token').href}",service="reg"`,
      accepts: (t) => t.startsWith('reg-'),
    });
    const err = await rejection(login(transport(), at(REGISTRY, registry, '/v2/'), ALICE));
    expect(err.code).toBe('ERR_INSECURE_REALM');
    expect(err.message).not.toContain(ALICE.password);
    expect(clear.tokens()).toHaveLength(0);
  });

  it('refuses a loopback realm named by a public registry, for login and for every request', async () => {
    const local = await startRealm({ secure: true, prefix: 'reg', accepts: ALICE });
    const registry = await startRegistry({
      secure: true,
      challenge: () => `Bearer realm="${local.server.origin}/token",service="reg"`,
      accepts: (t) => t.startsWith('reg-'),
    });
    const loginErr = await rejection(login(transport(), at(REGISTRY, registry, '/v2/'), ALICE));
    expect(loginErr.code).toBe('ERR_INSECURE_REALM');
    const client = createAuthClient({
      send: transport(),
      credentials: credentialsFor({ [REGISTRY]: ALICE }).source,
    });
    const sendErr = await rejection(
      client.send(request(at(REGISTRY, registry, '/v2/a/b/manifests/v1'), REGISTRY)),
    );
    expect(sendErr.code).toBe('ERR_INSECURE_REALM');
    expect(local.tokens()).toHaveLength(0);
  });
});

describe('a cached challenge that fails the realm check', () => {
  it('is dropped and the registry asked again, instead of failing every later run', async () => {
    const realm = await startRealm({ secure: true, prefix: 'reg', accepts: ALICE });
    const registry = await startRegistry({
      secure: true,
      challenge: () => `Bearer realm="${at(AUTH, realm.server, '/token').href}",service="reg"`,
      accepts: (t) => t.startsWith('reg-'),
    });
    const origin = at(REGISTRY, registry, '/').origin;
    const file = join(work, 'stale', 'tokens.json');
    // What an earlier run (or a planted file) left: a realm over plain HTTP for this HTTPS registry.
    new FileTokenStore(file).saveChallenge(origin, {
      scheme: 'bearer',
      params: { realm: `http://${AUTH}:1/token`, service: 'reg' },
    });
    const client = createAuthClient({
      send: transport(),
      credentials: credentialsFor({ [REGISTRY]: ALICE }).source,
      tokenCache: new TokenCache({ store: new FileTokenStore(file) }),
      challengeStore: new FileTokenStore(file),
    });
    const res = await client.send(request(at(REGISTRY, registry, '/v2/a/b/manifests/v1'), REGISTRY));
    expect(res.status).toBe(200);
    await res.dump();
    expect(new FileTokenStore(file).loadChallenge(origin)?.params.realm).toBe(
      at(AUTH, realm.server, '/token').href,
    );
  });
});
