import { RegauthError } from '../errors/regauth-error.js';
import { formatScope } from '../scope/format-scope.js';
import { parseScopeList, type ResourceScope } from '../scope/parse-scope.js';
import type { Acl } from './acl.js';
import type { UserStore } from './htpasswd.js';
import type { PasswordGuard } from './password-guard.js';
import type { TokenIssuer } from './token-issuer.js';
import { TokenReuse } from './token-reuse.js';
import { exceedsUserNameLimit, MAX_USER_NAME_BYTES } from './user-name-limit.js';

/** A token request, already read off the wire (see token-server.ts). */
export interface TokenRequest {
  readonly method: string;
  readonly query: URLSearchParams;
  readonly authorization?: string;
  readonly contentType?: string;
  /** The request body (POST only), already capped in size. */
  readonly body?: string;
  /** The client's address: the socket peer, or what a trusted proxy forwarded. */
  readonly address: string;
}

/** What the token endpoint answers, ready to write to any kind of server's response. */
export interface TokenResponse {
  /** 200 with a token, or an RFC 6749 §5.2 / distribution token.md error status. */
  readonly status: number;
  /** Content-Type, Cache-Control, and on a 401 or 503 WWW-Authenticate or Retry-After. */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * JSON: `{ token, access_token, expires_in, issued_at[, refresh_token] }` or `{ error, error_description }`.
   */
  readonly body: string;
}

/**
 * One structured line per request: who asked for what, what they got. Never a secret, and
 * bounded in size: `account` is a user of the file or `unknown:<keyed hash>` (a failed login's
 * name is often a password typed into the wrong field); free text is cut to LOG_TEXT_CHARS.
 */
export interface TokenLogEntry {
  readonly msg: 'token';
  readonly method: string;
  readonly grantType: 'basic' | 'anonymous' | 'password' | 'refresh_token' | 'unknown';
  readonly account: string;
  readonly address: string;
  readonly clientId?: string;
  readonly requested: readonly string[];
  readonly granted: readonly string[];
  readonly outcome: 'issued' | 'bad_request' | 'unauthorized' | 'throttled' | 'unavailable' | 'error';
  readonly status: number;
  readonly reason?: string;
}

/** What createTokenService needs: the pieces createTokenHandler builds from a TokenHandlerConfig. */
export interface TokenServiceDeps {
  readonly service: string;
  readonly maxScopes: number;
  readonly acl: () => Acl;
  readonly users: () => UserStore;
  /** Checks user name and password: bounded work, back-off, budgets (password-guard.ts). */
  readonly guard: Pick<PasswordGuard, 'authenticate' | 'accountLabel'>;
  readonly issuer: TokenIssuer;
  /** Reuses a token issued moments ago for the same subject and grant. Left out: always sign anew. */
  readonly reuse?: TokenReuse;
  readonly log: (entry: TokenLogEntry) => void;
}

/** An answer that is not a token: status, OAuth2 error name, and a message for the user. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly oauthError: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const SPEC_CODES: Record<number, string> = {
  400: 'INVALID_REQUEST',
  401: 'UNAUTHORIZED',
  404: 'NOT_FOUND',
  405: 'UNSUPPORTED',
  413: 'SIZE_INVALID',
  415: 'UNSUPPORTED',
  429: 'TOOMANYREQUESTS',
  500: 'UNKNOWN',
  503: 'UNAVAILABLE',
};

/** Longest free text (client id, reason, one scope) a log line carries. */
export const LOG_TEXT_CHARS = 200;

function forLog(text: string): string {
  return text.length > LOG_TEXT_CHARS ? `${text.slice(0, LOG_TEXT_CHARS)}…` : text;
}

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  // RFC 6749 §5.1: token responses must not be cached.
  'cache-control': 'no-store',
  pragma: 'no-cache',
};

/**
 * The error body carries both the registry's `errors[]` envelope (what docker and
 * containers/image print) and RFC 6749's `error`/`error_description` (what OAuth2 clients read).
 */
export function errorResponse(
  status: number,
  oauthError: string,
  message: string,
  headers: Record<string, string> = {},
): TokenResponse {
  return {
    status,
    headers: { ...JSON_HEADERS, ...headers },
    body: JSON.stringify({
      errors: [{ code: SPEC_CODES[status] ?? 'UNKNOWN', message }],
      error: oauthError,
      error_description: message,
    }),
  };
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

type Credentials = { readonly username: string; readonly password: string };

function parseBasic(header: string): Credentials {
  const space = header.indexOf(' ');
  const scheme = space < 0 ? header : header.slice(0, space);
  if (scheme.toLowerCase() !== 'basic') {
    throw new Refusal(
      400,
      'invalid_request',
      `the token endpoint accepts Basic credentials, not ${scheme.slice(0, 20)}`,
    );
  }
  const encoded = header.slice(space + 1).trim();
  const decoded =
    BASE64_RE.test(encoded) && encoded.length % 4 === 0
      ? Buffer.from(encoded, 'base64').toString('utf8')
      : '';
  const colon = decoded.indexOf(':');
  if (colon <= 0) {
    throw new Refusal(400, 'invalid_request', 'the Basic credentials are not base64 of "user:password"');
  }
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function parseScopes(values: readonly string[], maxScopes: number): ResourceScope[] {
  let scopes: ResourceScope[];
  try {
    scopes = values.flatMap((v) => parseScopeList(v));
  } catch (err) {
    if (err instanceof RegauthError) throw new Refusal(400, 'invalid_scope', err.message);
    throw err;
  }
  if (scopes.length > maxScopes) {
    throw new Refusal(
      400,
      'invalid_scope',
      `${scopes.length} scopes asked for; at most ${maxScopes} per request`,
    );
  }
  return scopes;
}

const UNAUTHORIZED_HINT = 'log in with a user name and password the token server knows';

/** Refuses an over-long name before it reaches a password check, a table or a log line. */
function checkUserName(name: string, field: string): void {
  if (exceedsUserNameLimit(name)) {
    throw new Refusal(400, 'invalid_request', `the ${field} is longer than ${MAX_USER_NAME_BYTES} bytes`);
  }
}

/**
 * The token endpoint's logic, free of HTTP plumbing: GET per distribution's
 * docs/spec/auth/token.md (Basic or anonymous) and POST per docs/spec/auth/oauth.md (password
 * and refresh_token grants); RFC 6749 §5 for the answers.
 */
export function createTokenService(deps: TokenServiceDeps): (req: TokenRequest) => Promise<TokenResponse> {
  const basicChallenge = {
    'www-authenticate': `Basic realm=${JSON.stringify(deps.service)}, charset="UTF-8"`,
  };

  const checkService = (service: string | null): void => {
    if (service !== null && service !== '' && service !== deps.service) {
      throw new Refusal(
        400,
        'invalid_request',
        `this token server issues tokens for service "${deps.service}", not "${service.slice(0, 100)}"`,
      );
    }
  };

  const authenticate = async (creds: Credentials, address: string): Promise<string> => {
    const result = await deps.guard.authenticate(creds.username, creds.password, address);
    if (result.ok) return result.fingerprint;
    switch (result.reason) {
      case 'invalid':
        throw new Refusal(
          401,
          'invalid_grant',
          `wrong user name or password; ${UNAUTHORIZED_HINT}`,
          basicChallenge,
        );
      case 'backoff':
      case 'address':
        throw new Refusal(
          429,
          'too_many_requests',
          `too many failed logins ${result.reason === 'backoff' ? 'for this user lately' : 'or password checks from this address'}; ` +
            `try again in ${result.retryAfter} s`,
          { 'retry-after': String(result.retryAfter) },
        );
      case 'busy':
        // RFC 6749 §4.1.2.1 names this error; RFC 9110 §15.6.4 the status and Retry-After.
        throw new Refusal(
          503,
          'temporarily_unavailable',
          `the token server is checking too many passwords at once; try again in ${result.retryAfter} s`,
          { 'retry-after': String(result.retryAfter) },
        );
    }
  };

  return async (req) => {
    const log: {
      grantType: TokenLogEntry['grantType'];
      account: string;
      clientId?: string;
      requested: string[];
      granted: string[];
    } = { grantType: 'unknown', account: '', requested: [], granted: [] };
    const finish = (
      response: TokenResponse,
      outcome: TokenLogEntry['outcome'],
      reason?: string,
    ): TokenResponse => {
      deps.log({
        msg: 'token',
        method: req.method,
        grantType: log.grantType,
        account: log.account,
        address: req.address,
        ...(log.clientId === undefined ? {} : { clientId: forLog(log.clientId) }),
        requested: log.requested.map(forLog),
        granted: log.granted.map(forLog),
        outcome,
        status: response.status,
        ...(reason === undefined ? {} : { reason: forLog(reason) }),
      });
      return response;
    };

    try {
      let subject: string;
      let scopes: ResourceScope[];
      let offline: boolean;
      let refreshFingerprint: string | undefined;

      if (req.method === 'GET') {
        const q = req.query;
        checkService(q.get('service'));
        const clientId = q.get('client_id');
        if (clientId !== null) log.clientId = clientId;
        scopes = parseScopes(q.getAll('scope'), deps.maxScopes);
        log.requested = scopes.map(formatScope);
        offline = q.get('offline_token') === 'true';
        const account = q.get('account');
        if (account !== null) checkUserName(account, 'account parameter');
        if (req.authorization === undefined || req.authorization === '') {
          log.grantType = 'anonymous';
          if (account !== null && account !== '') {
            throw new Refusal(
              401,
              'invalid_client',
              `credentials are needed to act as the account named; ${UNAUTHORIZED_HINT}`,
              basicChallenge,
            );
          }
          // A request with neither credentials nor scope is a login probe: answer it as a failed login.
          if (scopes.length === 0) {
            throw new Refusal(
              401,
              'invalid_client',
              `authentication required; ${UNAUTHORIZED_HINT}`,
              basicChallenge,
            );
          }
          subject = '';
          offline = false;
        } else {
          log.grantType = 'basic';
          const creds = parseBasic(req.authorization);
          log.account = deps.guard.accountLabel(creds.username);
          checkUserName(creds.username, 'user name');
          refreshFingerprint = await authenticate(creds, req.address);
          if (account !== null && account !== '' && account !== creds.username) {
            throw new Refusal(
              400,
              'invalid_request',
              'the account parameter does not name the user whose credentials were sent',
            );
          }
          subject = creds.username;
        }
      } else if (req.method === 'POST') {
        if (!/^application\/x-www-form-urlencoded\b/i.test(req.contentType ?? '')) {
          throw new Refusal(
            415,
            'invalid_request',
            'POST /token takes an application/x-www-form-urlencoded body (RFC 6749)',
          );
        }
        const form = new URLSearchParams(req.body ?? '');
        checkService(form.get('service'));
        const clientId = form.get('client_id');
        if (clientId !== null) log.clientId = clientId;
        scopes = parseScopes(form.getAll('scope'), deps.maxScopes);
        log.requested = scopes.map(formatScope);
        offline = form.get('access_type') === 'offline';
        const grantType = form.get('grant_type');
        if (grantType === 'password') {
          log.grantType = 'password';
          const username = form.get('username') ?? '';
          const password = form.get('password') ?? '';
          if (username === '' || password === '') {
            throw new Refusal(400, 'invalid_request', 'grant_type=password needs username and password');
          }
          log.account = deps.guard.accountLabel(username);
          checkUserName(username, 'user name');
          refreshFingerprint = await authenticate({ username, password }, req.address);
          subject = username;
        } else if (grantType === 'refresh_token') {
          log.grantType = 'refresh_token';
          const claims = deps.issuer.verifyRefreshToken(form.get('refresh_token') ?? '');
          if (claims) log.account = claims.sub;
          if (
            !claims ||
            claims.service !== deps.service ||
            deps.users().fingerprint(claims.sub) !== claims.fp
          ) {
            throw new Refusal(
              401,
              'invalid_grant',
              'the refresh token is invalid, expired, or revoked by a password change; log in again',
              basicChallenge,
            );
          }
          subject = claims.sub;
          refreshFingerprint = claims.fp;
          // A refresh grant renews access; the client already holds its refresh token.
          offline = false;
        } else {
          throw new Refusal(
            400,
            'unsupported_grant_type',
            `grant_type must be password or refresh_token, not ${JSON.stringify((grantType ?? '').slice(0, 40))}`,
          );
        }
      } else {
        throw new Refusal(405, 'invalid_request', 'use GET or POST on /token', { allow: 'GET, POST' });
      }

      const granted = deps
        .acl()
        .authorize(subject === '' ? undefined : { name: subject, labels: {} }, scopes, {
          service: deps.service,
          address: req.address,
        });
      log.granted = granted.map(formatScope);
      const reuseKey = TokenReuse.key(subject, deps.service, granted);
      let issued = deps.reuse?.get(reuseKey);
      if (!issued) {
        issued = await deps.issuer.issueAccessToken(subject, deps.service, granted);
        deps.reuse?.remember(reuseKey, issued);
      }
      const body: Record<string, unknown> = {
        token: issued.token,
        access_token: issued.token,
        expires_in: issued.expiresIn,
        issued_at: issued.issuedAt.toISOString(),
      };
      if (offline && refreshFingerprint !== undefined) {
        body.refresh_token = deps.issuer.issueRefreshToken({
          sub: subject,
          service: deps.service,
          fp: refreshFingerprint,
        });
      }
      return finish({ status: 200, headers: JSON_HEADERS, body: JSON.stringify(body) }, 'issued');
    } catch (err) {
      if (err instanceof Refusal) {
        const outcome =
          err.status === 401
            ? 'unauthorized'
            : err.status === 429
              ? 'throttled'
              : err.status === 503
                ? 'unavailable'
                : 'bad_request';
        return finish(
          errorResponse(err.status, err.oauthError, err.message, err.headers),
          outcome,
          err.message,
        );
      }
      return finish(
        errorResponse(500, 'server_error', 'the token server failed; see its log'),
        'error',
        (err as Error).message,
      );
    }
  };
}
