import { RegauthError } from '../errors/regauth-error.js';
import { formatScope } from '../scope/format-scope.js';
import { parseScopeList, type ResourceScope } from '../scope/parse-scope.js';
import type { Authorizer, Identity } from './authenticator.js';
import type { PasswordGuard } from './password-guard.js';
import { createRefreshTokenAuthenticator, type RefreshLookup } from './refresh-token-authenticator.js';
import type { IssuedToken, TokenIssuer } from './token-issuer.js';
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
  /** The kind of authenticator that accepted the login (`htpasswd`, `ext_auth`, `refresh_token`…). */
  readonly authn?: string;
  /** The names of the identity's labels (never their values, which a backend may fill with anything). */
  readonly labels?: readonly string[];
}

/** What createTokenService needs: the pieces createTokenHandler builds from a TokenHandlerConfig. */
export interface TokenServiceDeps {
  readonly service: string;
  readonly maxScopes: number;
  /** Decides what an identity gets (the ACL, createAclAuthorizer); called per request, so a reload can swap it. */
  readonly authorizer: () => Authorizer;
  /**
   * Checks user name and password against the `authn:` list: bounded work, back-off, budgets,
   * the login cache (password-guard.ts).
   */
  readonly guard: Pick<PasswordGuard, 'authenticate' | 'accountLabel' | 'fingerprint'>;
  readonly issuer: TokenIssuer;
  /**
   * Asks the authenticator that accepted a login again at each refresh (createRefreshLookup).
   * Left out: refresh tokens naming an authenticator are refused.
   */
  readonly lookup?: RefreshLookup;
  /** Reuses a token issued moments ago for the same subject and grant. Left out: always sign anew. */
  readonly reuse?: TokenReuse;
  /**
   * An account's revocation epoch in ms (RevocationStore.revokedBefore): its refresh tokens and
   * reusable access tokens from before it are refused. Left out: nothing is revoked.
   */
  readonly revokedBefore?: (account: string) => number | undefined;
  /** Called when a revocation refused something: a refresh token, or a token kept for reuse. */
  readonly onRevoked?: (what: 'refresh_token' | 'reused_token') => void;
  readonly log: (entry: TokenLogEntry) => void;
}

/** An answer that is not a token: status, OAuth2 error name, and a message for the user. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly oauthError: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** What the log says instead of the message, when the client must not learn it. */
    readonly logReason?: string,
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

/**
 * Retry-After when an authorizer failed: as long as a login whose backend is down waits
 * (password-guard.ts), short enough that a crashed program's restart is noticed quickly.
 */
export const AUTHORIZER_RETRY_AFTER_S = 5;

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

/** Scope values kept parsed, by their text: clients ask for the same few over and over. */
export const PARSED_SCOPE_ENTRIES = 1024;
/** Longer values are parsed each time: the table stays within about a megabyte. */
const PARSED_SCOPE_MAX_CHARS = 1024;
const parsedScopes = new Map<string, readonly ResourceScope[]>();

/**
 * parseScopeList, kept for the next request with the same value (frozen, since requests share
 * it). A value that does not parse throws each time and is never kept.
 */
function parseScopeValue(value: string): readonly ResourceScope[] {
  let scopes = parsedScopes.get(value);
  if (scopes === undefined) {
    scopes = Object.freeze(
      parseScopeList(value).map((scope) =>
        Object.freeze({ ...scope, actions: Object.freeze(scope.actions) }),
      ),
    );
    if (value.length <= PARSED_SCOPE_MAX_CHARS) {
      if (parsedScopes.size >= PARSED_SCOPE_ENTRIES) parsedScopes.clear();
      parsedScopes.set(value, scopes);
    }
  }
  return scopes;
}

function parseScopes(values: readonly string[], maxScopes: number): readonly ResourceScope[] {
  let scopes: readonly ResourceScope[];
  try {
    scopes = values.length === 1 ? parseScopeValue(values[0] as string) : values.flatMap(parseScopeValue);
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

/** What the parse step read from a request: docker_auth's authRequest (server.go ParseRequest). */
interface ParsedTokenRequest {
  readonly grantType: TokenLogEntry['grantType'];
  readonly clientId?: string | undefined;
  readonly scopes: readonly ResourceScope[];
  /** Whether a refresh token was asked for (`offline_token=true`, `access_type=offline`). */
  readonly offline: boolean;
  /** Basic or password-grant credentials; left out for anonymous and refresh requests. */
  readonly credentials?: Credentials;
  readonly refreshToken?: string;
  /** The GET `account` parameter: must name the user whose credentials came. */
  readonly account?: string | undefined;
}

/**
 * Step 1, parse: GET per distribution's docs/spec/auth/token.md (Basic or anonymous), POST per
 * docs/spec/auth/oauth.md (password and refresh_token grants). `onScopes` hands the parsed
 * parts to the log before a later check refuses the request.
 */
function parseTokenRequest(
  req: TokenRequest,
  deps: Pick<TokenServiceDeps, 'service' | 'maxScopes'>,
  seen: (parsed: Partial<ParsedTokenRequest>) => void,
): ParsedTokenRequest {
  const checkService = (service: string | null): void => {
    if (service !== null && service !== '' && service !== deps.service) {
      throw new Refusal(
        400,
        'invalid_request',
        `this token server issues tokens for service "${deps.service}", not "${service.slice(0, 100)}"`,
      );
    }
  };
  const common = (params: URLSearchParams) => {
    checkService(params.get('service'));
    const clientId = params.get('client_id');
    if (clientId !== null) seen({ clientId });
    const scopes = parseScopes(params.getAll('scope'), deps.maxScopes);
    seen({ scopes });
    // Plain literals, no spreads: one object shape per grant, built on every request.
    return { clientId: clientId ?? undefined, scopes };
  };

  if (req.method === 'GET') {
    const q = req.query;
    const { clientId, scopes } = common(q);
    const account = q.get('account') ?? undefined;
    if (account !== undefined) checkUserName(account, 'account parameter');
    if (req.authorization === undefined || req.authorization === '') {
      seen({ grantType: 'anonymous' });
      return { clientId, scopes, grantType: 'anonymous', offline: false, account };
    }
    seen({ grantType: 'basic' });
    const credentials = parseBasic(req.authorization);
    seen({ credentials });
    checkUserName(credentials.username, 'user name');
    return {
      clientId,
      scopes,
      grantType: 'basic',
      offline: q.get('offline_token') === 'true',
      credentials,
      account,
    };
  }
  if (req.method === 'POST') {
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.contentType ?? '')) {
      throw new Refusal(
        415,
        'invalid_request',
        'POST /token takes an application/x-www-form-urlencoded body (RFC 6749)',
      );
    }
    const form = new URLSearchParams(req.body ?? '');
    const { clientId, scopes } = common(form);
    const grantType = form.get('grant_type');
    if (grantType === 'password') {
      seen({ grantType: 'password' });
      const username = form.get('username') ?? '';
      const password = form.get('password') ?? '';
      if (username === '' || password === '') {
        throw new Refusal(400, 'invalid_request', 'grant_type=password needs username and password');
      }
      const credentials = { username, password };
      seen({ credentials });
      checkUserName(username, 'user name');
      return {
        clientId,
        scopes,
        grantType: 'password',
        offline: form.get('access_type') === 'offline',
        credentials,
      };
    }
    if (grantType === 'refresh_token') {
      seen({ grantType: 'refresh_token' });
      // A refresh grant renews access; the client already holds its refresh token.
      return {
        clientId,
        scopes,
        grantType: 'refresh_token',
        offline: false,
        refreshToken: form.get('refresh_token') ?? '',
      };
    }
    throw new Refusal(
      400,
      'unsupported_grant_type',
      `grant_type must be password or refresh_token, not ${JSON.stringify((grantType ?? '').slice(0, 40))}`,
    );
  }
  throw new Refusal(405, 'invalid_request', 'use GET or POST on /token', { allow: 'GET, POST' });
}

/** When an issued token ends, in ms since the epoch. */
function endOf(issued: IssuedToken): number {
  return issued.issuedAt.getTime() + issued.expiresIn * 1000;
}

/** When an issued token was signed, in ms (a reused one keeps its own time). */
function issuedAtMs(issued: IssuedToken): number {
  return issued.issuedAtMs ?? issued.issuedAt.getTime();
}

/** Who the authenticate step found: undefined identity for an anonymous request. */
interface Authenticated {
  readonly identity: Identity | undefined;
  readonly fingerprint?: string;
  /** When the credential expires (ms since the epoch): the access token ends no later. */
  readonly expiresAt?: number;
  readonly by?: string;
  /** The `id` of the authenticator that accepted: a refresh token records it. */
  readonly authenticatorId?: string;
}

/**
 * The token endpoint, in docker_auth's four steps (cesanta/docker_auth auth_server/server/server.go
 * doAuth): parse the request, authenticate it (the `authn:` list behind the PasswordGuard, or
 * the refresh token), authorize the scopes (one Authorizer), issue the token. A new backend is
 * an Authenticator or Authorizer; nothing here changes for it. RFC 6749 §5 for the answers.
 */
export function createTokenService(deps: TokenServiceDeps): (req: TokenRequest) => Promise<TokenResponse> {
  const basicChallenge = {
    'www-authenticate': `Basic realm=${JSON.stringify(deps.service)}, charset="UTF-8"`,
  };
  const refresh = createRefreshTokenAuthenticator({
    issuer: deps.issuer,
    service: deps.service,
    fingerprint: (user) => deps.guard.fingerprint(user),
    ...(deps.lookup === undefined ? {} : { lookup: deps.lookup }),
    ...(deps.revokedBefore === undefined ? {} : { revokedBefore: deps.revokedBefore }),
  });

  /** Step 2 for user and password: the guard runs the authenticator list. */
  const authenticatePassword = async (creds: Credentials, address: string): Promise<Authenticated> => {
    const result = await deps.guard.authenticate(creds.username, creds.password, address);
    if (result.ok) {
      return {
        identity: result.identity,
        by: result.by,
        ...(result.authenticatorId === undefined ? {} : { authenticatorId: result.authenticatorId }),
        ...(result.fingerprint === undefined ? {} : { fingerprint: result.fingerprint }),
        ...(result.expiresAt === undefined ? {} : { expiresAt: result.expiresAt }),
      };
    }
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
      case 'unavailable':
        // The backend's failure goes to the log (the reason); the client learns only to retry.
        throw new Refusal(
          503,
          'temporarily_unavailable',
          `the token server could not check the password; try again in ${result.retryAfter} s`,
          { 'retry-after': String(result.retryAfter) },
          `authenticator failed: ${result.error}`,
        );
    }
  };

  /**
   * Step 3. An authorizer that fails (an ext_authz program crashed or timed out) is answered like
   * an authenticator that is down: 503, never a grant; the reason goes to the log only.
   */
  const authorize = async (
    authorizer: Authorizer,
    identity: Identity | undefined,
    scopes: readonly ResourceScope[],
    address: string,
  ): Promise<ResourceScope[]> => {
    try {
      return await authorizer.authorize(identity, scopes, { service: deps.service, address });
    } catch (err) {
      throw new Refusal(
        503,
        'temporarily_unavailable',
        `the token server could not decide what to grant; try again in ${AUTHORIZER_RETRY_AFTER_S} s`,
        { 'retry-after': String(AUTHORIZER_RETRY_AFTER_S) },
        `authorizer failed: ${(err as Error).message}`,
      );
    }
  };

  /**
   * The answer's JSON per issued token. A reused token's answer is the same text each time (it
   * keeps its own issued_at and expires_in), so it is written once, not once per request: the
   * token is 1–2 KiB and sent twice (`token` for docker, `access_token` for OAuth2 clients).
   */
  const answers = new WeakMap<IssuedToken, string>();
  const answerBody = (issued: IssuedToken, refreshToken: string | undefined): string => {
    const fields = () => ({
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString(),
    });
    if (refreshToken !== undefined) return JSON.stringify({ ...fields(), refresh_token: refreshToken });
    let text = answers.get(issued);
    if (text === undefined) {
      text = JSON.stringify(fields());
      answers.set(issued, text);
    }
    return text;
  };

  return async (req) => {
    const log: {
      grantType: TokenLogEntry['grantType'];
      account: string;
      clientId?: string;
      requested: string[];
      granted: string[];
      authn?: string;
      labels?: string[];
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
        ...(log.authn === undefined ? {} : { authn: log.authn }),
        ...(log.labels === undefined || log.labels.length === 0 ? {} : { labels: log.labels.map(forLog) }),
      });
      return response;
    };

    try {
      // 1. parse
      const parsed = parseTokenRequest(req, deps, (part) => {
        if (part.grantType !== undefined) log.grantType = part.grantType;
        if (part.clientId !== undefined) log.clientId = part.clientId;
        if (part.scopes !== undefined) log.requested = part.scopes.map(formatScope);
        if (part.credentials !== undefined) log.account = deps.guard.accountLabel(part.credentials.username);
      });

      // 2. authenticate
      let who: Authenticated;
      if (parsed.credentials !== undefined) {
        who = await authenticatePassword(parsed.credentials, req.address);
        if (
          parsed.account !== undefined &&
          parsed.account !== '' &&
          parsed.account !== parsed.credentials.username
        ) {
          throw new Refusal(
            400,
            'invalid_request',
            'the account parameter does not name the user whose credentials were sent',
          );
        }
      } else if (parsed.refreshToken !== undefined) {
        const result = await refresh.authenticate(parsed.refreshToken);
        if (result.outcome === 'unavailable') {
          log.account = result.account;
          // As for a password check whose backend is down: retry later, never stale labels.
          throw new Refusal(
            503,
            'temporarily_unavailable',
            `the token server could not check the refresh token's user; try again in ${AUTHORIZER_RETRY_AFTER_S} s`,
            { 'retry-after': String(AUTHORIZER_RETRY_AFTER_S) },
            `authenticator failed: ${result.error}`,
          );
        }
        if (result.outcome !== 'accepted') {
          if (result.account !== undefined) log.account = result.account;
          if (result.revoked) deps.onRevoked?.('refresh_token');
          const message =
            'the refresh token is invalid, expired, or revoked (by a password change, its user leaving the directory, or an admin); log in again';
          throw new Refusal(
            401,
            'invalid_grant',
            message,
            basicChallenge,
            result.revoked
              ? 'revoked'
              : result.reason === undefined
                ? message
                : `refresh token refused: ${result.reason}`,
          );
        }
        who = {
          identity: result.identity,
          by: 'refresh_token',
          ...(result.fingerprint === undefined ? {} : { fingerprint: result.fingerprint }),
        };
      } else {
        if (parsed.account !== undefined && parsed.account !== '') {
          throw new Refusal(
            401,
            'invalid_client',
            `credentials are needed to act as the account named; ${UNAUTHORIZED_HINT}`,
            basicChallenge,
          );
        }
        // A request with neither credentials nor scope is a login probe: answer it as a failed login.
        if (parsed.scopes.length === 0) {
          throw new Refusal(
            401,
            'invalid_client',
            `authentication required; ${UNAUTHORIZED_HINT}`,
            basicChallenge,
          );
        }
        who = { identity: undefined };
      }
      const subject = who.identity?.name ?? '';
      if (who.identity !== undefined) {
        log.account = subject;
        if (who.by !== undefined) log.authn = who.by;
        log.labels = Object.keys(who.identity.labels);
      }

      // 3. authorize
      const granted = await authorize(deps.authorizer(), who.identity, parsed.scopes, req.address);
      log.granted = granted.map(formatScope);

      // 4. issue
      const reuseKey = TokenReuse.key(subject, deps.service, granted);
      let issued = deps.reuse?.get(reuseKey);
      if (issued !== undefined && who.expiresAt !== undefined && endOf(issued) > who.expiresAt) {
        issued = undefined;
      }
      const epoch = issued === undefined || subject === '' ? undefined : deps.revokedBefore?.(subject);
      if (issued !== undefined && epoch !== undefined && issuedAtMs(issued) < epoch) {
        deps.onRevoked?.('reused_token');
        issued = undefined;
      }
      if (!issued) {
        issued = await deps.issuer.issueAccessToken(subject, deps.service, granted, who.expiresAt);
        // A token cut short by its credential is not handed to the next login of the same grant.
        if (who.expiresAt === undefined) deps.reuse?.remember(reuseKey, issued);
      }
      // No refresh token for a credential that expires (a CI job's OIDC token): it would live
      // for refreshExpiration, and a fingerprint-less identity's cannot be revoked.
      const refreshToken =
        parsed.offline && who.identity !== undefined && who.expiresAt === undefined
          ? deps.issuer.issueRefreshToken({
              sub: subject,
              service: deps.service,
              ...(who.fingerprint === undefined ? {} : { fp: who.fingerprint }),
              ...(who.authenticatorId === undefined ? {} : { authn: who.authenticatorId }),
              labels: who.identity.labels,
            })
          : undefined;
      return finish({ status: 200, headers: JSON_HEADERS, body: answerBody(issued, refreshToken) }, 'issued');
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
          err.logReason ?? err.message,
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
