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
import { withFileSystemErrors } from '../errors/file-system-error.js';
import { type Acl, anonymousWriteRules, compileAcl } from './acl.js';
import { createClientAddressResolver, createTrustedProxyCheck } from './client-address.js';
import { limitConnections } from './connection-limits.js';
import { UserStore } from './htpasswd.js';
import { PasswordGuard, type PasswordGuardStats } from './password-guard.js';
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

/** OAuth2 form bodies are a few hundred bytes; anything near this is not a token request. */
export const MAX_BODY_BYTES = 64 * 1024;
/** Node's default; stated so a long query of scopes gets a 431, not a hang. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** How long SIGTERM waits for requests in flight before cutting connections. */
export const SHUTDOWN_GRACE_MS = 10_000;
/** Editors and `htpasswd` write a file in several steps: reload once they are done. */
const RELOAD_DEBOUNCE_MS = 200;
/** Time a client has to send its request headers (slowloris sockets are cut after this). */
export const HEADERS_TIMEOUT_MS = 10_000;
/** Time a client has to send its whole request. */
export const REQUEST_TIMEOUT_MS = 30_000;
/**
 * How often Node looks for sockets past those timeouts. Its default, 30 s, let a socket that
 * never finished its headers live 40 s; it must be well below HEADERS_TIMEOUT_MS.
 */
export const CONNECTIONS_CHECK_MS = 1_000;
/** How often expired entries leave the per-user and per-address tables. */
export const SWEEP_INTERVAL_MS = 30_000;

export type ServerLogEntry =
  | TokenLogEntry
  | { readonly msg: 'listening'; readonly url: string }
  | { readonly msg: 'users reloaded'; readonly users: number; readonly file: string }
  | { readonly msg: 'request failed'; readonly level: 'error'; readonly error: string }
  | {
      readonly msg: 'reload failed';
      readonly level: 'error';
      readonly error: string;
      /** Users still served: those whose entry the new file holds unchanged. */
      readonly kept: number;
      /** Users refused from now on: the new file drops, changes or breaks their entry. */
      readonly dropped: number;
    }
  | { readonly msg: 'bad request target'; readonly address: string; readonly status: 400 }
  | { readonly msg: 'certificate expires soon'; readonly level: 'warn'; readonly notAfter: string }
  | {
      readonly msg: 'bcrypt costs differ';
      readonly level: 'warn';
      readonly file: string;
      /** Users per cost. */
      readonly costs: Readonly<Record<string, number>>;
      readonly hint: string;
    }
  | {
      readonly msg: 'acl lets anonymous users write';
      readonly level: 'warn';
      /** The rule's position in `acl:`, from 0. */
      readonly rule: number;
      readonly actions: readonly string[];
    }
  | {
      readonly msg: 'X-Forwarded-For ignored';
      readonly level: 'warn';
      readonly peer: string;
      readonly hint: string;
    }
  | { readonly msg: 'shutting down' };

export interface TokenServerOptions {
  /** Receives one entry per token request and per lifecycle event. Left out: nothing is logged. */
  readonly log?: (entry: ServerLogEntry) => void;
  /** Reload the htpasswd file when it changes on disk. Left out: false (reload() still works). */
  readonly watchUsers?: boolean;
  readonly now?: () => number;
  /** Left out: SWEEP_INTERVAL_MS. */
  readonly sweepIntervalMs?: number;
  /** Entries per user or address table. Left out: MAX_TRACKED_ENTRIES (password-guard.ts). */
  readonly maxTrackedEntries?: number;
}

/** Sizes of the server's tables and queues: what bounds its memory and work. */
export interface TokenServerStats extends PasswordGuardStats {
  readonly connections: number;
  readonly reusableTokens: number;
  readonly reusableTokenBytes: number;
}

export interface TokenServer {
  /** The node:http request listener, to mount the token endpoint in another server. */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Starts listening where the config says; resolves to the URL (with the real port for port 0). */
  listen(): Promise<string>;
  /**
   * Re-reads the htpasswd file. When the new file is broken, only the users whose entry it holds
   * unchanged stay; when it cannot be read, all users loaded before stay. Either way it logs an
   * error.
   */
  reloadUsers(): Promise<void>;
  stats(): TokenServerStats;
  /** Stops accepting, lets requests in flight finish for up to SHUTDOWN_GRACE_MS, then closes. */
  close(): Promise<void>;
}

const CERT_WARNING_DAYS = 30;

async function loadUsers(config: TokenServerConfig): Promise<UserStore> {
  if (config.users.htpasswd === undefined) return UserStore.empty();
  const file = config.users.htpasswd;
  const text = await withFileSystemErrors('read the users file (users.htpasswd)', file, () =>
    readFile(file, 'utf8'),
  );
  return UserStore.fromText(text, config.users.htpasswd);
}

/** An origin-form path: RFC 3986 `pchar`s and `/` (a `[` or a space is not one). */
const PATH_RE = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;

/**
 * The request target as a URL, or undefined when it is not one (RFC 9112 §3.2: answer 400).
 * Origin-form (`/token?…`) is read as a path, even when it starts with `//`; absolute-form
 * (`http://host/token`) as it is. `GET //[` once made `new URL` throw and the server answer 500.
 */
function requestUrl(target: string | undefined): URL | undefined {
  const raw = target ?? '/';
  try {
    if (!raw.startsWith('/')) return new URL(raw);
    const query = raw.indexOf('?');
    if (!PATH_RE.test(query < 0 ? raw : raw.slice(0, query))) return undefined;
    return new URL(`http://token-server.invalid${raw}`);
  } catch {
    return undefined;
  }
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
    withFileSystemErrors('read the signing key (token.key)', config.token.key, () =>
      readFile(config.token.key, 'utf8'),
    ),
    withFileSystemErrors('read the signing certificate (token.certificate)', config.token.certificate, () =>
      readFile(config.token.certificate, 'utf8'),
    ),
  ]);
  const signing: SigningMaterial = loadSigningMaterial(keyPem, certPem, config.token, new Date(now()));
  if (signing.notAfter.getTime() - now() < CERT_WARNING_DAYS * 86_400_000) {
    log({ msg: 'certificate expires soon', level: 'warn', notAfter: signing.notAfter.toISOString() });
  }
  let users = await loadUsers(config);
  const warnCosts = (store: UserStore): void => {
    const costs = store.costs();
    if (costs.size < 2) return;
    const lowest = [...costs.keys()][0];
    log({
      msg: 'bcrypt costs differ',
      level: 'warn',
      file: config.users.htpasswd ?? '',
      costs: Object.fromEntries(costs),
      hint: `answer times group users by cost, which tells an observer something; re-hash every entry at one cost (htpasswd -B -C ${lowest} or higher)`,
    });
  };
  warnCosts(users);
  for (const rule of anonymousWriteRules(config.acl)) {
    log({ msg: 'acl lets anonymous users write', level: 'warn', rule: rule.index, actions: rule.actions });
  }
  const acl: Acl = compileAcl(config.acl);
  const guard = new PasswordGuard({
    users: () => users,
    cacheSeconds: config.users.cacheSeconds,
    loginFailures: config.limits.loginFailures,
    loginWindow: config.limits.loginWindow,
    backoffMaxSeconds: config.limits.loginBackoffMax,
    addressFailures: config.limits.addressFailures,
    passwordChecks: config.limits.passwordChecks,
    passwordQueue: config.limits.passwordQueue,
    checksPerAddress: config.limits.passwordChecksPerAddress,
    ...(options.maxTrackedEntries === undefined ? {} : { maxTrackedEntries: options.maxTrackedEntries }),
    now,
  });
  // Never longer than a tenth of the token's life: clients still get most of it.
  const reuse = new TokenReuse(Math.min(config.token.reuse, Math.floor(config.token.expiration / 10)), now);
  const service = createTokenService({
    service: config.token.service,
    maxScopes: config.limits.maxScopes,
    acl: () => acl,
    users: () => users,
    guard,
    reuse,
    issuer: new TokenIssuer({
      signing,
      issuer: config.token.issuer,
      expiration: config.token.expiration,
      refreshExpiration: config.token.refreshExpiration,
      now,
    }),
    log,
  });
  const clientAddress = createClientAddressResolver(config.trustedProxies);
  const isTrustedProxy = createTrustedProxyCheck(config.trustedProxies);
  let warnedForwarded = false;

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const peer = req.socket.remoteAddress ?? '';
    const forwardedHeader = req.headers['x-forwarded-for'];
    const forwardedFor = Array.isArray(forwardedHeader) ? forwardedHeader.join(',') : forwardedHeader;
    if (forwardedFor !== undefined && config.trustedProxies.length === 0 && !warnedForwarded) {
      warnedForwarded = true;
      log({
        msg: 'X-Forwarded-For ignored',
        level: 'warn',
        peer,
        hint: 'trusted_proxies is empty, so the socket peer counts as the client; if a reverse proxy sits in front, list it in trusted_proxies, or all its clients share one failure budget',
      });
    }
    const url = requestUrl(req.url);
    if (url === undefined) {
      log({ msg: 'bad request target', address: peer, status: 400 });
      send(res, errorResponse(400, 'invalid_request', 'the request target is not a path such as /token'));
      return;
    }
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
      address: clientAddress(peer, forwardedFor),
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

  const serverOptions = {
    maxHeaderSize: MAX_HEADER_BYTES,
    requestTimeout: REQUEST_TIMEOUT_MS,
    headersTimeout: HEADERS_TIMEOUT_MS,
    connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
  };
  let server: Server;
  if (config.tls) {
    const tls = config.tls;
    const [cert, key] = await Promise.all([
      withFileSystemErrors('read the TLS certificate (tls.cert)', tls.cert, () => readFile(tls.cert)),
      withFileSystemErrors('read the TLS key (tls.key)', tls.key, () => readFile(tls.key)),
    ]);
    server = createHttpsServer({ ...serverOptions, cert, key }, handle);
  } else {
    server = createHttpServer(serverOptions, handle);
  }
  const openConnections = limitConnections(server, {
    maxConnections: config.limits.maxConnections,
    perAddress: config.limits.connectionsPerAddress,
    exempt: isTrustedProxy,
  });

  const sweeper = setInterval(() => {
    guard.sweep();
    reuse.sweep();
  }, options.sweepIntervalMs ?? SWEEP_INTERVAL_MS);
  sweeper.unref();

  const reloadUsers = async (): Promise<void> => {
    const file = config.users.htpasswd;
    if (file === undefined) {
      log({ msg: 'users reloaded', users: 0, file: '' });
      return;
    }
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      // Nothing is known about the new file (it may be mid-rename): keep serving everyone.
      log({
        msg: 'reload failed',
        level: 'error',
        error: (err as Error).message,
        kept: users.size,
        dropped: 0,
      });
      return;
    }
    try {
      users = await UserStore.fromText(text, file);
      log({ msg: 'users reloaded', users: users.size, file });
      warnCosts(users);
    } catch (err) {
      // The file was changed and is broken. Refusing everyone would turn a typo into an outage;
      // keeping everyone would keep a user the operator just removed — often removed because a
      // password leaked — or a changed password's old value working until someone notices.
      // So the users whose entry the new file holds unchanged stay; removed, changed and broken
      // entries are refused; and the error says how many of each, at error level.
      const kept = users.retainUnchanged(text);
      log({
        msg: 'reload failed',
        level: 'error',
        error: (err as Error).message,
        kept: kept.size,
        dropped: users.size - kept.size,
      });
      users = kept;
    }
    guard.forgetVerified();
    reuse.clear();
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
    stats: () => ({
      ...guard.stats(),
      connections: openConnections(),
      reusableTokens: reuse.size,
      reusableTokenBytes: reuse.bytes,
    }),
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
        clearInterval(sweeper);
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
