import { afterEach, describe, expect, it } from 'vitest';
import type { AuthRequest, AuthSend } from '../auth/create-auth-client.js';
import { MemoryTokenStore } from '../auth/memory-token-store.js';
import { isAbortedError } from '../errors/aborted-error.js';
import { loopbackServers } from '../testing/loopback-server.js';
import { createTransport } from '../transport/create-transport.js';
import type { Send } from '../transport/http-types.js';
import type { TraceEvent } from '../transport/trace.js';
import { createRegistryClients } from './create-registry-clients.js';
import { type RegistrySchemeStore, RegistrySchemes } from './registry-schemes.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

function transport(): Send {
  return createTransport({ env: {}, maxRetries: 0, sleep: async () => {} });
}

/** A RegistrySchemes whose pings are counted, and its wrap around the real transport. */
function schemesWith(
  store: RegistrySchemeStore | undefined,
  extra: { trace?: (e: TraceEvent) => void } = {},
) {
  const pingSend = transport();
  const pings: string[] = [];
  const schemes = new RegistrySchemes({
    send: (req) => {
      pings.push(req.url.href);
      return pingSend(req);
    },
    ...(store === undefined ? {} : { store }),
    ...extra,
  });
  const send = transport();
  const sent: string[] = [];
  const wrapped = schemes.wrap(async (req) => {
    sent.push(`${req.method} ${req.url.href}`);
    return send(req);
  });
  return { schemes, wrapped, pings, sent };
}

function get(host: string, path = '/v2/', method = 'GET', signal?: AbortSignal): AuthRequest {
  return {
    method,
    url: new URL(`https://${host}${path}`),
    registry: host,
    scopes: [],
    ...(signal === undefined ? {} : { signal }),
  };
}

async function status(send: AuthSend, req: AuthRequest): Promise<number> {
  const res = await send(req);
  await res.dump();
  return res.status;
}

/**
 * A registry that answers `Bearer <token>` and refuses anything else with a challenge naming a
 * realm that issues that token; `order` records who was asked, in turn.
 */
async function tokenRegistry(token: string) {
  const order: string[] = [];
  const realm = await servers.start((_req, res) => {
    order.push('realm');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ token, expires_in: 300 }));
  });
  const server = await servers.start((req, res) => {
    order.push(`registry ${req.headers.authorization === undefined ? 'without' : 'with'} authorization`);
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.statusCode = 401;
      res.setHeader('www-authenticate', `Bearer realm="${realm.origin}/token",service="s"`);
      res.end('{}');
      return;
    }
    res.end('{}');
  });
  return { order, realm, server };
}

describe('RegistrySchemes with a store: the scheme a ping found, tried first by the next process', () => {
  it('keeps what the ping found, and a new object with the same store sends its GETs at once', async () => {
    const server = await servers.start((_req, res) => {
      res.end('{}');
    });
    const store = new MemoryTokenStore();
    const first = schemesWith(store);
    expect(await status(first.wrapped, get(server.host))).toBe(200);
    expect(first.pings).toEqual([`https://${server.host}/v2/`]);
    expect(store.loadLoopbackScheme(server.host)).toBe('http');

    const notes: string[] = [];
    const next = schemesWith(store, { trace: (e) => e.kind === 'note' && notes.push(e.text) });
    const answers = await Promise.all(
      [1, 2, 3].map((i) => status(next.wrapped, get(server.host, `/v2/x${i}`))),
    );
    expect(answers).toEqual([200, 200, 200]);
    // A POST after the first answer confirmed the scheme: no ping either.
    expect(await status(next.wrapped, get(server.host, '/v2/y/blobs/uploads/', 'POST'))).toBe(200);
    expect(next.pings).toEqual([]);
    expect(next.sent.every((s) => s.includes(`http://${server.host}/`))).toBe(true);
    expect(server.requests.map((r) => r.target)).toEqual([
      '/v2/',
      '/v2/x1',
      '/v2/x2',
      '/v2/x3',
      '/v2/y/blobs/uploads/',
    ]);
    expect(notes).toEqual([`${server.host} spoke plain HTTP when last pinged; trying that first`]);
    expect(await next.schemes.scheme(server.host)).toBe('http');
  });

  it('pings before a request that is not a GET or HEAD, even with a scheme remembered', async () => {
    const server = await servers.start((_req, res) => {
      res.end('{}');
    });
    const store = new MemoryTokenStore();
    store.saveLoopbackScheme(server.host, 'http');
    const { wrapped, pings } = schemesWith(store);
    expect(await status(wrapped, get(server.host, '/v2/y/blobs/uploads/', 'POST'))).toBe(200);
    expect(pings).toEqual([`https://${server.host}/v2/`]);
    expect(server.requests.map((r) => r.method)).toEqual(['POST']);
  });

  it('pings and sends again when the remembered scheme is refused: HTTPS remembered, plain HTTP spoken now', async () => {
    const server = await servers.start((_req, res) => {
      res.end('{}');
    });
    const store = new MemoryTokenStore();
    store.saveLoopbackScheme(server.host, 'https');
    const notes: string[] = [];
    const { wrapped, pings, sent } = schemesWith(store, {
      trace: (e: TraceEvent) => e.kind === 'note' && notes.push(e.text),
    });
    expect(await status(wrapped, get(server.host, '/v2/a/manifests/b'))).toBe(200);
    expect(sent).toEqual([
      `GET https://${server.host}/v2/a/manifests/b`,
      `GET http://${server.host}/v2/a/manifests/b`,
    ]);
    expect(pings).toEqual([`https://${server.host}/v2/`]);
    // The refused TLS attempts never reached the HTTP handler: one request was answered.
    expect(server.requests.map((r) => r.target)).toEqual(['/v2/a/manifests/b']);
    expect(store.loadLoopbackScheme(server.host)).toBe('http');
    expect(notes).toContain(`${server.host} no longer speaks HTTPS; the HTTPS ping found plain HTTP`);
  });

  it('checks a 400 with a ping and sends the request once more, then hands the 400 on', async () => {
    const server = await servers.start((_req, res) => {
      res.statusCode = 400;
      res.end('{"errors":[{"code":"NAME_INVALID"}]}');
    });
    const store = new MemoryTokenStore();
    store.saveLoopbackScheme(server.host, 'http');
    const { wrapped, pings } = schemesWith(store);
    const res = await wrapped(get(server.host, '/v2/A/tags/list'));
    expect(res.status).toBe(400);
    expect(await res.text(1024)).toContain('NAME_INVALID');
    expect(pings).toHaveLength(1);
    expect(server.requests.map((r) => r.target)).toEqual(['/v2/A/tags/list', '/v2/A/tags/list']);
    expect(store.loadLoopbackScheme(server.host)).toBe('http');
  });

  it('makes the requests that come meanwhile wait for the first one, and gives them the ping when it is refused', async () => {
    const server = await servers.start((_req, res) => {
      res.end('{}');
    });
    const store = new MemoryTokenStore();
    store.saveLoopbackScheme(server.host, 'https');
    const { wrapped, pings } = schemesWith(store);
    const answers = await Promise.all([
      status(wrapped, get(server.host, '/v2/1')),
      status(wrapped, get(server.host, '/v2/2', 'PUT')),
      status(wrapped, get(server.host, '/v2/3')),
    ]);
    expect(answers).toEqual([200, 200, 200]);
    expect(pings).toHaveLength(1);
    expect(server.requests.map((r) => r.target).sort()).toEqual(['/v2/1', '/v2/2', '/v2/3']);
  });

  it('goes on without a store that throws, and says which method failed', async () => {
    const server = await servers.start((_req, res) => {
      res.end('{}');
    });
    const failed: string[] = [];
    const store: RegistrySchemeStore = {
      loadLoopbackScheme: () => {
        throw new Error('store down');
      },
      saveLoopbackScheme: async () => {
        throw new Error('store down');
      },
    };
    const pingSend = transport();
    let pings = 0;
    const schemes = new RegistrySchemes({
      send: (req) => {
        pings++;
        return pingSend(req);
      },
      store,
      onStoreError: (_err, operation) => failed.push(operation),
    });
    const send = transport();
    expect(
      await status(
        schemes.wrap((req) => send(req)),
        get(server.host),
      ),
    ).toBe(200);
    expect(pings).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(failed).toEqual(['loadLoopbackScheme', 'saveLoopbackScheme']);
  });

  it('rejects an aborted first request with ERR_ABORTED, and the next request still finds the scheme', async () => {
    let hold = true;
    const server = await servers.start(async (_req, res) => {
      while (hold) await new Promise((resolve) => setTimeout(resolve, 10));
      res.end('{}');
    });
    const store = new MemoryTokenStore();
    store.saveLoopbackScheme(server.host, 'http');
    const { wrapped } = schemesWith(store);
    const controller = new AbortController();
    const aborted = wrapped(get(server.host, '/v2/slow', 'GET', controller.signal)).catch(
      (err: unknown) => err,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    expect(isAbortedError(await aborted)).toBe(true);
    hold = false;
    expect(await status(wrapped, get(server.host, '/v2/next'))).toBe(200);
  });

  it('never asks a store for registries that are not on loopback, nor with insecure', async () => {
    const asked: string[] = [];
    const store: RegistrySchemeStore = {
      loadLoopbackScheme: (host) => {
        asked.push(host);
        return 'http';
      },
      saveLoopbackScheme: () => {},
    };
    const seen: string[] = [];
    const remote = new RegistrySchemes({ send: transport(), store }).wrap(async (req) => {
      seen.push(req.url.href);
      throw new Error('not sent');
    });
    await remote(get('registry.example:5000')).catch(() => {});
    const insecure = new RegistrySchemes({ send: transport(), store, insecure: true }).wrap(async (req) => {
      seen.push(req.url.href);
      throw new Error('not sent');
    });
    await insecure(get('127.0.0.1:5000')).catch(() => {});
    expect(asked).toEqual([]);
    expect(seen).toEqual(['https://registry.example:5000/v2/', 'https://127.0.0.1:5000/v2/']);
  });

  it('sends a request that met a 503 again with the usual retries, as without a remembered scheme', async () => {
    let answered = 0;
    const server = await servers.start((req, res) => {
      if (req.target.startsWith('/v2/a/tags/list') && answered++ === 0) {
        res.statusCode = 503;
        res.end('{}');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end('{"name":"a","tags":["v1"]}');
    });
    const store = new MemoryTokenStore();
    store.saveLoopbackScheme(server.host, 'http');
    const clients = createRegistryClients({ env: {}, store, credentials: { find: async () => undefined } });
    expect(await clients.forRegistry(server.host).listTags('a')).toEqual(['v1']);
    expect(server.requests.map((r) => r.target)).toEqual([
      '/v2/a/tags/list?n=1000',
      '/v2/a/tags/list?n=1000',
    ]);
  });

  it('sends a password to the realm once when the realm refuses it: an error past the answer is not a refusal of the scheme', async () => {
    let tokenRequests = 0;
    const server = await servers.start((req, res) => {
      if (req.target.startsWith('/token')) {
        tokenRequests++;
        res.statusCode = 401;
        res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      res.statusCode = 401;
      res.setHeader('www-authenticate', `Bearer realm="http://${server.host}/token",service="s"`);
      res.end('{}');
    });
    const store = new MemoryTokenStore();
    store.saveLoopbackScheme(server.host, 'http');
    const notes: string[] = [];
    const clients = createRegistryClients({
      env: {},
      store,
      credentials: {
        find: async () => ({ credential: { username: 'u', password: 'pw-wrong-77' }, source: 'test' }),
      },
      trace: (e: TraceEvent) => e.kind === 'note' && notes.push(e.text),
    });
    const err = await clients
      .forRegistry(server.host)
      .listTags('a')
      .catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ERR_UNAUTHORIZED');
    expect(tokenRequests).toBe(1);
    expect(server.requests.filter((r) => !r.target.startsWith('/token'))).toHaveLength(1);
    expect(notes.some((n) => n.includes('the HTTPS ping found'))).toBe(false);
  });

  it("over plain HTTP, pings before a password would go to a kept challenge's realm", async () => {
    const { order, realm, server } = await tokenRegistry('tok-after-ping');
    const store = new MemoryTokenStore();
    store.saveLoopbackScheme(server.host, 'http');
    // What a run against this port left: its challenge, naming the realm (no token).
    store.saveChallenge(`http://${server.host}`, {
      scheme: 'bearer',
      params: { realm: `${realm.origin}/token`, service: 's' },
    });
    const { auth } = createRegistryClients({
      env: {},
      store,
      credentials: {
        find: async () => ({ credential: { username: 'u', password: 'pw-kept-31' }, source: 'test' }),
      },
    });
    const pingSend = transport();
    const send = new RegistrySchemes({
      send: (req) => {
        order.push('ping');
        return pingSend(req);
      },
      store,
    }).wrap((req) => auth.send(req));
    expect(await status(send, get(server.host, '/v2/a/tags/list'))).toBe(200);
    // The ping confirmed plain HTTP before the password went to the realm: two requests, as
    // with the challenge and no remembered scheme.
    expect(order).toEqual(['ping', 'realm', 'registry with authorization']);
  });

  it('over plain HTTP, sends a cached token at once, without a ping', async () => {
    const { order, server } = await tokenRegistry('tok-cached');
    const store = new MemoryTokenStore();
    const credentials = {
      find: async () => ({ credential: { username: 'u', password: 'pw-cached-8' }, source: 'test' }),
    };
    const first = createRegistryClients({ env: {}, store, credentials });
    expect(await first.forRegistry(server.host).listTags('a')).toEqual([]);
    order.length = 0;
    const notes: string[] = [];
    const next = createRegistryClients({
      env: {},
      store,
      credentials,
      trace: (e: TraceEvent) => e.kind === 'note' && notes.push(e.text),
    });
    expect(await next.forRegistry(server.host).listTags('a')).toEqual([]);
    expect(order).toEqual(['registry with authorization']);
    expect(notes).toContain(`${server.host} spoke plain HTTP when last pinged; trying that first`);
  });

  it('tells where a registry lives without asking it, when it can', async () => {
    const store = new MemoryTokenStore();
    store.saveLoopbackScheme('127.0.0.1:5999', 'http');
    store.saveLoopbackScheme('localhost', 'http');
    const schemes = new RegistrySchemes({ send: transport(), store });
    expect((await schemes.knownBaseUrl('docker.io'))?.href).toBe('https://registry-1.docker.io/');
    expect((await schemes.knownBaseUrl('registry.example:5000'))?.href).toBe(
      'https://registry.example:5000/',
    );
    expect((await schemes.knownBaseUrl('127.0.0.1:5999'))?.href).toBe('http://127.0.0.1:5999/');
    expect(await schemes.knownBaseUrl('127.0.0.1:5998')).toBeUndefined();
    // Without a port, HTTP and HTTPS are two ports: only a ping can tell.
    expect(await schemes.knownBaseUrl('localhost')).toBeUndefined();
    expect(
      (await new RegistrySchemes({ send: transport(), insecure: true }).knownBaseUrl('localhost'))?.href,
    ).toBe('http://localhost/');
  });

  it('RegistryClients.preconnect connects to a registry whose scheme is known, and to no other', async () => {
    const known = await servers.start((_req, res) => {
      res.end('{}');
    });
    const unknown = await servers.start((_req, res) => {
      res.end('{}');
    });
    const store = new MemoryTokenStore();
    store.saveLoopbackScheme(known.host, 'http');
    const clients = createRegistryClients({ env: {}, store, credentials: { find: async () => undefined } });
    clients.preconnect(known.host);
    clients.preconnect(unknown.host);
    for (let i = 0; i < 100 && known.connections === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    expect({ known: known.connections, unknown: unknown.connections }).toEqual({ known: 1, unknown: 0 });
    expect(known.requests).toEqual([]);
  });

  it('through a proxy neither reads nor keeps a scheme: the proxy, not the registry, would answer the first request', async () => {
    const server = await servers.start((_req, res) => {
      res.end('{}');
    });
    const asked: string[] = [];
    class WatchedStore extends MemoryTokenStore {
      override loadLoopbackScheme(host: string) {
        asked.push(`load ${host}`);
        return super.loadLoopbackScheme(host);
      }
      override saveLoopbackScheme(host: string, scheme: 'http' | 'https') {
        asked.push(`save ${host}`);
        super.saveLoopbackScheme(host, scheme);
      }
    }
    const store = new WatchedStore();
    store.saveLoopbackScheme(server.host, 'http');
    asked.length = 0;
    const proxyPort = (
      await servers.start((_req, res) => {
        res.statusCode = 502;
        res.end();
      })
    ).port;
    const clients = createRegistryClients({
      env: { HTTP_PROXY: `http://127.0.0.1:${proxyPort}` },
      store,
      maxRetries: 0,
      credentials: { find: async () => undefined },
    });
    await clients
      .forRegistry(server.host)
      .listTags('a')
      .catch(() => {});
    expect(asked).toEqual([]);
    expect(await clients.baseUrl(server.host)).toEqual(new URL(`http://${server.host}/`));
  });
});
