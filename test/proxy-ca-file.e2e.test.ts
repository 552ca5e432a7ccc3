import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport } from '../src/transport/create-transport.js';
import { makeLoopbackTls } from './harness/tls.js';

/** Answers CONNECT to a 127.0.0.1 port with a tunnel (RFC 9110 §9.3.6); anything else is refused. */
function tunnel(server: Server, connects: string[], sockets: Set<Socket>): void {
  server.on('connect', (req, client: Socket, head: Buffer) => {
    sockets.add(client);
    const [host, port] = (req.url ?? '').split(':');
    if (host !== '127.0.0.1' || !port) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    connects.push(req.url ?? '');
    const upstream = connect(Number(port), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('--ca-file through HTTPS_PROXY', () => {
  let dir: string;
  let caFile: string;
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const connects: string[] = [];
  let trustedPort: number;
  let otherPort: number;
  let plainProxy: string;
  let tlsProxy: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regauth-proxy-ca-'));
    const ours = await makeLoopbackTls();
    const other = await makeLoopbackTls([], 'regauth test CA of another registry');
    caFile = join(dir, 'ca.pem');
    await writeFile(caFile, ours.caPem);
    const answer = (name: string) => (_req: unknown, res: { end(s: string): void }) => res.end(name);
    const trusted = createHttpsServer({ cert: ours.certPem, key: ours.keyPem }, answer('trusted'));
    const untrusted = createHttpsServer({ cert: other.certPem, key: other.keyPem }, answer('other'));
    // A proxy spoken to in plain HTTP, and one spoken to over TLS with a certificate of our CA.
    const proxy = createHttpServer();
    const proxyOverTls = createHttpsServer({ cert: ours.certPem, key: ours.keyPem });
    tunnel(proxy, connects, sockets);
    tunnel(proxyOverTls, connects, sockets);
    servers.push(trusted, untrusted, proxy, proxyOverTls);
    for (const s of servers) s.on('connection', (socket: Socket) => sockets.add(socket));
    trustedPort = await listen(trusted);
    otherPort = await listen(untrusted);
    plainProxy = `http://127.0.0.1:${await listen(proxy)}`;
    tlsProxy = `https://127.0.0.1:${await listen(proxyOverTls)}`;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    await rm(dir, { recursive: true, force: true });
  });

  async function get(proxy: string, port: number, ca: boolean): Promise<string> {
    const send = createTransport({
      env: { HTTPS_PROXY: proxy },
      maxRetries: 0,
      ...(ca ? { caFile } : {}),
    });
    try {
      const res = await send({ method: 'GET', url: new URL(`https://127.0.0.1:${port}/`) });
      return `${res.status} ${await res.text(1024)}`;
    } catch (err) {
      return `error ${(err as { code?: string }).code ?? (err as Error).message}`;
    }
  }

  it('trusts the CA file for the target through a tunnel, and nothing more', async () => {
    connects.length = 0;
    expect(await get(plainProxy, trustedPort, true)).toBe('200 trusted');
    expect(await get(plainProxy, otherPort, true)).toMatch(/^error /);
    expect(await get(plainProxy, trustedPort, false)).toMatch(/^error /);
    // Every one of them went through the proxy.
    expect(connects).toEqual([
      `127.0.0.1:${trustedPort}`,
      `127.0.0.1:${otherPort}`,
      `127.0.0.1:${trustedPort}`,
    ]);
  });

  it("checks an https:// proxy's own certificate with the CA file too", async () => {
    connects.length = 0;
    expect(await get(tlsProxy, trustedPort, true)).toBe('200 trusted');
    expect(connects).toEqual([`127.0.0.1:${trustedPort}`]);
    // Without the CA file the proxy itself is not trusted: no tunnel is asked for.
    expect(await get(tlsProxy, trustedPort, false)).toMatch(/^error /);
    expect(connects).toHaveLength(1);
  });
});
