import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface HoldRule {
  /** Which requests are held. */
  readonly match: (method: string, path: string) => boolean;
  /**
   * `request`: held before it is forwarded. `reply`: forwarded, and the registry's whole answer
   * held, so the registry has done the work while the client still waits.
   */
  readonly stage: 'request' | 'reply';
  /** How many requests are held: with that many waiting the proxy calls `onHeld` and lets them go. Left out: 1. */
  readonly count?: number;
  /** Called once `count` requests are held, before any of them goes on. */
  readonly onHeld: () => void;
  /** Held requests go on after this long whether or not `count` were reached. Left out: 5000. */
  readonly maxHoldMs?: number;
}

export interface HoldProxy {
  /** `127.0.0.1:<port>`: use it as the registry host in references. */
  readonly host: string;
  /** Every request that passed, as `METHOD path`. */
  readonly log: string[];
  /** The most requests held at once. */
  readonly mostHeld: () => number;
  close(): Promise<void>;
}

/**
 * A proxy in front of a registry that holds the first matching requests (before forwarding them, or after
 * the registry answered) until `count` of them wait, calls `onHeld`, and lets them all go: a test
 * acts at a moment it chooses, with requests in flight. Holding is bounded by `maxHoldMs`.
 */
export async function startHoldProxy(target: string, rule: HoldRule): Promise<HoldProxy> {
  const [targetHost = '127.0.0.1', targetPort = '80'] = target.split(':');
  const log: string[] = [];
  const sockets = new Set<Socket>();
  let held: (() => void)[] = [];
  let mostHeld = 0;
  let timer: NodeJS.Timeout | undefined;
  // Only the first `count` matching requests are held; the ones after pass.
  let done = false;
  const release = () => {
    done = true;
    clearTimeout(timer);
    timer = undefined;
    const go = held;
    held = [];
    for (const f of go) f();
  };
  const hold = (go: () => void) => {
    if (done) {
      go();
      return;
    }
    held.push(go);
    mostHeld = Math.max(mostHeld, held.length);
    timer ??= setTimeout(release, rule.maxHoldMs ?? 5000);
    if (held.length >= (rule.count ?? 1)) {
      rule.onHeld();
      release();
    }
  };
  const forward = (req: IncomingMessage, res: ServerResponse, holdReply: boolean) => {
    const upstream = httpRequest(
      { host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers },
      (up) => {
        if (!holdReply) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () =>
          hold(() => {
            if (res.destroyed) return;
            res.writeHead(up.statusCode ?? 502, up.headers);
            res.end(Buffer.concat(chunks));
          }),
        );
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  const server = createServer((req, res) => {
    const method = req.method ?? '';
    const path = req.url ?? '/';
    log.push(`${method} ${path}`);
    const matched = !done && rule.match(method, path);
    if (matched && rule.stage === 'request') hold(() => forward(req, res, false));
    else forward(req, res, matched);
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
    mostHeld: () => mostHeld,
    close: () =>
      new Promise((resolve) => {
        release();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
