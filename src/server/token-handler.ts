import type { IncomingMessage, ServerResponse } from 'node:http';
import { RegauthError } from '../errors/regauth-error.js';
import type { Authenticator } from './authenticator.js';
import { CounterDigest, counterDigestSecret } from './counter-digest.js';
import { Generations } from './generations.js';
import { buildHandlerGeneration, guardLimits, type HandlerGeneration } from './handler-generation.js';
import { MAX_TRACKED_ENTRIES, PasswordGuard, type PasswordGuardStats } from './password-guard.js';
import { RedisLoginCounters } from './redis-login-counters.js';
import type { RevocationStore } from './revocation-store.js';
import type { ServerLogEntry } from './server-log-entry.js';
import { createRedisStore, type SharedStore } from './shared-store.js';
import {
  type CheckedHandlerConfig,
  checkHandlerConfig,
  type TokenHandlerConfig,
} from './token-handler-config.js';
import type { TokenMetrics } from './token-metrics.js';
import { errorResponse, type TokenResponse } from './token-service.js';

/** OAuth2 form bodies are a few hundred bytes; anything near this is not a token request. */
export const MAX_BODY_BYTES = 64 * 1024;
/** How often expired entries leave the failure, reuse and cache tables: often enough that memory follows load. */
export const SWEEP_INTERVAL_MS = 30_000;

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
   * A shared store made once (createRedisStore) and kept across handlers, such as the handlers
   * a server makes anew when its config is reloaded; the caller closes it. Left out: the handler
   * makes one from `store` of its config, and closes it with itself.
   */
  readonly sharedStore?: SharedStore;
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
   * Either way it logs an error. It waits for a `reload` in progress and then reads the users of
   * the new config, so a change made during a reload is never lost to it.
   */
  reloadUsers(): Promise<void>;
  /**
   * Replaces the whole config at once: keys and token settings, users and authenticators, ACL,
   * trusted proxies, limits and base path. Everything is built from `config` first (keys read,
   * ACL compiled, authenticators opened); only when all of it succeeded does the next request
   * use it, while requests already running finish on the config they started with. When
   * anything fails it rejects with a RegauthError and the old config keeps serving, untouched.
   *
   * Failed-login counts, back-offs and address budgets stay (a reload must not lift a lock-out)
   * and are judged by the new limits from then on; remembered logins and reusable tokens are
   * dropped. Authenticators of the old config that the new one does not use are closed once
   * the requests using them have finished (RETIRE_GRACE_MS at most). Reloads run one at a time,
   * in the order they were called.
   */
  reload(config: TokenHandlerConfig): Promise<void>;
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

/** A TokenHandler that also takes an already checked config (what createTokenServer reloads with). */
export interface CheckedTokenHandler extends TokenHandler {
  reloadChecked(config: CheckedHandlerConfig): Promise<void>;
}

export async function createCheckedTokenHandler(
  config: CheckedHandlerConfig,
  options: TokenHandlerOptions = {},
): Promise<CheckedTokenHandler> {
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
  // Server state, made once: the shared store and the lock-out tables outlive a config reload.
  const ownStore = options.sharedStore === undefined && config.store !== undefined;
  const store =
    options.sharedStore ??
    (config.store === undefined
      ? undefined
      : await createRedisStore(config.store, {
          log,
          ...(metrics === undefined ? {} : { observer: metrics }),
          now,
        }));
  // Replicas must hash a name alike to share its counters, whichever config each started with:
  // the digest follows the config by one rule at start-up and at every reload (counterDigestSecret).
  const shared: { digest?: CounterDigest; counters?: RedisLoginCounters } =
    store === undefined
      ? {}
      : await (async () => {
          const digest = new CounterDigest(await counterDigestSecret(config, new Date(now())));
          const counters = new RedisLoginCounters(store, digest, {
            ...guardLimits(config),
            maxEntries: options.maxTrackedEntries ?? MAX_TRACKED_ENTRIES,
            now,
          });
          return { digest, counters };
        })();
  let authenticatorsNow: () => readonly Authenticator[] = () => [];
  const guard = new PasswordGuard({
    ...shared,
    authenticators: () => authenticatorsNow(),
    ...guardLimits(config),
    ...(options.maxTrackedEntries === undefined ? {} : { maxTrackedEntries: options.maxTrackedEntries }),
    now,
    ...(revokedBefore === undefined ? {} : { revokedBefore }),
    ...(metrics === undefined
      ? {}
      : { onRevokedLogin: () => metrics.observeRevocationRefusal('verified_login') }),
  });
  const context = {
    guard,
    log,
    now,
    ...(metrics === undefined ? {} : { metrics }),
    ...(revokedBefore === undefined ? {} : { revokedBefore }),
  };
  const generations = new Generations(await buildHandlerGeneration(config, context));
  authenticatorsNow = () => generations.current.authenticators();
  let warnedForwarded = false;
  let closed = false;

  /** Which endpoint a target names, or undefined when the path is not ours. */
  const own = (
    target: string,
    generation: HandlerGeneration,
  ): { url: URL; path: 'token' | 'healthz' } | undefined => {
    const url = requestUrl(target);
    if (url === undefined) return undefined;
    if (url.pathname === generation.tokenPath) return { url, path: 'token' };
    if (url.pathname === generation.healthPath) return { url, path: 'healthz' };
    return undefined;
  };

  const respond = async (
    generation: HandlerGeneration,
    req: WireRequest,
    url: URL,
    path: 'token' | 'healthz',
  ): Promise<TokenResponse> => {
    const forwardedFor = req.header('x-forwarded-for');
    if (forwardedFor !== undefined && generation.config.trustedProxies.length === 0 && !warnedForwarded) {
      warnedForwarded = true;
      log({
        msg: 'X-Forwarded-For ignored',
        level: 'warn',
        peer: req.peer,
        hint: 'trusted_proxies is empty, so the socket peer counts as the client; if a reverse proxy sits in front, list it in trusted_proxies, or all its clients share one failure budget',
      });
    }
    if (path === 'healthz') {
      // Still 200 when Redis is down: tokens are issued (with this replica's own counters), and
      // a balancer that took every replica out over it would turn a degraded store into an outage.
      const body =
        store === undefined
          ? '{"status":"ok"}'
          : store.health() === 'up'
            ? '{"status":"ok","store":"up"}'
            : '{"status":"degraded","store":"unreachable"}';
      return { status: 200, headers: { 'content-type': 'application/json' }, body };
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
    return generation.service({
      method: req.method,
      query: url.searchParams,
      address: generation.clientAddress(req.peer, forwardedFor),
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
    const entered = generations.enter();
    const owned = own(target, entered.generation);
    if (owned === undefined) {
      entered.leave();
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
    respond(entered.generation, wire, owned.url, owned.path)
      .then(
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
      )
      .finally(entered.leave);
    return true;
  };

  const fetchHandler = async (request: Request, info: FetchInfo = {}): Promise<Response | undefined> => {
    const url = new URL(request.url);
    const entered = generations.enter();
    const owned = own(url.pathname + url.search, entered.generation);
    if (owned === undefined) {
      entered.leave();
      return undefined;
    }
    const wire: WireRequest = {
      method: request.method,
      peer: info.address ?? '',
      header: (name) => request.headers.get(name) ?? undefined,
      body: () => readWebBody(request),
    };
    let response: TokenResponse;
    try {
      response = await respond(entered.generation, wire, owned.url, owned.path);
    } catch (err) {
      response = failed(err);
    } finally {
      entered.leave();
    }
    return new Response(response.body, { status: response.status, headers: response.headers });
  };

  const sweeper = setInterval(() => {
    guard.sweep();
    generations.current.reuse.sweep();
  }, options.sweepIntervalMs ?? SWEEP_INTERVAL_MS);
  sweeper.unref();

  // One reload at a time: two overlapping ones would swap in whichever finished building last.
  // Users reloads take the same queue: one run while a generation is being built would re-read
  // the old generation's users, and the new one, read before the change, would bring back a
  // user just removed from the file.
  let reloads: Promise<unknown> = Promise.resolve();
  const queued = (task: () => Promise<void>): Promise<void> => {
    const run = reloads.then(task);
    reloads = run.catch(() => {});
    return run;
  };
  const reloadUsers = (): Promise<void> =>
    queued(async () => {
      await generations.current.authn.reload();
      guard.forgetVerified();
      generations.current.reuse.clear();
    });
  const reload = (next: CheckedHandlerConfig): Promise<void> => queued(() => reloadNow(next));

  const reloadNow = async (next: CheckedHandlerConfig): Promise<void> => {
    if (closed) {
      throw new RegauthError('ERR_INVALID_CONFIG', 'the token handler is closed; create a new one');
    }
    let built: HandlerGeneration;
    let counterSecret: Buffer | undefined;
    try {
      built = await buildHandlerGeneration(next, context);
      if (shared.digest !== undefined) counterSecret = await counterDigestSecret(next, new Date(now()));
    } catch (err) {
      if (err instanceof RegauthError) throw err;
      throw new RegauthError(
        'ERR_INVALID_CONFIG',
        `the new config was not applied, the old one keeps serving: ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      );
    }
    if (closed) {
      await built.authn.close();
      throw new RegauthError('ERR_INVALID_CONFIG', 'the token handler was closed during the reload');
    }
    const old = generations.swap(built);
    if (counterSecret !== undefined) shared.digest?.use(counterSecret);
    guard.setLimits(guardLimits(next));
    // Logins verified and tokens issued under the old users and ACL must not be handed out again.
    guard.forgetVerified();
    void retire(old, built);
  };

  /** Closes what the old generation opened and the new one does not use, once it is idle. */
  const retire = async (old: HandlerGeneration, kept: HandlerGeneration): Promise<void> => {
    await generations.drained(old);
    const still = new Set(kept.authn.current());
    for (const authenticator of old.authn.current()) {
      if (!still.has(authenticator)) await authenticator.close?.().catch(() => {});
    }
    const keptAuthorizers = new Set(kept.config.authorizers ?? []);
    for (const authorizer of old.config.authorizers ?? []) {
      if (!keptAuthorizers.has(authorizer)) await authorizer.close?.().catch(() => {});
    }
  };

  return {
    get realmPath() {
      return generations.current.tokenPath;
    },
    handle,
    fetch: fetchHandler,
    reloadUsers,
    reload: async (next: TokenHandlerConfig) => reload(checkHandlerConfig(next)),
    reloadChecked: reload,
    stats: () => {
      const { reuse } = generations.current;
      return { ...guard.stats(), reusableTokens: reuse.size, reusableTokenBytes: reuse.bytes };
    },
    close: () => {
      closed = true;
      clearInterval(sweeper);
      void generations.current.authn.close();
      void generations.current.authorizer.close?.();
      if (ownStore) void store?.close();
    },
  };
}
