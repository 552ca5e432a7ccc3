import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Acl, anonymousWriteRules, compileAcl } from './acl.js';
import { createAclAuthorizer } from './acl-authorizer.js';
import { createAuthnList } from './authn-list.js';
import { createClientAddressResolver } from './client-address.js';
import { PasswordGuard, type PasswordGuardStats } from './password-guard.js';
import type { RevocationStore } from './revocation-store.js';
import type { ServerLogEntry } from './server-log-entry.js';
import type { SigningMaterial } from './signing-key.js';
import { type ConfiguredSigningKey, loadSigningKeys } from './signing-keys.js';
import {
  type CheckedHandlerConfig,
  checkHandlerConfig,
  type TokenHandlerConfig,
} from './token-handler-config.js';
import { TokenIssuer } from './token-issuer.js';
import {
  instrumentAuthenticators,
  instrumentGuard,
  instrumentIssuer,
  type TokenMetrics,
} from './token-metrics.js';
import { TokenReuse } from './token-reuse.js';
import { createTokenService, errorResponse, type TokenResponse } from './token-service.js';

/** OAuth2 form bodies are a few hundred bytes; anything near this is not a token request. */
export const MAX_BODY_BYTES = 64 * 1024;
/** How often expired entries leave the failure, reuse and cache tables: often enough that memory follows load. */
export const SWEEP_INTERVAL_MS = 30_000;
const CERT_WARNING_DAYS = 30;

/** How a TokenHandler logs and keeps time; its behaviour comes from TokenHandlerConfig. */
export interface TokenHandlerOptions {
  /** Receives one entry per token request and per lifecycle event. Left out: nothing is logged. */
  readonly log?: (entry: ServerLogEntry) => void;
  /** The clock, in milliseconds since the epoch. Left out: Date.now. */
  readonly now?: () => number;
  /** Left out: SWEEP_INTERVAL_MS. */
  readonly sweepIntervalMs?: number;
  /** Entries per user or address table. Left out: MAX_TRACKED_ENTRIES (password-guard.ts). */
  readonly maxTrackedEntries?: number;
  /** Counts requests, decisions, lock-outs and latencies (createTokenMetrics). Left out: nothing is counted. */
  readonly metrics?: TokenMetrics;
  /**
   * Revocation epochs per account (createMemoryRevocationStore): refresh tokens, cached logins
   * and reusable tokens from before an account's epoch are refused. Made by the caller, so it
   * outlives a handler rebuilt by a reload. Left out: nothing is revoked.
   */
  readonly revocations?: RevocationStore;
}

/** Sizes of the handler's tables and queues: what bounds its memory and work. */
export interface TokenHandlerStats extends PasswordGuardStats {
  readonly reusableTokens: number;
  readonly reusableTokenBytes: number;
}

/** What `fetch` needs besides the request: Web `Request`s do not carry the peer's address. */
export interface FetchInfo {
  /**
   * The client's address (the socket peer; hono: `getConnInfo(c).remote.address`). Failure
   * budgets and check slots are kept per address, so leaving it out puts every client into one.
   */
  readonly address?: string;
}

/** The token endpoint as a handler to mount in a server of yours (see createTokenHandler). */
export interface TokenHandler {
  /** The token endpoint's URL path, such as `/auth/token`: the registry's realm ends with it. */
  readonly realmPath: string;
  /**
   * The node:http / express handler. Answers the paths it owns (`<basePath>/token`,
   * `<basePath>/healthz`) and returns true; on any other path it calls `next()` when given and
   * returns false, leaving the response untouched. Mount it before any body parser: it reads
   * POST bodies itself, capped at MAX_BODY_BYTES.
   */
  handle(req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): boolean;
  /**
   * The same endpoints for Web-standard servers (hono, Bun, Deno, fastify adapters): a
   * `Response` for the paths it owns, undefined for any other.
   */
  fetch(request: Request, info?: FetchInfo): Promise<Response | undefined>;
  /**
   * Reads the users again (every htpasswd file of the list, or calls the `entries` function),
   * and calls the `authenticators` function again when one was given. When the new entries are
   * broken, only the users they hold unchanged stay; when they cannot be read, all users stay.
   * Either way it logs an error.
   */
  reloadUsers(): Promise<void>;
  /** Sizes of the handler's tables and queues now. */
  stats(): TokenHandlerStats;
  /** Stops the timers and closes the authenticators; requests in flight still finish. */
  close(): void;
}

/** What the routing needs of a request, whichever kind of server it came from. */
interface WireRequest {
  readonly method: string;
  readonly peer: string;
  readonly header: (name: string) => string | undefined;
  /** The body as text, or undefined when it is over MAX_BODY_BYTES. */
  readonly body: () => Promise<string | undefined>;
}

/** An origin-form path: RFC 3986 `pchar`s and `/` (a `[` or a space is not one). */
const PATH_RE = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;

/**
 * The request target as a URL, or undefined when it is not one (RFC 9112 §3.2: answer 400).
 * Origin-form (`/token?…`) is read as a path, even when it starts with `//`; absolute-form
 * (`http://host/token`) as it is. `GET //[` once made `new URL` throw and the server answer 500.
 */
export function requestUrl(target: string | undefined): URL | undefined {
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

async function readNodeBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readWebBody(request: Request): Promise<string | undefined> {
  if (request.body === null) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function sendNode(res: ServerResponse, response: TokenResponse): void {
  res.writeHead(response.status, { ...response.headers, 'content-length': Buffer.byteLength(response.body) });
  res.end(response.body);
}

/**
 * Creates the token endpoint from a config object: reads the key, certificate and users now, so
 * a broken config fails here and not at the first request. `createTokenServer` is this handler
 * plus a listening server.
 */
export async function createTokenHandler(
  config: TokenHandlerConfig,
  options: TokenHandlerOptions = {},
): Promise<TokenHandler> {
  return createCheckedTokenHandler(checkHandlerConfig(config), options);
}

export async function createCheckedTokenHandler(
  config: CheckedHandlerConfig,
  options: TokenHandlerOptions = {},
): Promise<TokenHandler> {
  const metrics = options.metrics;
  const log: (entry: ServerLogEntry) => void =
    metrics === undefined
      ? (options.log ?? (() => {}))
      : (entry) => {
          metrics.observe(entry);
          options.log?.(entry);
        };
  const now = options.now ?? Date.now;
  const revocations = options.revocations;
  const revokedBefore =
    revocations === undefined ? undefined : (account: string) => revocations.revokedBefore(account);
  const keys = await loadSigningKeys(config.token.keys, new Date(now()));
  keys.forEach((key, i) => {
    if (key.notAfter.getTime() - now() < CERT_WARNING_DAYS * 86_400_000) {
      const certificate = `${(config.token.keys[i] as ConfiguredSigningKey).path}.certificate`;
      log({
        msg: 'certificate expires soon',
        level: 'warn',
        notAfter: key.notAfter.toISOString(),
        certificate,
      });
    }
  });
  // The `authn:` list, or the `users` entries as a one-item list; then the caller's own.
  const authn = await createAuthnList(
    config.authn ?? [
      'htpasswd' in config.users ? { htpasswd: config.users.htpasswd } : { entries: config.users.entries },
    ],
    config.authenticators,
    log,
  );
  for (const rule of anonymousWriteRules(config.acl)) {
    log({ msg: 'acl lets anonymous users write', level: 'warn', rule: rule.index, actions: rule.actions });
  }
  const acl: Acl = compileAcl(config.acl);
  const authorizer = createAclAuthorizer(acl);
  const guard = new PasswordGuard({
    authenticators: metrics === undefined ? authn.current : instrumentAuthenticators(authn.current, metrics),
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
    ...(revokedBefore === undefined ? {} : { revokedBefore }),
    ...(metrics === undefined
      ? {}
      : { onRevokedLogin: () => metrics.observeRevocationRefusal('verified_login') }),
  });
  // Never longer than a tenth of the token's life: clients still get most of it.
  const reuse = new TokenReuse(Math.min(config.token.reuse, Math.floor(config.token.expiration / 10)), now);
  const instrumentedIssuer = (issuer: TokenIssuer) =>
    metrics === undefined ? issuer : instrumentIssuer(issuer, metrics);
  const service = createTokenService({
    service: config.token.service,
    maxScopes: config.limits.maxScopes,
    authorizer: () => authorizer,
    guard: metrics === undefined ? guard : instrumentGuard(guard, metrics),
    reuse,
    ...(revokedBefore === undefined ? {} : { revokedBefore }),
    ...(metrics === undefined ? {} : { onRevoked: (what) => metrics.observeRevocationRefusal(what) }),
    issuer: instrumentedIssuer(
      new TokenIssuer({
        signing: keys[0] as SigningMaterial,
        previous: keys.slice(1),
        issuer: config.token.issuer,
        expiration: config.token.expiration,
        refreshExpiration: config.token.refreshExpiration,
        now,
        ...(revokedBefore === undefined ? {} : { revokedBefore }),
      }),
    ),
    log,
  });
  const clientAddress = createClientAddressResolver(config.trustedProxies);
  let warnedForwarded = false;
  const tokenPath = `${config.basePath}/token`;
  const healthPath = `${config.basePath}/healthz`;

  /** Which endpoint a target names, or undefined when the path is not ours. */
  const own = (target: string): { url: URL; path: 'token' | 'healthz' } | undefined => {
    const url = requestUrl(target);
    if (url === undefined) return undefined;
    if (url.pathname === tokenPath) return { url, path: 'token' };
    if (url.pathname === healthPath) return { url, path: 'healthz' };
    return undefined;
  };

  const respond = async (req: WireRequest, url: URL, path: 'token' | 'healthz'): Promise<TokenResponse> => {
    const forwardedFor = req.header('x-forwarded-for');
    if (forwardedFor !== undefined && config.trustedProxies.length === 0 && !warnedForwarded) {
      warnedForwarded = true;
      log({
        msg: 'X-Forwarded-For ignored',
        level: 'warn',
        peer: req.peer,
        hint: 'trusted_proxies is empty, so the socket peer counts as the client; if a reverse proxy sits in front, list it in trusted_proxies, or all its clients share one failure budget',
      });
    }
    if (path === 'healthz') {
      return { status: 200, headers: { 'content-type': 'application/json' }, body: '{"status":"ok"}' };
    }
    let body: string | undefined;
    if (req.method === 'POST') {
      body = await req.body();
      if (body === undefined) {
        return errorResponse(413, 'invalid_request', `request body over ${MAX_BODY_BYTES} bytes`);
      }
    }
    const authorization = req.header('authorization');
    const contentType = req.header('content-type');
    return service({
      method: req.method,
      query: url.searchParams,
      address: clientAddress(req.peer, forwardedFor),
      ...(authorization === undefined ? {} : { authorization }),
      ...(contentType === undefined ? {} : { contentType }),
      ...(body === undefined ? {} : { body }),
    });
  };

  const failed = (err: unknown): TokenResponse => {
    log({ msg: 'request failed', level: 'error', error: (err as Error).message });
    return errorResponse(500, 'server_error', 'the token server failed; see its log');
  };

  const handle = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): boolean => {
    // express rewrites req.url below its mount point; originalUrl keeps the full path.
    const target = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const owned = own(target);
    if (owned === undefined) {
      next?.();
      return false;
    }
    const wire: WireRequest = {
      method: req.method ?? 'GET',
      peer: req.socket.remoteAddress ?? '',
      header: (name) => {
        const value = req.headers[name];
        return Array.isArray(value) ? value.join(',') : value;
      },
      body: () => readNodeBody(req),
    };
    respond(wire, owned.url, owned.path).then(
      (response) => {
        sendNode(res, response);
        // An oversized body was left unread: the connection cannot carry another request.
        if (response.status === 413) req.destroy();
      },
      (err: unknown) => {
        const response = failed(err);
        if (!res.headersSent) sendNode(res, response);
        else res.destroy();
      },
    );
    return true;
  };

  const fetchHandler = async (request: Request, info: FetchInfo = {}): Promise<Response | undefined> => {
    const url = new URL(request.url);
    const owned = own(url.pathname + url.search);
    if (owned === undefined) return undefined;
    const wire: WireRequest = {
      method: request.method,
      peer: info.address ?? '',
      header: (name) => request.headers.get(name) ?? undefined,
      body: () => readWebBody(request),
    };
    let response: TokenResponse;
    try {
      response = await respond(wire, owned.url, owned.path);
    } catch (err) {
      response = failed(err);
    }
    return new Response(response.body, { status: response.status, headers: response.headers });
  };

  const sweeper = setInterval(() => {
    guard.sweep();
    reuse.sweep();
  }, options.sweepIntervalMs ?? SWEEP_INTERVAL_MS);
  sweeper.unref();

  const reloadUsers = async (): Promise<void> => {
    await authn.reload();
    guard.forgetVerified();
    reuse.clear();
  };

  return {
    realmPath: tokenPath,
    handle,
    fetch: fetchHandler,
    reloadUsers,
    stats: () => ({ ...guard.stats(), reusableTokens: reuse.size, reusableTokenBytes: reuse.bytes }),
    close: () => {
      clearInterval(sweeper);
      void authn.close();
    },
  };
}
