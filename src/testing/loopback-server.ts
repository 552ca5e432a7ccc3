import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

/**
 * Test-only: real HTTP servers on 127.0.0.1, port 0 (HTTP behaviour is tested
 * against real servers, never by patching the client). Every request is recorded with its body.
 */

/** Request bodies in tests are small; a bigger one is a bug in the test, not something to buffer. */
const MAX_RECORDED_BODY_BYTES = 1024 * 1024;

export interface RecordedRequest {
  readonly method: string;
  /** The absolute URL the request was sent to (`http://127.0.0.1:PORT/path?query`). */
  readonly url: URL;
  /** The raw request target, as it came on the wire (`/path?query`). */
  readonly target: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** Answers one request; the body has already been read into `req.body`. */
export type LoopbackHandler = (
  req: RecordedRequest,
  res: ServerResponse,
  raw: IncomingMessage,
) => void | Promise<void>;

export interface LoopbackServerOptions {
  /** Serve HTTPS with this certificate and key (PEM) instead of plain HTTP. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export interface LoopbackServer {
  /** `127.0.0.1:PORT`, as a registry is named. */
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT` (`https://` with the tls option) */
  readonly origin: string;
  /** Every request received, in order of arrival. */
  readonly requests: RecordedRequest[];
  /** Connections accepted so far (TCP, whether or not a request came on them). */
  readonly connections: number;
  url(path?: string): URL;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RECORDED_BODY_BYTES) {
        req.destroy();
        reject(new Error(`test server: request body over ${MAX_RECORDED_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts a server on 127.0.0.1 with an OS-chosen port. */
export async function startLoopbackServer(
  handler: LoopbackHandler,
  options: LoopbackServerOptions = {},
): Promise<LoopbackServer> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  let origin = '';
  const listener = (raw: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      try {
        const body = await readBody(raw);
        const target = raw.url ?? '/';
        const recorded: RecordedRequest = {
          method: raw.method ?? 'GET',
          url: new URL(target, origin),
          target,
          headers: raw.headers,
          body,
        };
        requests.push(recorded);
        await handler(recorded, res, raw);
      } catch (err) {
        if (!res.headersSent && !res.destroyed) {
          res.statusCode = 500;
          res.end(`test server handler failed: ${(err as Error).message}`);
        } else {
          res.destroy();
        }
      }
    })();
  };
  const server = options.tls ? createHttpsServer(options.tls, listener) : createServer(listener);
  server.on('connection', (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  origin = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  return {
    host: `127.0.0.1:${port}`,
    port,
    origin,
    requests,
    get connections() {
      return connections;
    },
    url: (path = '/') => new URL(path, origin),
    close: () =>
      new Promise<void>((resolve) => {
        // Keep-alive connections from the client would hold close() open: end them first.
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Servers started through `start` are closed by `closeAll`; call it from afterEach so that a
 * failing test leaves no server behind.
 */
export function loopbackServers(): {
  start(handler: LoopbackHandler, options?: LoopbackServerOptions): Promise<LoopbackServer>;
  closeAll(): Promise<void>;
} {
  const open: LoopbackServer[] = [];
  return {
    async start(handler, options) {
      const server = await startLoopbackServer(handler, options);
      open.push(server);
      return server;
    },
    async closeAll() {
      await Promise.all(open.splice(0).map((s) => s.close()));
    },
  };
}

/** A port that was just free on 127.0.0.1 and has nothing listening on it now. */
export async function closedPort(): Promise<number> {
  const server = await startLoopbackServer((_req, res) => {
    res.end();
  });
  await server.close();
  return server.port;
}
