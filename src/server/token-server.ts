import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { basename, dirname } from 'node:path';
import { type Acl, compileAcl } from './acl.js';
import { UserStore } from './htpasswd.js';
import { LoginLimiter } from './login-limiter.js';
import type { TokenServerConfig } from './server-config.js';
import { loadSigningMaterial, type SigningMaterial } from './signing-key.js';
import { TokenIssuer } from './token-issuer.js';
import { TokenReuse } from './token-reuse.js';
import {
  createTokenService,
  errorResponse,
  type TokenLogEntry,
  type TokenResponse,
} from './token-service.js';
import { VerifiedCache } from './verified-cache.js';

/** OAuth2 form bodies are a few hundred bytes; anything near this is not a token request. */
export const MAX_BODY_BYTES = 64 * 1024;
/** Node's default; stated so a long query of scopes gets a 431, not a hang. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** How long SIGTERM waits for requests in flight before cutting connections. */
export const SHUTDOWN_GRACE_MS = 10_000;
/** Editors and `htpasswd` write a file in several steps: reload once they are done. */
const RELOAD_DEBOUNCE_MS = 200;

export type ServerLogEntry =
  | TokenLogEntry
  | { readonly msg: 'listening'; readonly url: string }
  | { readonly msg: 'users reloaded'; readonly users: number; readonly file: string }
  | { readonly msg: 'reload failed' | 'request failed'; readonly level: 'error'; readonly error: string }
  | { readonly msg: 'certificate expires soon'; readonly level: 'warn'; readonly notAfter: string }
  | { readonly msg: 'shutting down' };

export interface TokenServerOptions {
  /** Receives one entry per token request and per lifecycle event. Left out: nothing is logged. */
  readonly log?: (entry: ServerLogEntry) => void;
  /** Reload the htpasswd file when it changes on disk. Left out: false (reload() still works). */
  readonly watchUsers?: boolean;
  readonly now?: () => number;
}

export interface TokenServer {
  /** The node:http request listener, to mount the token endpoint in another server. */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Starts listening where the config says; resolves to the URL (with the real port for port 0). */
  listen(): Promise<string>;
  /** Re-reads the htpasswd file; on failure the users loaded before stay in force. */
  reloadUsers(): Promise<void>;
  /** Stops accepting, lets requests in flight finish for up to SHUTDOWN_GRACE_MS, then closes. */
  close(): Promise<void>;
}

const CERT_WARNING_DAYS = 30;

async function loadUsers(config: TokenServerConfig): Promise<UserStore> {
  if (config.users.htpasswd === undefined) return UserStore.empty();
  const text = await readFile(config.users.htpasswd, 'utf8');
  return UserStore.fromText(text, config.users.htpasswd);
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, response: TokenResponse): void {
  res.writeHead(response.status, { ...response.headers, 'content-length': Buffer.byteLength(response.body) });
  res.end(response.body);
}

/** Creates the token server from a checked config: reads the key, certificate and users now. */
export async function createTokenServer(
  config: TokenServerConfig,
  options: TokenServerOptions = {},
): Promise<TokenServer> {
  const log = options.log ?? (() => {});
  const now = options.now ?? Date.now;
  const [keyPem, certPem] = await Promise.all([
    readFile(config.token.key, 'utf8'),
    readFile(config.token.certificate, 'utf8'),
  ]);
  const signing: SigningMaterial = loadSigningMaterial(keyPem, certPem, config.token, new Date(now()));
  if (signing.notAfter.getTime() - now() < CERT_WARNING_DAYS * 86_400_000) {
    log({ msg: 'certificate expires soon', level: 'warn', notAfter: signing.notAfter.toISOString() });
  }
  let users = await loadUsers(config);
  const acl: Acl = compileAcl(config.acl);
  const verified = new VerifiedCache(config.users.cacheSeconds, now);
  // Never longer than a tenth of the token's life: clients still get most of it.
  const reuse = new TokenReuse(Math.min(config.token.reuse, Math.floor(config.token.expiration / 10)), now);
  const service = createTokenService({
    service: config.token.service,
    maxScopes: config.limits.maxScopes,
    acl: () => acl,
    users: () => users,
    verified,
    reuse,
    limiter: new LoginLimiter(config.limits.loginFailures, config.limits.loginWindow, now),
    issuer: new TokenIssuer({
      signing,
      issuer: config.token.issuer,
      expiration: config.token.expiration,
      refreshExpiration: config.token.refreshExpiration,
      now,
    }),
    log,
  });

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://token-server.invalid');
    if (url.pathname === '/healthz') {
      send(res, { status: 200, headers: { 'content-type': 'application/json' }, body: '{"status":"ok"}' });
      return;
    }
    if (url.pathname !== '/token') {
      send(
        res,
        errorResponse(
          404,
          'invalid_request',
          `no such endpoint ${url.pathname.slice(0, 100)}; tokens are at /token`,
        ),
      );
      return;
    }
    let body: string | undefined;
    if (req.method === 'POST') {
      body = await readBody(req);
      if (body === undefined) {
        send(res, errorResponse(413, 'invalid_request', `request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
    }
    const response = await service({
      method: req.method ?? 'GET',
      query: url.searchParams,
      address: req.socket.remoteAddress ?? '',
      ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
      ...(req.headers['content-type'] === undefined ? {} : { contentType: req.headers['content-type'] }),
      ...(body === undefined ? {} : { body }),
    });
    send(res, response);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    route(req, res).catch((err: unknown) => {
      log({ msg: 'request failed', level: 'error', error: (err as Error).message });
      if (!res.headersSent)
        send(res, errorResponse(500, 'server_error', 'the token server failed; see its log'));
      else res.destroy();
    });
  };

  const serverOptions = { maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: 30_000, headersTimeout: 10_000 };
  let server: Server;
  if (config.tls) {
    const [cert, key] = await Promise.all([readFile(config.tls.cert), readFile(config.tls.key)]);
    server = createHttpsServer({ ...serverOptions, cert, key }, handle);
  } else {
    server = createHttpServer(serverOptions, handle);
  }

  const reloadUsers = async (): Promise<void> => {
    try {
      users = await loadUsers(config);
      verified.clear();
      reuse.clear();
      log({ msg: 'users reloaded', users: users.size, file: config.users.htpasswd ?? '' });
    } catch (err) {
      log({ msg: 'reload failed', level: 'error', error: (err as Error).message });
    }
  };

  let watcher: FSWatcher | undefined;
  let reloadTimer: NodeJS.Timeout | undefined;
  const htpasswd = config.users.htpasswd;
  if (options.watchUsers && htpasswd !== undefined) {
    // Watch the folder, not the file: tools replace the file by renaming a new one over it.
    watcher = watch(dirname(htpasswd), (_event, name) => {
      if (name !== null && name !== basename(htpasswd)) return;
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(() => void reloadUsers(), RELOAD_DEBOUNCE_MS);
    });
    watcher.unref();
  }

  return {
    handle,
    reloadUsers,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.listen.port, config.listen.host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          const url = `${config.tls ? 'https' : 'http'}://${host}:${address.port}`;
          log({ msg: 'listening', url });
          resolve(url);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        watcher?.close();
        clearTimeout(reloadTimer);
        if (!server.listening) {
          resolve();
          return;
        }
        log({ msg: 'shutting down' });
        const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
