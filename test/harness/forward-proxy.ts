import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ForwardProxy {
  /** `http://127.0.0.1:<port>`: the value for HTTP_PROXY. */
  readonly url: string;
  /** Every request forwarded, as `METHOD absolute-url`. */
  readonly log: string[];
  close(): Promise<void>;
}

/**
 * A plain forward HTTP proxy on loopback, as HTTP_PROXY names one: requests in absolute form
 * (RFC 9112 §3.2.2) are sent on to their loopback target and answered as they come back. Only
 * loopback targets are forwarded; anything else gets 403.
 */
export async function startForwardProxy(): Promise<ForwardProxy> {
  const log: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (target.protocol !== 'http:' || target.hostname !== '127.0.0.1') {
      res.writeHead(403).end();
      return;
    }
    log.push(`${req.method} ${target.href}`);
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: Number(target.port || 80),
        method: req.method,
        path: `${target.pathname}${target.search}`,
        headers: req.headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        res.on('close', () => up.destroy());
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
