import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, loopbackServers } from '../src/testing/loopback-server.js';
import { probeTls } from '../src/transport/probe-tls.js';
import { makeLoopbackTls } from './harness/tls.js';

/** A raw TCP server on loopback that hands each connection to `onConnection`. */
async function rawServer(
  onConnection: (socket: Socket) => void,
): Promise<{ host: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('probeTls', () => {
  const servers = loopbackServers();
  const closers: (() => Promise<void>)[] = [];
  let tls: Awaited<ReturnType<typeof makeLoopbackTls>>;

  beforeAll(async () => {
    tls = await makeLoopbackTls();
  });
  afterEach(async () => {
    await servers.closeAll();
    await Promise.all(closers.splice(0).map((close) => close()));
  });
  afterAll(() => servers.closeAll());

  it('finds plain HTTP where the server answers the handshake with an HTTP status line, and sends no request', async () => {
    const server = await servers.start((_req, res) => {
      res.end('{}');
    });
    expect(await probeTls(server.host)).toBe('plain');
    expect(server.connections).toBe(1);
    expect(server.requests).toEqual([]);
  });

  it('finds TLS where the handshake completes, whatever CA signed the certificate, and sends no request', async () => {
    // Signed by a CA nothing trusts: the probe asks only whether TLS is spoken.
    const server = await servers.start(
      (_req, res) => {
        res.end('{}');
      },
      { tls: { cert: tls.certPem, key: tls.keyPem } },
    );
    expect(await probeTls(server.host)).toBe('tls');
    expect(server.connections).toBe(1);
    expect(server.requests).toEqual([]);
  });

  it('has no answer for a closed port, a reset, a TLS alert or silence, so the caller asks the usual way', async () => {
    expect(await probeTls(`127.0.0.1:${await closedPort()}`)).toBeUndefined();

    const reset = await rawServer((socket) => socket.resetAndDestroy());
    closers.push(reset.close);
    expect(await probeTls(reset.host)).toBeUndefined();

    // A TLS alert record (handshake_failure): TLS spoken, but no handshake and no HTTP either.
    const alert = await rawServer((socket) => {
      socket.once('data', () => socket.end(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])));
    });
    closers.push(alert.close);
    expect(await probeTls(alert.host)).toBeUndefined();

    const silent = await rawServer(() => {});
    closers.push(silent.close);
    const started = performance.now();
    expect(await probeTls(silent.host, 300)).toBeUndefined();
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('probes an IPv6 literal in brackets and a name (with SNI) as well', async () => {
    const plain = createHttpServer((_req, res) => res.end('{}'));
    const listening = await new Promise<boolean>((resolve) => {
      plain.once('error', () => resolve(false));
      plain.listen(0, '::1', () => resolve(true));
    });
    if (listening) {
      closers.push(() => new Promise<void>((resolve) => plain.close(() => resolve())));
      expect(await probeTls(`[::1]:${(plain.address() as { port: number }).port}`)).toBe('plain');
    }
    let servername: string | undefined;
    const secure = createHttpsServer(
      {
        cert: tls.certPem,
        key: tls.keyPem,
        // Asked while the ClientHello is read, only when it names a server (SNI).
        SNICallback: (name, done) => {
          servername = name;
          done(null, undefined);
        },
      },
      (_req, res) => res.end('{}'),
    );
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => secure.close(() => resolve())));
    const port = (secure.address() as { port: number }).port;
    expect(await probeTls(`localhost:${port}`)).toBe('tls');
    expect(servername).toBe('localhost');
    servername = undefined;
    expect(await probeTls(`127.0.0.1:${port}`)).toBe('tls');
    expect(servername).toBeUndefined();
  });

  it('has no answer for a host it cannot parse', async () => {
    expect(await probeTls('bad host:1')).toBeUndefined();
  });
});
