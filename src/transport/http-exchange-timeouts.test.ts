import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeHttpExchange } from './http-exchange.js';

const open: { server: Server; sockets: Set<Socket> }[] = [];
afterEach(async () => {
  for (const { server, sockets } of open.splice(0)) {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** A loopback server whose handler decides how much of an answer it ever sends. */
async function serve(handler: (res: ServerResponse) => void): Promise<URL> {
  const sockets = new Set<Socket>();
  const server = createServer((_req, res) => handler(res));
  server.on('connection', (socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  open.push({ server, sockets });
  return new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/v2/`);
}

const exchange = () => nodeHttpExchange({ connectTimeoutMs: 5_000, idleTimeoutMs: 200 });

describe('nodeHttpExchange: a server that goes silent', () => {
  it('fails a request whose answer never starts after the idle timeout', async () => {
    const url = await serve(() => {});
    const err = await exchange()({ method: 'GET', url, headers: {} }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ETIMEDOUT');
    expect((err as Error).message).toBe(`${url.host} went silent for 200 ms`);
  });

  it('fails the body with the same error when it stops midway', async () => {
    const url = await serve((res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('x'.repeat(10));
    });
    const res = await exchange()({ method: 'GET', url, headers: {} });
    expect(res.status).toBe(200);
    let received = 0;
    const err = await (async () => {
      for await (const chunk of res.body) received += (chunk as Buffer).length;
    })().catch((e: unknown) => e);
    expect(received).toBe(10);
    expect((err as { code?: string }).code).toBe('ETIMEDOUT');
    expect((err as Error).message).toBe(`${url.host} went silent for 200 ms`);
  });

  it('does not count the time a reader leaves the body unread', async () => {
    const size = 8 * 1024 * 1024;
    const url = await serve((res) => {
      res.writeHead(200, { 'content-length': String(size) });
      res.end(Buffer.alloc(size, 7));
    });
    const res = await exchange()({ method: 'GET', url, headers: {} });
    // Three idle periods without reading: node:http stops reading the socket meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 600));
    let received = 0;
    for await (const chunk of res.body) received += (chunk as Buffer).length;
    expect(received).toBe(size);
  });

  it('times a server that stops once the reader came back', async () => {
    const url = await serve((res) => {
      res.writeHead(200, { 'content-length': String(16 * 1024 * 1024) });
      res.write(Buffer.alloc(4 * 1024 * 1024, 7));
    });
    const res = await exchange()({ method: 'GET', url, headers: {} });
    await new Promise((resolve) => setTimeout(resolve, 600));
    let received = 0;
    const err = await (async () => {
      for await (const chunk of res.body) received += (chunk as Buffer).length;
    })().catch((e: unknown) => e);
    expect(received).toBe(4 * 1024 * 1024);
    expect((err as Error).message).toBe(`${url.host} went silent for 200 ms`);
  });

  it('lets an answer that keeps coming take longer than the idle timeout', async () => {
    const url = await serve((res) => {
      res.writeHead(200, { 'content-length': '5' });
      let sent = 0;
      const tick = setInterval(() => {
        res.write('x');
        if (++sent === 5) {
          clearInterval(tick);
          res.end();
        }
      }, 100);
    });
    const send = exchange();
    for (let round = 0; round < 2; round++) {
      // The second round reuses the kept-alive connection: its idle timeout applies the same way.
      const res = await send({ method: 'GET', url, headers: {} });
      let body = '';
      for await (const chunk of res.body) body += chunk;
      expect(body).toBe('xxxxx');
    }
  });
});
