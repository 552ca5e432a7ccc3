import { performance } from 'node:perf_hooks';
import type { Authentication, Authenticator } from './authenticator.js';
import type { AuthorizationResult } from './authorizer-chain.js';
import { importOptional } from './import-optional.js';
import type { GuardResult, PasswordGuard } from './password-guard.js';
import type { ServerLogEntry } from './server-log-entry.js';
import type { StoreObserver } from './shared-store.js';
import type { TokenIssuer } from './token-issuer.js';
import type { TokenLogEntry } from './token-service.js';

/**
 * Why a token request got no token, as a closed set: a label value must never carry a user
 * name or free text (each distinct value is a time series kept forever, and a name is personal).
 */
export type RefusalReason =
  | 'wrong_credentials'
  | 'invalid_refresh_token'
  | 'credentials_required'
  | 'locked_out'
  | 'busy'
  | 'bad_request'
  | 'error';

/** What a granted request got: every scope asked for, some, or none (the ACL refused them). */
export type GrantResult = 'granted' | 'partial' | 'denied';

/** Which lock-out refused a login: the user's back-off, or the client address's failure budget. */
export type LockoutReason = 'user_backoff' | 'address';

/**
 * What a revocation refused: a refresh token, a cached login (its password is checked again),
 * or an access token kept for reuse (a new one is signed).
 */
export type RevocationRefusal = 'refresh_token' | 'verified_login' | 'reused_token';

/** What an authenticator decided, or `error` when it failed (down, timed out). */
export type AuthenticationResult = 'accepted' | 'refused' | 'unknown' | 'error';

/**
 * Seconds: a cached login answers in microseconds, a bcrypt check at cost 10 in ~60 ms, a
 * directory or OIDC round trip in tens to hundreds of milliseconds, a queue wait in seconds.
 */
export const AUTHENTICATION_BUCKETS = [
  0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Seconds: signing an ES256 token takes well under a millisecond, RS256 a few. */
export const ISSUE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];
/**
 * Seconds: a loopback or same-rack Redis answers in 0.1–1 ms; the store's timeout (0.25 s by
 * default) caps the rest.
 */
export const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1];

const OUTCOMES: readonly TokenLogEntry['outcome'][] = [
  'issued',
  'bad_request',
  'unauthorized',
  'throttled',
  'unavailable',
  'error',
];
const REFUSAL_REASONS: readonly RefusalReason[] = [
  'wrong_credentials',
  'invalid_refresh_token',
  'credentials_required',
  'locked_out',
  'busy',
  'bad_request',
  'error',
];

/** The token server's Prometheus metrics (see createTokenMetrics). */
export interface TokenMetrics extends StoreObserver {
  /** Counts what a token request's log entry says happened; other entries are ignored. */
  observe(entry: ServerLogEntry): void;
  /** One authenticator's check: its kind (`htpasswd`, …), what it decided and how long it took. */
  observeAuthentication(kind: string, result: AuthenticationResult, seconds: number): void;
  /**
   * One authorizer's decision about one resource: its kind (`acl`, `ext_authz`), what it
   * decided (`no_match` hands the resource to the next) and how long it took.
   */
  observeAuthorization(kind: string, result: AuthorizationResult, seconds: number): void;
  /** A login refused by a lock-out before any password was checked. */
  observeLockout(reason: LockoutReason): void;
  /** The time one access token took to sign. */
  observeIssue(seconds: number): void;
  /** An account's revocation recorded (the admin endpoint). */
  observeRevocation(): void;
  /** Something issued or verified before its account's revocation epoch, refused. */
  observeRevocationRefusal(what: RevocationRefusal): void;
  /** The Prometheus text exposition of every metric, and its content type. */
  scrape(): Promise<{ readonly contentType: string; readonly body: string }>;
}

/** Why a refused request was refused, from its log entry's outcome, status and grant type. */
export function refusalReason(entry: TokenLogEntry): RefusalReason {
  switch (entry.outcome) {
    case 'unauthorized':
      if (entry.grantType === 'refresh_token') return 'invalid_refresh_token';
      return entry.grantType === 'anonymous' ? 'credentials_required' : 'wrong_credentials';
    case 'throttled':
      return 'locked_out';
    case 'unavailable':
      return 'busy';
    case 'error':
      return 'error';
    default:
      return 'bad_request';
  }
}

function grantResult(entry: TokenLogEntry): GrantResult {
  if (entry.granted.length >= entry.requested.length) return 'granted';
  return entry.granted.length === 0 ? 'denied' : 'partial';
}

/**
 * Creates the token server's metrics in a registry of their own (never prom-client's global
 * one, which an embedding application may use for its own), with Node's process metrics.
 * prom-client is an optional peer dependency, loaded here on first use.
 */
export async function createTokenMetrics(): Promise<TokenMetrics> {
  const prom = await importOptional('prom-client', 'serving Prometheus metrics', () => import('prom-client'));
  const registry = new prom.Registry();
  prom.collectDefaultMetrics({ register: registry, prefix: 'regauth_' });
  const requests = new prom.Counter({
    name: 'regauth_token_requests_total',
    help: 'Token requests by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const grants = new prom.Counter({
    name: 'regauth_token_grants_total',
    help: 'Issued tokens by whether they hold every scope asked for (granted), some (partial) or none (denied by the ACL).',
    labelNames: ['result'],
    registers: [registry],
  });
  const refusals = new prom.Counter({
    name: 'regauth_token_refusals_total',
    help: 'Token requests answered without a token, by reason.',
    labelNames: ['reason'],
    registers: [registry],
  });
  const lockouts = new prom.Counter({
    name: 'regauth_lockouts_total',
    help: "Logins refused by a lock-out before a password check: the user's back-off or the address's failure budget.",
    labelNames: ['reason'],
    registers: [registry],
  });
  const authentication = new prom.Histogram({
    name: 'regauth_authenticator_duration_seconds',
    help: 'Time an authenticator took to decide, by its kind and what it decided.',
    labelNames: ['kind', 'result'],
    buckets: AUTHENTICATION_BUCKETS,
    registers: [registry],
  });
  const authorization = new prom.Histogram({
    name: 'regauth_authorizer_duration_seconds',
    help: 'Time an authorizer took to decide about one resource, by its kind and what it decided (no_match: the next authorizer was asked).',
    labelNames: ['kind', 'result'],
    buckets: AUTHENTICATION_BUCKETS,
    registers: [registry],
  });
  const issue = new prom.Histogram({
    name: 'regauth_token_issue_duration_seconds',
    help: 'Time signing an access token took.',
    buckets: ISSUE_BUCKETS,
    registers: [registry],
  });
  const storeUp = new prom.Gauge({
    name: 'regauth_store_up',
    help: 'Whether the shared store (Redis) answers: 1 up, 0 unreachable (logins use this replica’s own counters). Always 1 for the memory store.',
    registers: [registry],
  });
  const storeErrors = new prom.Counter({
    name: 'regauth_store_errors_total',
    help: 'Commands to the shared store that failed (error) or got no answer within the timeout (timeout).',
    labelNames: ['kind'],
    registers: [registry],
  });
  const storeDuration = new prom.Histogram({
    name: 'regauth_store_duration_seconds',
    help: 'Time a command to the shared store took, by operation.',
    labelNames: ['operation'],
    buckets: STORE_BUCKETS,
    registers: [registry],
  });
  storeUp.set(1);
  for (const kind of ['error', 'timeout'] as const) storeErrors.inc({ kind }, 0);
  const revocations = new prom.Counter({
    name: 'regauth_revocations_total',
    help: "Accounts' revocations recorded through the admin endpoint.",
    registers: [registry],
  });
  const revocationRefusals = new prom.Counter({
    name: 'regauth_revocation_refusals_total',
    help: 'What a revocation refused: refresh tokens, cached logins checked again, access tokens not reused.',
    labelNames: ['what'],
    registers: [registry],
  });
  // Every series from the start, at 0: a rate() over a series that appears late misses its first step.
  for (const outcome of OUTCOMES) requests.inc({ outcome }, 0);
  for (const result of ['granted', 'partial', 'denied'] as const) grants.inc({ result }, 0);
  for (const reason of REFUSAL_REASONS) refusals.inc({ reason }, 0);
  for (const reason of ['user_backoff', 'address'] as const) lockouts.inc({ reason }, 0);
  revocations.inc(0);
  for (const what of ['refresh_token', 'verified_login', 'reused_token'] as const) {
    revocationRefusals.inc({ what }, 0);
  }
  return {
    observe(entry) {
      if (entry.msg !== 'token') return;
      requests.inc({ outcome: entry.outcome });
      if (entry.outcome === 'issued') grants.inc({ result: grantResult(entry) });
      else refusals.inc({ reason: refusalReason(entry) });
    },
    observeAuthentication(kind, result, seconds) {
      authentication.observe({ kind, result }, seconds);
    },
    observeAuthorization(kind, result, seconds) {
      authorization.observe({ kind, result }, seconds);
    },
    observeLockout(reason) {
      lockouts.inc({ reason });
    },
    observeIssue(seconds) {
      issue.observe(seconds);
    },
    observeStore(operation, result, seconds) {
      if (seconds !== undefined) storeDuration.observe({ operation }, seconds);
      if (result !== 'ok') storeErrors.inc({ kind: result });
    },
    setStoreUp(up) {
      storeUp.set(up ? 1 : 0);
    },
    observeRevocation() {
      revocations.inc();
    },
    observeRevocationRefusal(what) {
      revocationRefusals.inc({ what });
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

type Guard = Pick<PasswordGuard, 'authenticate' | 'accountLabel' | 'fingerprint'>;

/**
 * The guard with every lock-out counted. Lock-outs and a full queue check no password; the
 * checks themselves are timed per authenticator (instrumentAuthenticators).
 */
export function instrumentGuard(guard: Guard, metrics: TokenMetrics): Guard {
  return {
    accountLabel: (username) => guard.accountLabel(username),
    fingerprint: (username) => guard.fingerprint(username),
    async authenticate(username, password, address): Promise<GuardResult> {
      const result = await guard.authenticate(username, password, address);
      if (!result.ok && result.reason === 'backoff') metrics.observeLockout('user_backoff');
      else if (!result.ok && result.reason === 'address') metrics.observeLockout('address');
      return result;
    },
  };
}

/**
 * The authenticators of a list, each timed under its kind (`htpasswd`, `ldap`, `oidc`,
 * `ext_auth`) with what it decided. Wrappers are made once per authenticator, so a reload that
 * keeps one keeps its wrapper.
 */
export function instrumentAuthenticators(
  current: () => readonly Authenticator[],
  metrics: TokenMetrics,
): () => readonly Authenticator[] {
  const wrapped = new WeakMap<Authenticator, Authenticator>();
  const wrap = (inner: Authenticator): Authenticator => {
    const outer: Authenticator = {
      kind: inner.kind,
      ...(inner.unguessable === undefined ? {} : { unguessable: inner.unguessable }),
      async authenticate(request, options): Promise<Authentication> {
        const start = performance.now();
        try {
          const result = await inner.authenticate(request, options);
          metrics.observeAuthentication(inner.kind, result.outcome, (performance.now() - start) / 1000);
          return result;
        } catch (err) {
          metrics.observeAuthentication(inner.kind, 'error', (performance.now() - start) / 1000);
          throw err;
        }
      },
    };
    if (inner.id !== undefined) Object.assign(outer, { id: inner.id });
    for (const method of ['knows', 'fingerprint', 'lookup', 'close'] as const) {
      const fn = inner[method];
      if (fn !== undefined) Object.assign(outer, { [method]: fn.bind(inner) });
    }
    return outer;
  };
  return () =>
    current().map((inner) => {
      let outer = wrapped.get(inner);
      if (outer === undefined) {
        outer = wrap(inner);
        wrapped.set(inner, outer);
      }
      return outer;
    });
}

/** Times the issuer's signing of access tokens (a reused token is not signed again, so not timed). */
export function instrumentIssuer(issuer: TokenIssuer, metrics: TokenMetrics): TokenIssuer {
  const sign = issuer.issueAccessToken.bind(issuer);
  issuer.issueAccessToken = async (...args) => {
    const start = performance.now();
    try {
      return await sign(...args);
    } finally {
      metrics.observeIssue((performance.now() - start) / 1000);
    }
  };
  return issuer;
}
