import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RegauthError } from '../errors/regauth-error.js';
import { AddressBudget } from './address-budget.js';
import { addressKey } from './client-address.js';
import type { Revocation, RevocationStore } from './revocation-store.js';
import type { ServerLogEntry } from './server-log-entry.js';
import type { TokenMetrics } from './token-metrics.js';
import { exceedsUserNameLimit, MAX_USER_NAME_BYTES } from './user-name-limit.js';

/** Shortest admin secret taken: it changes what the server honours, so a guessable one is refused at start-up. */
export const MIN_ADMIN_TOKEN_CHARS = 32;
/** A revocation is a few dozen bytes of JSON; anything near this is not one. */
export const ADMIN_MAX_BODY_BYTES = 4096;
/**
 * Wrong or missing bearer secrets an address may send per ADMIN_FAILURE_WINDOW_S, always on
 * (whatever `limits.address_failures` says): enough for an admin's typos, nothing for a guesser.
 */
export const ADMIN_FAILURES = 10;
/** Seconds in which an address's spent admin budget refills. */
export const ADMIN_FAILURE_WINDOW_S = 300;
/** How far in the future `before` may be, for clocks that differ a little; it counts as now. */
export const ADMIN_CLOCK_SKEW_MS = 60_000;
/** Tracked addresses of failed admin requests. */
const ADMIN_TRACKED_ADDRESSES = 10_000;
/** Control characters (Unicode category Cc): no account name holds one, a log line must not. */
const CONTROL_RE = /\p{Cc}/u;
/** RFC 3339 date-time (`2026-11-30T15:00:00Z`, fractions and offsets allowed). */
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

export interface AdminEndpointOptions {
  /** The URL path the endpoints live under, such as `/admin`. */
  readonly path: string;
  /** The secret an admin sends as `Authorization: Bearer …`. */
  readonly bearerToken: string;
  readonly revocations: RevocationStore;
  /** Seconds an access token lives (token.expiration): what a revocation cannot cut short. */
  readonly accessExpiration: number;
  /** The client's address from the socket peer and `X-Forwarded-For` (createClientAddressResolver). */
  readonly clientAddress: (peer: string, forwardedFor: string | undefined) => string;
  readonly log: (entry: ServerLogEntry) => void;
  readonly metrics?: TokenMetrics;
  readonly now?: () => number;
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > ADMIN_MAX_BODY_BYTES)
      throw new BadRequest(413, `the body is over ${ADMIN_MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The account a revocation names: what a token's `sub` can be, nothing odd. */
function checkAccount(value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new BadRequest(400, 'account must be the non-empty name of the account to revoke, such as "alice"');
  }
  if (exceedsUserNameLimit(value))
    throw new BadRequest(400, `account is longer than ${MAX_USER_NAME_BYTES} bytes`);
  if (CONTROL_RE.test(value) || value.trim() !== value) {
    throw new BadRequest(400, 'account holds control characters or leading or trailing spaces');
  }
  return value;
}

/**
 * The epoch to record: `before` as given, or this very millisecond when it is left out (tokens
 * issued in it are covered; what comes after is stamped no earlier than the epoch, token-issuer.ts).
 */
function checkBefore(value: unknown, now: number): number {
  if (value === undefined || value === null) return now + 1;
  const parsed = typeof value === 'string' && RFC3339_RE.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(parsed)) {
    throw new BadRequest(
      400,
      'before must be an RFC 3339 time such as "2026-11-30T15:00:00Z", or left out for now',
    );
  }
  if (parsed > now + ADMIN_CLOCK_SKEW_MS) {
    throw new BadRequest(
      400,
      `before is in the future (${new Date(parsed).toISOString()}, the server's clock says ${new Date(now).toISOString()}); a revocation covers what was already issued`,
    );
  }
  return Math.min(parsed, now + 1);
}

/**
 * Checks an account and `before` (RFC 3339, or undefined for now) as `POST <path>/revoke` does,
 * for a revocation recorded without the endpoint (`regauth serve revoke` on a Redis store).
 * Throws ERR_USAGE saying what is wrong.
 */
export function checkRevocation(
  account: unknown,
  before: unknown,
  now: number,
): { account: string; beforeMs: number } {
  try {
    return { account: checkAccount(account), beforeMs: checkBefore(before, now) };
  } catch (err) {
    if (err instanceof BadRequest) throw new RegauthError('ERR_USAGE', err.message);
    throw err;
  }
}

function parseRevocation(text: string, now: number): { account: string; beforeMs: number } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadRequest(
      400,
      'the body is not JSON; send {"account": "alice"} or {"account": "alice", "before": "2026-11-30T15:00:00Z"}',
    );
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequest(400, 'the body must be a JSON object such as {"account": "alice"}');
  }
  const unknown = Object.keys(body).filter((k) => k !== 'account' && k !== 'before');
  if (unknown.length > 0) {
    throw new BadRequest(
      400,
      `unknown field ${JSON.stringify(unknown[0]?.slice(0, 40))}; the fields are account and before`,
    );
  }
  const fields = body as { account?: unknown; before?: unknown };
  return { account: checkAccount(fields.account), beforeMs: checkBefore(fields.before, now) };
}

function describe(revocation: Revocation, accessExpiration: number, now: number) {
  const before = new Date(revocation.beforeMs).toISOString();
  return {
    account: revocation.account,
    before,
    until: new Date(revocation.untilMs).toISOString(),
    refused:
      revocation.untilMs <= now
        ? `nothing: whatever was issued to ${revocation.account} before ${before} has expired already`
        : `refresh tokens, cached logins and reusable access tokens of ${revocation.account} issued before ${before}`,
    note: `access tokens already issued stay valid until they expire (at most ${accessExpiration} s, token.expiration): the registry checks them without asking the token server`,
  };
}

/** Throws when the admin bearer secret is too short to resist guessing or holds spaces. */
export function checkAdminBearerToken(bearerToken: string): void {
  if (bearerToken.length < MIN_ADMIN_TOKEN_CHARS || /\s/.test(bearerToken)) {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `admin.bearer_token_file: the secret has ${bearerToken.length} characters or holds spaces; use at least ${MIN_ADMIN_TOKEN_CHARS} random ones (openssl rand -hex 32)`,
    );
  }
}

/**
 * A node:http handler for the admin endpoints under `path`: `POST <path>/revoke` records a
 * revocation, `GET <path>/revocations` lists those in force. Answers paths under `path` and
 * returns true, returns false for any other. Every request needs the bearer secret, compared as
 * a SHA-256 digest in constant time; a wrong one spends the address's budget (ADMIN_FAILURES),
 * and an address that spent it gets 429 for wrong secrets, while the right one still passes.
 */
export function createAdminEndpoint(
  options: AdminEndpointOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  checkAdminBearerToken(options.bearerToken);
  const expected = digest(options.bearerToken);
  const now = options.now ?? Date.now;
  const budget = new AddressBudget({
    failures: ADMIN_FAILURES,
    windowSeconds: ADMIN_FAILURE_WINDOW_S,
    maxEntries: ADMIN_TRACKED_ADDRESSES,
    now,
  });
  const revokePath = `${options.path}/revoke`;
  const listPath = `${options.path}/revocations`;

  const respond = async (req: IncomingMessage, res: ServerResponse, target: string): Promise<void> => {
    const forwarded = req.headers['x-forwarded-for'];
    const address = options.clientAddress(
      req.socket.remoteAddress ?? '',
      Array.isArray(forwarded) ? forwarded.join(',') : forwarded,
    );
    const key = addressKey(address);
    // The secret is looked at first: behind a TCP balancer or an untrusted proxy many admins
    // share one address, and a budget checked first would let anyone lock them all out with a
    // few wrong secrets. The comparison takes the same time for any secret (a digest compared
    // in constant time), so a right one is not guessable by timing; the budget slows guessers.
    const match = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
    const right = match !== null && timingSafeEqual(digest(match[1] as string), expected);
    if (!right) {
      const wait = budget.retryAfter(key);
      if (wait > 0) {
        send(
          res,
          429,
          { error: `too many wrong admin secrets from this address; try again in ${wait} s` },
          {
            'retry-after': String(wait),
          },
        );
        return;
      }
      budget.charge(key);
      options.log({ msg: 'admin unauthorized', level: 'warn', address });
      send(
        res,
        401,
        {
          error: 'the admin endpoint needs the secret of admin.bearer_token_file as Authorization: Bearer …',
        },
        { 'www-authenticate': 'Bearer realm="regauth-admin"' },
      );
      return;
    }
    if (target === listPath) {
      if (req.method !== 'GET') {
        send(res, 405, { error: `use GET on ${listPath}` }, { allow: 'GET' });
        return;
      }
      send(res, 200, {
        revocations: options.revocations.list().map((r) => describe(r, options.accessExpiration, now())),
      });
      return;
    }
    if (target !== revokePath) {
      send(res, 404, { error: `no such admin endpoint; revocations are at POST ${revokePath}` });
      return;
    }
    if (req.method !== 'POST') {
      send(res, 405, { error: `use POST on ${revokePath}` }, { allow: 'POST' });
      return;
    }
    const { account, beforeMs } = parseRevocation(await readBody(req), now());
    const recorded = await options.revocations.revoke(account, beforeMs);
    options.metrics?.observeRevocation();
    options.log({
      msg: 'revocation recorded',
      account: recorded.account,
      before: new Date(recorded.beforeMs).toISOString(),
      address,
    });
    send(res, 200, describe(recorded, options.accessExpiration, now()));
  };

  return (req, res) => {
    const raw = req.url ?? '/';
    const query = raw.indexOf('?');
    const target = query < 0 ? raw : raw.slice(0, query);
    if (target !== options.path && !target.startsWith(`${options.path}/`)) return false;
    respond(req, res, target).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof BadRequest) {
        send(res, err.status, { error: err.message });
        // A body left unread cannot be followed by another request on the connection.
        if (err.status === 413) req.destroy();
        return;
      }
      // A store that refused the epoch (far ahead of its clock): nothing was recorded.
      if (err instanceof RegauthError && err.code === 'ERR_USAGE') {
        send(res, 400, { error: err.message });
        return;
      }
      // A shared store that did not answer: nothing was recorded, and the admin may try again.
      if (err instanceof RegauthError && err.code === 'ERR_NETWORK') {
        options.log({ msg: 'request failed', level: 'error', error: err.message });
        send(res, 503, { error: err.message }, { 'retry-after': '1' });
        return;
      }
      options.log({ msg: 'request failed', level: 'error', error: (err as Error).message });
      send(res, 500, { error: 'the admin endpoint failed; see the server log' });
    });
    return true;
  };
}
