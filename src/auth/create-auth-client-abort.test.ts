import { afterEach, describe, expect, it } from 'vitest';
import { loopbackServers, type RecordedRequest } from '../testing/loopback-server.js';
import { rejection } from '../testing/rejection.js';
import { createTransport } from '../transport/create-transport.js';
import { type AuthRequest, createAuthClient } from './create-auth-client.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

const TOKEN = 'tok-abort-test';

/** A promise and the function that settles it. */
function gate(): { readonly opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/**
 * A registry and its realm on one loopback server. `/token` answers once `tokenGate` opens;
 * the first unauthenticated `/v2/` request is answered (401) once `firstChallengeGate` opens.
 */
async function startSlowRealm(options: { readonly holdFirstChallenge?: boolean } = {}) {
  const tokenGate = gate();
  const firstChallengeGate = gate();
  const tokenAsked = gate();
  const challengeAsked = gate();
  let challenges = 0;
  const server = await servers.start(async (req: RecordedRequest, res) => {
    if (req.url.pathname === '/token') {
      tokenAsked.open();
      await tokenGate.opened;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: TOKEN, expires_in: 300 }));
      return;
    }
    if (req.headers.authorization === `Bearer ${TOKEN}`) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    if (challenges++ === 0 && options.holdFirstChallenge) {
      challengeAsked.open();
      await firstChallengeGate.opened;
    }
    res.writeHead(401, {
      'www-authenticate': `Bearer realm="${server.origin}/token",service="test",scope="repository:a/b:pull"`,
    });
    res.end();
  });
  const request = (signal?: AbortSignal): AuthRequest => ({
    method: 'GET',
    url: server.url('/v2/a/b/manifests/latest'),
    registry: server.host,
    scopes: [{ type: 'repository', name: 'a/b', actions: ['pull'] }],
    ...(signal === undefined ? {} : { signal }),
  });
  const tokenRequests = () => server.requests.filter((r) => r.url.pathname === '/token');
  return { server, request, tokenRequests, tokenGate, firstChallengeGate, tokenAsked, challengeAsked };
}

describe('createAuthClient: abort', () => {
  it('rejects only the aborted one of two requests waiting on one token fetch', async () => {
    const realm = await startSlowRealm();
    const auth = createAuthClient({
      send: createTransport({ env: {}, maxRetries: 0 }),
      credentials: { find: async () => undefined },
    });
    const controller = new AbortController();
    const aborted = auth.send(realm.request(controller.signal));
    const other = auth.send(realm.request());
    await realm.tokenAsked.opened;
    controller.abort();
    const err = await rejection(aborted);
    expect(err.code).toBe('ERR_ABORTED');
    realm.tokenGate.open();
    const res = await other;
    expect(res.status).toBe(200);
    await res.dump();
    expect(realm.tokenRequests()).toHaveLength(1);
  });

  it('hands the challenge discovery on when the request finding it out is aborted', async () => {
    const realm = await startSlowRealm({ holdFirstChallenge: true });
    realm.tokenGate.open();
    const auth = createAuthClient({
      send: createTransport({ env: {}, maxRetries: 0 }),
      credentials: { find: async () => undefined },
    });
    const controller = new AbortController();
    const discovering = auth.send(realm.request(controller.signal));
    await realm.challengeAsked.opened;
    const waiting = auth.send(realm.request());
    controller.abort();
    expect((await rejection(discovering)).code).toBe('ERR_ABORTED');
    const res = await waiting;
    expect(res.status).toBe(200);
    await res.dump();
    realm.firstChallengeGate.open();
    expect(realm.tokenRequests()).toHaveLength(1);
  });

  it('stops a token fetch of its own at the abort (login)', async () => {
    const realm = await startSlowRealm();
    const auth = createAuthClient({
      send: createTransport({ env: {}, maxRetries: 0 }),
      credentials: { find: async () => ({ credential: { username: 'u', password: 'p' }, source: 'test' }) },
    });
    const controller = new AbortController();
    const login = auth.login({ ...realm.request(controller.signal), url: realm.server.url('/v2/') });
    await realm.tokenAsked.opened;
    controller.abort();
    expect((await rejection(login)).code).toBe('ERR_ABORTED');
    realm.tokenGate.open();
  });
});
