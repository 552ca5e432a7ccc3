import type { AuthResponse } from '../auth/create-auth-client.js';
import { parseChallenges } from '../auth/parse-challenge.js';
import {
  type RefusedAccess,
  RegauthError,
  type RegauthErrorCode,
  type RegistryErrorEntry,
} from '../errors/regauth-error.js';
import { sanitizeServerText } from '../errors/sanitize-server-text.js';
import { httpErrorFacts } from '../transport/http-error-facts.js';
import type { HttpResponse } from '../transport/http-types.js';
import { isQuotaExhausted } from '../transport/is-quota-exhausted.js';
import { parseRateLimit } from './rate-limit.js';

/** What a bodiless 404 means, by the code the request expected for it. */
const NOT_FOUND_WORDS: Partial<Record<RegauthErrorCode, string>> = {
  ERR_MANIFEST_UNKNOWN: 'not found (no such tag or digest in the repository)',
  ERR_BLOB_UNKNOWN: 'not found (no such blob in the repository)',
  ERR_NAME_UNKNOWN: 'not found (no such repository)',
};

/** Error bodies are small JSON envelopes; reading more would only help a broken server waste memory. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

const SPEC_CODES: Record<string, RegauthErrorCode> = {
  MANIFEST_UNKNOWN: 'ERR_MANIFEST_UNKNOWN',
  MANIFEST_INVALID: 'ERR_MANIFEST_INVALID',
  MANIFEST_BLOB_UNKNOWN: 'ERR_BLOB_UNKNOWN',
  BLOB_UNKNOWN: 'ERR_BLOB_UNKNOWN',
  NAME_UNKNOWN: 'ERR_NAME_UNKNOWN',
  NAME_INVALID: 'ERR_NAME_INVALID',
  TAG_INVALID: 'ERR_TAG_INVALID',
  DIGEST_INVALID: 'ERR_DIGEST_MISMATCH',
  UNAUTHORIZED: 'ERR_UNAUTHORIZED',
  DENIED: 'ERR_DENIED',
  UNSUPPORTED: 'ERR_UNSUPPORTED',
  TOOMANYREQUESTS: 'ERR_TOO_MANY_REQUESTS',
};

const STATUS_CODES: Record<number, RegauthErrorCode> = {
  401: 'ERR_UNAUTHORIZED',
  403: 'ERR_DENIED',
  405: 'ERR_UNSUPPORTED',
  429: 'ERR_TOO_MANY_REQUESTS',
};

function parseEnvelope(text: string): RegistryErrorEntry[] {
  try {
    const body = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(body.errors)) return [];
    return body.errors
      .filter(
        (e): e is Record<string, unknown> =>
          typeof e === 'object' && e !== null && typeof e.code === 'string',
      )
      .map((e) => ({
        code: e.code as string,
        ...(typeof e.message === 'string' ? { message: e.message } : {}),
        ...(e.detail === undefined ? {} : { detail: e.detail }),
      }));
  } catch {
    return [];
  }
}

function hint(code: RegauthErrorCode): string {
  return code === 'ERR_TOO_MANY_REQUESTS'
    ? 'the registry is rate-limiting; wait and retry, or log in for a higher limit'
    : '';
}

/** The action a sentence names when a request needed several: a push needs pull too, and says more. */
const STRONGEST_FIRST = ['delete', 'push', 'pull'];

/** The actions a request for `action` asks for (distribution: POST/PUT/PATCH need pull and push). */
function actionsFor(action: string): string[] {
  return action === 'push' ? ['pull', 'push'] : [action];
}

/** "pull from R/x", "push to R/x", "list the catalog of R": what a refused request tried to do. */
function attempted(access: RefusedAccess): string {
  if (access.repository === undefined) return `list the catalog of ${access.registry}`;
  const where = `${access.registry}/${access.repository}`;
  const action = STRONGEST_FIRST.find((a) => access.actions.includes(a)) ?? access.actions[0] ?? 'pull';
  if (action === 'push') return `push to ${where}`;
  if (action === 'pull' || action === 'delete') return `${action} from ${where}`;
  return `${action} ${where}`;
}

/** Who was refused what, in a sentence: "alice may not push to R/x". */
function refusal(code: RegauthErrorCode, access: RefusedAccess): string {
  const what = attempted(access);
  if (access.as === 'anonymous') return `an anonymous request may not ${what}`;
  if (access.as === 'unknown') return `the registry refused to let this request ${what}`;
  const who = access.account ?? 'the identity token';
  return code === 'ERR_UNAUTHORIZED'
    ? `${who} may not ${what}: the registry refused the credentials`
    : `${who} may not ${what}`;
}

/**
 * Turns a registry's error answer into a typed error: the `errors[]` envelope's first code picks
 * the error code (else the HTTP status does), all entries are kept, and the message says what
 * failed, where, and what to do.
 */
export async function registryError(
  res: AuthResponse,
  what: string,
  options: {
    /** What the request needed, named in a refusal: `pull`, `push`, `delete`, `list`. */
    readonly action?: string;
    readonly notFound?: RegauthErrorCode;
    /** With `repository`, names where a refused request went (RegauthError.access). */
    readonly registry?: string;
    readonly repository?: string;
  } = {},
): Promise<RegauthError> {
  const text = await res.text(MAX_ERROR_BODY_BYTES).catch(() => '');
  const entries = parseEnvelope(text);
  const first = entries[0];
  // A token that lacks the action gets 401 insufficient_scope from distribution, never 403
  // (distribution registry/auth/token/accesscontroller.go): after the auth layer's one retry
  // with a fresh token, that is a denial.
  const insufficient =
    res.status === 401 &&
    parseChallenges(res.headerValues('www-authenticate')).some(
      (c) => c.params.error === 'insufficient_scope',
    );
  const code =
    (insufficient ? 'ERR_DENIED' : undefined) ??
    (first && SPEC_CODES[first.code]) ??
    STATUS_CODES[res.status] ??
    (res.status === 404 ? (options.notFound ?? 'ERR_NAME_UNKNOWN') : 'ERR_REGISTRY');
  // The registry's words go into a one-line message: a newline in them could forge a line.
  const said = sanitizeServerText(
    entries.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; '),
    { singleLine: true },
  );
  const retryAfter =
    res.status === 429 ? sanitizeServerText(res.header('retry-after') ?? '', { singleLine: true }) : '';
  // A HEAD answer has no body to say what is missing: the status's meaning stands in for it.
  const missing = res.status === 404 && !said ? NOT_FOUND_WORDS[code] : undefined;
  const answered = `${what}: ${res.status}${said ? ` ${said}` : missing ? ` ${missing}` : ''}`;
  const access = refusedAccess(code, res, options);
  if (access !== undefined) {
    const from = access.credentialSource === undefined ? '' : `credentials from ${access.credentialSource}; `;
    return new RegauthError(code, `${refusal(code, access)} (${from}${answered})`, {
      ...httpErrorFacts(res),
      registryErrors: entries,
      access,
    });
  }
  const advice = isQuotaExhausted(res) ? quotaAdvice(res) : hint(code);
  const message = [answered, retryAfter ? `retry after ${retryAfter} s` : '', advice]
    .filter((s) => s !== '')
    .join('; ');
  return new RegauthError(code, message, { ...httpErrorFacts(res), registryErrors: entries });
}

/** For a refusal (401 or 403 after the auth layer's answer): who asked to do what, where. */
function refusedAccess(
  code: RegauthErrorCode,
  res: AuthResponse,
  options: { readonly action?: string; readonly registry?: string; readonly repository?: string },
): RefusedAccess | undefined {
  if ((code !== 'ERR_DENIED' && code !== 'ERR_UNAUTHORIZED') || options.registry === undefined)
    return undefined;
  const sent = res.sentAs;
  return {
    registry: options.registry,
    ...(options.repository === undefined ? {} : { repository: options.repository }),
    actions: actionsFor(options.action ?? 'pull'),
    ...(sent === undefined
      ? { as: 'unknown' as const }
      : sent.anonymous
        ? { as: 'anonymous' as const }
        : {
            as: 'account' as const,
            credentialSource: sent.source,
            ...(sent.account === undefined ? {} : { account: sent.account }),
          }),
  };
}

/**
 * What a spent quota means for the user: how big it is and when its window ends. Docker Hub's
 * window slides (`w=21600`: pulls of the last 6 h count), so the end named is the latest one.
 */
function quotaAdvice(res: HttpResponse, now: number = Date.now()): string {
  const limit = parseRateLimit(res);
  const window = limit?.windowSeconds;
  const size =
    limit === undefined
      ? "the registry's request quota"
      : `the quota of ${limit.limit} pulls${window === undefined ? '' : ` per ${formatSeconds(window)}`}`;
  const ends =
    window === undefined
      ? 'it is not retried now, as it will not clear in seconds'
      : `it frees up within ${formatSeconds(window)}, by ${new Date(now + window * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC at the latest; not retried now`;
  return `${size} is used up: ${ends}; log in (or as another account) for a higher limit`;
}

function formatSeconds(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
