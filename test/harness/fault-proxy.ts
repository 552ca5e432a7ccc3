import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One fault, applied to the next `times` requests whose method and path match. */
export type Fault =
  | { readonly kind: 'reset-after'; readonly bytes: number }
  /** Sends `bytes` bytes of the body, then nothing more, holding the connection open. */
  | { readonly kind: 'stall-after'; readonly bytes: number }
  | { readonly kind: 'status'; readonly status: number; readonly retryAfter?: number }
  | { readonly kind: 'corrupt'; readonly at: number };

interface Rule {
  readonly method: string;
  readonly path: RegExp;
  readonly fault: Fault;
  remaining: number;
}

export interface FaultProxy {
  /** `127.0.0.1:<port>`: use it as the registry host in references. */
  readonly host: string;
  /** Every request that passed, as `METHOD path` with its Range header when there was one. */
  readonly log: string[];
  /** Requests whose client went away before their answer ended, as `METHOD path`, in that order. */
  readonly torn: string[];
  inject(method: string, path: RegExp, fault: Fault, times?: number): void;
  /** Drops every fault not used up yet. */
  clear(): void;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of a registry that the tests control: it resets a connection after N
 * bytes of a response body (or stalls there), answers bursts of an error status (with Retry-After), or flips a
 * byte of a body. Requests pass with their Host header unchanged, so the registry's Location
 * headers point back at the proxy.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const [targetHost = '127.0.0.1', targetPort = '80'] = target.split(':');
  const rules: Rule[] = [];
  const log: string[] = [];
  const torn: string[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((req: IncomingMessage, res) => {
    const path = req.url ?? '/';
    log.push(`${req.method} ${path}${req.headers.range ? ` [${req.headers.range}]` : ''}`);
    res.on('close', () => {
      if (!res.writableFinished) torn.push(`${req.method} ${path}`);
    });
    const rule = rules.find((r) => r.remaining > 0 && r.method === req.method && r.path.test(path));
    if (rule) rule.remaining--;
    const fault = rule?.fault;
    if (fault?.kind === 'status') {
      req.resume();
      res.writeHead(fault.status, {
        'content-type': 'application/json',
        ...(fault.retryAfter === undefined ? {} : { 'retry-after': String(fault.retryAfter) }),
      });
      res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'injected fault' }] }));
      return;
    }
    const upstream = httpRequest(
      { host: targetHost, port: Number(targetPort), method: req.method, path, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          let data = chunk;
          if (fault?.kind === 'corrupt' && sent <= fault.at && fault.at < sent + data.length) {
            data = Buffer.from(data);
            const i = fault.at - sent;
            data[i] = (data[i] ?? 0) ^ 0xff;
          }
          if (fault?.kind === 'stall-after' && sent + data.length > fault.bytes) {
            res.write(data.subarray(0, Math.max(0, fault.bytes - sent)));
            sent = fault.bytes;
            up.pause();
            up.removeAllListeners('data');
            up.removeAllListeners('end');
            res.on('close', () => up.destroy());
            return;
          }
          if (fault?.kind === 'reset-after' && sent + data.length > fault.bytes) {
            res.write(data.subarray(0, Math.max(0, fault.bytes - sent)));
            up.destroy();
            res.socket?.destroy();
            return;
          }
          sent += data.length;
          res.write(data);
        });
        up.on('end', () => res.end());
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
    host: `127.0.0.1:${port}`,
    log,
    torn,
    inject(method, path, fault, times = 1) {
      rules.push({ method, path, fault, remaining: times });
    },
    clear() {
      rules.length = 0;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
