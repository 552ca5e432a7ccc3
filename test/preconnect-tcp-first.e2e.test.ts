import type { LookupAddress, LookupAllOptions, LookupOneOptions } from 'node:dns';
import { createServer, type Server } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isRegauthError } from '../src/errors/regauth-error.js';
import { closedPort } from '../src/testing/loopback-server.js';
import { runModuleScript } from '../src/testing/run-module-script.js';
import { createTransport } from '../src/transport/create-transport.js';
import { nodeHttpExchange } from '../src/transport/http-exchange.js';
import { makeLoopbackTls } from './harness/tls.js';

/**
 * Building TLS (loading node:tls, its trust) is held here until a test lets it go, so that what
 * happens before it is built can be seen: the rest of the function is the real one.
 */
const held = vi.hoisted(() => {
  let release: () => void = () => {};
  let gate = Promise.resolve();
  return {
    builds: 0,
    get gate() {
      return gate;
    },
    hold() {
      gate = new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    release: () => release(),
  };
});
vi.mock('../src/transport/trusted-secure-context.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/transport/trusted-secure-context.js')>();
  return {
    ...real,
    trustedSecureContext: async (extraCa?: string) => {
      held.builds++;
      await held.gate;
      return real.trustedSecureContext(extraCa);
    },
  };
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

/**
 * A lookup that sends `registry.test` to `addresses` (127.0.0.1), once `answer` lets it (as a slow
 * DNS server).
 */
function testLookup(
  answer: () => Promise<void> = async () => {},
  addresses: readonly LookupAddress[] = [{ address: '127.0.0.1', family: 4 }],
) {
  const calls: string[] = [];
  const lookup = (
    hostname: string,
    options: LookupOneOptions | LookupAllOptions,
    callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    calls.push(hostname);
    answer().then(() => {
      if (hostname !== 'registry.test') {
        callback(Object.assign(new Error(`no such host ${hostname}`), { code: 'ENOTFOUND' }), '');
      } else if ((options as LookupAllOptions).all) callback(null, [...addresses]);
      else callback(null, addresses[0]?.address ?? '', addresses[0]?.family);
    });
  };
  return { lookup: lookup as never, calls };
}

describe('an HTTPS connection opened ahead: TCP first, TLS over it once built', () => {
  let server: Server;
  let port: number;
  let ca: string;
  const sockets = new Set<Socket>();
  const seen = { tcp: 0, tls: 0, requests: [] as number[] };

  beforeAll(async () => {
    const tls = await makeLoopbackTls(['registry.test']);
    ca = tls.caPem;
    const ids = new WeakMap<Socket, number>();
    server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      seen.requests.push(ids.get(req.socket) ?? -1);
      res.end('ok');
    });
    server.on('connection', (socket: Socket) => {
      seen.tcp++;
      sockets.add(socket);
    });
    server.on('secureConnection', (socket) => {
      seen.tls++;
      ids.set(socket, seen.tls);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  afterEach(() => {
    held.release();
    held.builds = 0;
    seen.tcp = 0;
    seen.tls = 0;
    seen.requests.length = 0;
    for (const s of sockets) s.destroy();
    sockets.clear();
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
  });

  const exchange = (lookup?: never) =>
    nodeHttpExchange({ ca, connectTimeoutMs: 5_000, idleTimeoutMs: 5_000, ...(lookup ? { lookup } : {}) });

  const get = async (send: ReturnType<typeof exchange>, url: URL) => {
    const res = await send({ method: 'GET', url, headers: {} });
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) chunks.push(chunk as Buffer);
    return { status: res.status, text: Buffer.concat(chunks).toString() };
  };

  for (const [what, host] of [
    ['an address', '127.0.0.1'],
    ['a name, once looked up', 'registry.test'],
  ] as const) {
    it(`connects to ${what} while TLS is still being built, then makes the handshake on that connection`, async () => {
      const { lookup, calls } = testLookup();
      const send = exchange(lookup);
      const origin = new URL(`https://${host}:${port}/`);
      held.hold();
      send.preconnect?.(origin);
      await until(() => seen.tcp > 0);
      // Connected, and TLS not even built: no handshake yet.
      expect(seen.tcp).toBe(1);
      expect(seen.tls).toBe(0);
      expect(held.builds).toBe(1);
      held.release();
      await until(() => seen.tls > 0);
      expect(await get(send, new URL('/v2/', origin))).toEqual({ status: 200, text: 'ok' });
      // The request went over the connection opened ahead, checked against the CA as any other.
      expect(seen).toEqual({ tcp: 1, tls: 1, requests: [1] });
      expect(calls).toEqual(host === '127.0.0.1' ? [] : ['registry.test']);
    });
  }

  it('hands the connection opened ahead to a request sent while TLS was still being built', async () => {
    const send = exchange();
    const origin = new URL(`https://127.0.0.1:${port}/`);
    held.hold();
    send.preconnect?.(origin);
    await until(() => seen.tcp > 0);
    expect(seen.tcp).toBe(1);
    const answer = get(send, new URL('/v2/', origin));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen.tls).toBe(0);
    held.release();
    expect(await answer).toEqual({ status: 200, text: 'ok' });
    expect(seen).toEqual({ tcp: 1, tls: 1, requests: [1] });
  });

  it('connects first for the first HTTPS request too, when nothing was opened ahead', async () => {
    const send = exchange();
    const origin = new URL(`https://127.0.0.1:${port}/`);
    held.hold();
    const answer = get(send, new URL('/v2/', origin));
    await until(() => seen.tcp > 0);
    expect(seen.tcp).toBe(1);
    expect(seen.tls).toBe(0);
    held.release();
    expect(await answer).toEqual({ status: 200, text: 'ok' });
    // A second request, with TLS ready, reuses the kept-alive connection.
    expect(await get(send, new URL('/v2/x', origin))).toEqual({ status: 200, text: 'ok' });
    expect(seen).toEqual({ tcp: 1, tls: 1, requests: [1, 1] });
  });

  // node:net tries a name's addresses in turn (autoSelectFamily), on a new handle each: TLS must
  // not be put on the connection before one of them answered.
  for (const [when, wait] of [
    ['at once', 0],
    ['slowly', 100],
  ] as const) {
    for (const ahead of [true, false]) {
      it(`reaches a name whose first address refuses, looked up ${when}${ahead ? ', opened ahead' : ''}`, async () => {
        const { lookup, calls } = testLookup(
          () => new Promise((resolve) => setTimeout(resolve, wait)),
          [
            { address: '127.0.0.2', family: 4 },
            { address: '127.0.0.1', family: 4 },
          ],
        );
        const send = exchange(lookup);
        const origin = new URL(`https://registry.test:${port}/`);
        if (ahead) send.preconnect?.(origin);
        expect(await get(send, new URL('/v2/', origin))).toEqual({ status: 200, text: 'ok' });
        expect(seen).toEqual({ tcp: 1, tls: 1, requests: [1] });
        expect(calls).toEqual(['registry.test']);
      });
    }
  }

  it('builds TLS without waiting for a slow lookup, and connects once the address comes', async () => {
    let answer: () => void = () => {};
    const dns = new Promise<void>((resolve) => {
      answer = resolve;
    });
    const { lookup, calls } = testLookup(() => dns);
    const send = exchange(lookup);
    const origin = new URL(`https://registry.test:${port}/`);
    send.preconnect?.(origin);
    // The lookup has not answered, and TLS is being built all the same.
    await until(() => held.builds > 0);
    expect(held.builds).toBe(1);
    expect(calls).toEqual(['registry.test']);
    expect(seen.tcp).toBe(0);
    answer();
    expect(await get(send, new URL('/v2/', origin))).toEqual({ status: 200, text: 'ok' });
    expect(seen).toEqual({ tcp: 1, tls: 1, requests: [1] });
    expect(calls).toEqual(['registry.test']);
  });

  it('leaves a name that does not resolve to the request, which fails as without the connection ahead', async () => {
    const { lookup } = testLookup();
    const origin = new URL(`https://nowhere.test:${port}/`);
    const plain = await get(exchange(lookup), new URL('/v2/', origin)).catch((e: unknown) => e);
    const send = exchange(lookup);
    send.preconnect?.(origin);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const early = await get(send, new URL('/v2/', origin)).catch((e: unknown) => e);
    expect((plain as { code?: string }).code).toBe('ENOTFOUND');
    expect((early as Error).message).toBe((plain as Error).message);
    expect(seen.tcp).toBe(0);
  });

  it('fails a first request with the error of the connection it waited for, without trying again', async () => {
    const { lookup, calls } = testLookup();
    const origin = new URL(`https://nowhere.test:${port}/`);
    const err = await get(exchange(lookup), new URL('/v2/', origin)).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ENOTFOUND');
    expect(calls).toEqual(['nowhere.test']);
  });

  it('gives a lookup that never answers the connection deadline, and a request waiting for it its abort', async () => {
    const never = () => new Promise<void>(() => {});
    const origin = new URL(`https://registry.test:${port}/`);
    const late = nodeHttpExchange({
      ca,
      connectTimeoutMs: 300,
      idleTimeoutMs: 60_000,
      lookup: testLookup(never).lookup,
    });
    const err = await get(late, new URL('/v2/', origin)).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ETIMEDOUT');
    expect((err as Error).message).toBe(`no connection to registry.test:${port} within 300 ms`);

    const send = nodeHttpExchange({
      ca,
      connectTimeoutMs: 60_000,
      idleTimeoutMs: 60_000,
      lookup: testLookup(never).lookup,
    });
    const controller = new AbortController();
    const request = send({
      method: 'GET',
      url: new URL('/v2/', origin),
      headers: {},
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 100);
    const aborted = await request.catch((e: unknown) => e);
    expect((aborted as Error).name).toBe('AbortError');
    expect(seen.tcp).toBe(0);
  });

  it('keeps the process alive while it connects, with a lookup that answers at once', async () => {
    const script = `
      import { nodeHttpExchange } from ${JSON.stringify(new URL('../src/transport/http-exchange.ts', import.meta.url).pathname)};
      const lookup = (host, options, callback) =>
        options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4);
      const send = nodeHttpExchange({ ca: ${JSON.stringify(ca)}, connectTimeoutMs: 5000, idleTimeoutMs: 5000, lookup });
      const res = await send({ method: 'GET', url: new URL('https://registry.test:${port}/v2/'), headers: {} });
      let text = '';
      for await (const chunk of res.body) text += chunk;
      console.log(res.status, text);`;
    const { stdout, stderr } = await runModuleScript(script);
    expect(stderr).toBe('');
    expect(stdout).toBe('200 ok\n');
  });

  it('leaves a port nothing listens on to the request, which fails as without the connection ahead', async () => {
    const origin = new URL(`https://127.0.0.1:${await closedPort()}/`);
    const transport = () => createTransport({ env: {}, maxRetries: 0 });
    const plain = await transport()({ method: 'GET', url: new URL('/v2/', origin) }).catch((e: unknown) => e);
    const send = transport();
    send.preconnect(origin);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const early = await send({ method: 'GET', url: new URL('/v2/', origin) }).catch((e: unknown) => e);
    expect(isRegauthError(early, 'ERR_NETWORK')).toBe(true);
    expect((early as Error).message).toBe((plain as Error).message);
    expect((early as Error).message).toMatch(/ECONNREFUSED/);
  });
});

describe('a server that takes TCP connections and never answers TLS', () => {
  let silent: NetServer;
  let port: number;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    silent = createNetServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    port = (silent.address() as { port: number }).port;
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('counts the deadline of a connection opened ahead from its start, the lookup included', async () => {
    // The address comes after 900 of the 1000 ms: TLS's handshake has what is left, not 1000 more.
    const { lookup } = testLookup(() => new Promise((resolve) => setTimeout(resolve, 900)));
    const send = nodeHttpExchange({ connectTimeoutMs: 1_000, idleTimeoutMs: 60_000, lookup });
    const url = new URL(`https://registry.test:${port}/v2/`);
    const started = performance.now();
    const err = await send({ method: 'GET', url, headers: {} }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`no connection to registry.test:${port} within 1000 ms`);
    // Twice the deadline would be 2000 ms.
    expect(performance.now() - started).toBeLessThan(1_600);
  });

  for (const ahead of [false, true]) {
    it(`fails at the connection deadline, not the much longer idle one${ahead ? ', opened ahead' : ''}`, async () => {
      const send = nodeHttpExchange({ connectTimeoutMs: 300, idleTimeoutMs: 60_000 });
      const url = new URL(`https://127.0.0.1:${port}/v2/`);
      if (ahead) send.preconnect?.(url);
      const err = await send({ method: 'GET', url, headers: {} }).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('ETIMEDOUT');
      expect((err as Error).message).toBe(`no connection to 127.0.0.1:${port} within 300 ms`);
    });
  }
});
