import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isRegauthError } from '../errors/regauth-error.js';
import { createTransport } from '../transport/create-transport.js';
import { RegistrySchemes } from './registry-schemes.js';

const sockets = new Set<Socket>();
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  for (const close of closers.splice(0)) await close();
});

/**
 * A loopback port that holds every connection until `answer()`, then answers the TLS
 * ClientHello with a plain-HTTP status line: the sign of a registry speaking HTTP.
 */
async function slowPlainHttp() {
  let connections = 0;
  let answered = false;
  const waiting: Socket[] = [];
  const reply = (socket: Socket) => socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    if (answered) reply(socket);
    else waiting.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    connections: () => connections,
    answer() {
      answered = true;
      for (const socket of waiting.splice(0)) reply(socket);
    },
  };
}

describe('RegistrySchemes: abort', () => {
  it('rejects only the aborted one of two callers waiting on one ping', async () => {
    const registry = await slowPlainHttp();
    const schemes = new RegistrySchemes({ send: createTransport({ env: {}, maxRetries: 0 }) });
    const controller = new AbortController();
    const aborted = schemes.scheme(registry.host, { signal: controller.signal });
    const other = schemes.scheme(registry.host);
    await expect.poll(registry.connections).toBe(1);
    controller.abort();
    const err = await aborted.catch((e: unknown) => e);
    expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
    registry.answer();
    expect(await other).toBe('http');
    expect(registry.connections()).toBe(1);
  });
});
