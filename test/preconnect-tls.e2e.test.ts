import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTokenStore } from '../src/auth/memory-token-store.js';
import { isRegauthError } from '../src/errors/regauth-error.js';
import { createRegistryClients } from '../src/registry/create-registry-clients.js';
import { startLoopbackServer } from '../src/testing/loopback-server.js';
import { createTransport } from '../src/transport/create-transport.js';
import { makeLoopbackTls } from './harness/tls.js';

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('Transport.preconnect over TLS', () => {
  let work: string;
  let caFile: string;
  let server: Server;
  let origin: URL;
  const sockets = new Set<Socket>();
  /** For each request, the number of the TLS connection it came on (1 = the first handshake). */
  const requests: number[] = [];
  let handshakes = 0;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regauth-preconnect-'));
    const tls = await makeLoopbackTls();
    caFile = join(work, 'ca.pem');
    await writeFile(caFile, tls.caPem);
    const ids = new WeakMap<Socket, number>();
    server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      requests.push(ids.get(req.socket) ?? -1);
      res.end('ok');
    });
    server.on('secureConnection', (socket) => {
      handshakes++;
      ids.set(socket, handshakes);
      sockets.add(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = new URL(`https://127.0.0.1:${(server.address() as { port: number }).port}/`);
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('makes the TLS handshake ahead, and the first request uses that connection', async () => {
    const send = createTransport({ env: {}, caFile, maxRetries: 0 });
    const first = handshakes;
    send.preconnect(origin);
    await until(() => handshakes > first);
    expect(handshakes).toBe(first + 1);
    expect(requests).toEqual([]);
    const res = await send({ method: 'GET', url: new URL('/v2/', origin) });
    expect(await res.text(10)).toBe('ok');
    expect(requests).toEqual([first + 1]);
    expect(handshakes).toBe(first + 1);
  });

  it('refuses a certificate it does not trust, with the same error a request meets without it', async () => {
    const plain = await createTransport({ env: {}, maxRetries: 0 })({
      method: 'GET',
      url: new URL('/v2/', origin),
    }).catch((e: unknown) => e);
    const send = createTransport({ env: {}, maxRetries: 0 });
    send.preconnect(origin);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const early = await send({ method: 'GET', url: new URL('/v2/', origin) }).catch((e: unknown) => e);
    expect(isRegauthError(plain, 'ERR_NETWORK')).toBe(true);
    expect(isRegauthError(early, 'ERR_NETWORK')).toBe(true);
    expect((early as Error).message).toBe((plain as Error).message);
    expect((early as Error).message).toMatch(/certificate/);
    expect(requests.length).toBe(1);
  });

  it('does not hand a TLS connection to a plain-HTTP request to the same port', async () => {
    const send = createTransport({ env: {}, caFile, maxRetries: 0 });
    const first = handshakes;
    send.preconnect(origin);
    await until(() => handshakes > first);
    const plain = new URL(`http://127.0.0.1:${origin.port}/v2/`);
    const err = await send({ method: 'GET', url: plain }).catch((e: unknown) => e);
    // Node's TLS server drops a plain-HTTP request: no answer, and no request was served.
    expect(err).toBeInstanceOf(Error);
    expect(requests.length).toBe(1);
  });
});

describe('a loopback port that moved from plain HTTP to TLS, with a challenge kept from before', () => {
  it('never sends the password to the realm the plain-HTTP registry named: the ping comes first', async () => {
    const work = await mkdtemp(join(tmpdir(), 'regauth-moved-'));
    const tls = await makeLoopbackTls();
    const caFile = join(work, 'ca.pem');
    await writeFile(caFile, tls.caPem);
    const staleRealm = await startLoopbackServer((_req, res) => {
      res.statusCode = 401;
      res.end('{}');
    });
    const registry = await startLoopbackServer(
      (req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(req.target === '/v2/' ? '{}' : '{"name":"a","tags":["v1"]}');
      },
      { tls: { cert: tls.certPem, key: tls.keyPem } },
    );
    try {
      const store = new MemoryTokenStore();
      // What runs against the plain-HTTP registry once on this port left in the token cache.
      store.saveLoopbackScheme(registry.host, 'http');
      store.saveChallenge(`http://${registry.host}`, {
        scheme: 'bearer',
        params: { realm: `${staleRealm.origin}/token`, service: 'old' },
      });
      const clients = createRegistryClients({
        env: {},
        store,
        caFile,
        credentials: {
          find: async () => ({ credential: { username: 'u', password: 'pw-moved-5' }, source: 'test' }),
        },
      });
      expect(await clients.forRegistry(registry.host).listTags('a')).toEqual(['v1']);
      expect(staleRealm.requests).toEqual([]);
      expect(store.loadLoopbackScheme(registry.host)).toBe('https');
    } finally {
      await staleRealm.close();
      await registry.close();
      await rm(work, { recursive: true, force: true });
    }
  });
});
