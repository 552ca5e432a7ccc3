import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isRegauthError } from '../errors/regauth-error.js';
import { closedPort } from '../testing/loopback-server.js';
import { createTransport } from './create-transport.js';

const open: { server: Server; sockets: Set<Socket> }[] = [];
afterEach(async () => {
  for (const { server, sockets } of open.splice(0)) {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** A plain-HTTP server on loopback that counts the connections made to it and the requests on each. */
async function countingServer() {
  const sockets = new Set<Socket>();
  const seen = { connections: 0, requests: [] as number[] };
  const ids = new WeakMap<Socket, number>();
  const server = createServer((req, res) => {
    seen.requests.push(ids.get(req.socket) ?? -1);
    res.end('ok');
  });
  server.on('connection', (socket) => {
    seen.connections++;
    ids.set(socket, seen.connections);
    sockets.add(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  open.push({ server, sockets });
  const { port } = server.address() as { port: number };
  return { seen, origin: new URL(`http://127.0.0.1:${port}/`) };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

const transport = () => createTransport({ env: {}, maxRetries: 0, sleep: async () => {} });

describe('Transport.preconnect', () => {
  it('opens the connection before the first request, which then uses it', async () => {
    const { seen, origin } = await countingServer();
    const send = transport();
    send.preconnect(origin);
    send.preconnect(origin);
    await until(() => seen.connections > 0);
    expect(seen.connections).toBe(1);
    expect(seen.requests).toEqual([]);
    for (const path of ['/v2/', '/v2/x']) {
      const res = await send({ method: 'GET', url: new URL(path, origin) });
      expect(await res.text(100)).toBe('ok');
    }
    // Both requests went over the connection opened ahead: no second one.
    expect(seen.requests).toEqual([1, 1]);
    expect(seen.connections).toBe(1);
  });

  it('opens nothing for an origin requests already went to', async () => {
    const { seen, origin } = await countingServer();
    const send = transport();
    await (await send({ method: 'GET', url: new URL('/v2/', origin) })).dump();
    send.preconnect(origin);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen.connections).toBe(1);
  });

  it('leaves the error of an origin nothing listens on to the request, as without it', async () => {
    const origin = new URL(`http://127.0.0.1:${await closedPort()}/`);
    const send = transport();
    send.preconnect(origin);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const err = await send({ method: 'GET', url: new URL('/v2/', origin) }).catch((e: unknown) => e);
    expect(isRegauthError(err, 'ERR_NETWORK')).toBe(true);
    expect((err as Error).message).toMatch(/ECONNREFUSED|refused/);
  });

  it('does nothing through a proxy: the connection goes to the proxy when a request does', async () => {
    const target = await countingServer();
    const proxy = await countingServer();
    const send = createTransport({ env: { HTTP_PROXY: proxy.origin.href }, maxRetries: 0 });
    send.preconnect(target.origin);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(target.seen.connections).toBe(0);
    expect(proxy.seen.connections).toBe(0);
  });

  it('never keeps a process alive with a connection no request took', async () => {
    const { origin } = await countingServer();
    const script = `
      import(${JSON.stringify(new URL('./create-transport.ts', import.meta.url).pathname)}).then(({ createTransport }) => {
        createTransport({ env: {} }).preconnect(new URL(${JSON.stringify(origin.href)}));
        setTimeout(() => console.log('done'), 200);
      });`;
    const started = Date.now();
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      encoding: 'utf8',
      timeout: 9_000,
    });
    expect(child.stderr).toBe('');
    expect(child.stdout).toBe('done\n');
    expect(child.status).toBe(0);
    // The idle timer (10 s) is not what ended it.
    expect(Date.now() - started).toBeLessThan(9_000);
  });
});
