export const REDACTED = '<redacted>';
/** What a redacted query value or password becomes inside a URL, where `<` and `>` would be escaped. */
export const REDACTED_IN_URL = 'redacted';

/**
 * Query parameters whose values are shown: the ones the registry protocol itself uses. Any other
 * value may be a signature or a token that a redirect to storage carried (S3's X-Amz-Signature
 * and X-Amz-Security-Token, Azure's sig, a CDN's token, distribution's _state), so it is hidden,
 * as go-containerregistry's internal/redact does. `account`, `client_id` and `offline_token`
 * are docker's token request fields (a user name, a client name, a flag); `artifactType` filters
 * referrers.
 */
const QUERY_ALLOWLIST = new Set([
  'scope',
  'service',
  'mount',
  'from',
  'digest',
  'n',
  'last',
  'account',
  'client_id',
  'offline_token',
  'artifactType',
]);

/** OAuth2 token request fields that are not secrets (https://distribution.github.io/distribution/spec/auth/oauth/). */
const FORM_ALLOWLIST = new Set(['grant_type', 'service', 'client_id', 'scope', 'username', 'access_type']);

/** Headers whose value starts with a scheme worth showing (`Bearer <redacted>`). */
const SCHEME_HEADERS = new Set(['authorization', 'proxy-authorization']);
/**
 * Header names that may carry a secret: credentials, cookies, session and security tokens
 * (X-Amz-Security-Token), API keys, signatures. A guess by name, so it errs on the side of hiding.
 */
const SECRET_HEADER = /auth|token|secret|passw|credential|cookie|session|signature|key/i;
/** Challenges are public, and the trace exists to show them. */
const PUBLIC_HEADERS = new Set(['www-authenticate', 'proxy-authenticate']);
/** Headers whose values are URLs, or hold URLs in `<…>` (Link): their query strings are redacted. */
const URL_HEADERS = new Set(['location', 'content-location']);
/** A JWT anywhere in a value: its header and claims are base64url JSON, so both start with `eyJ`. */
const JWT = /eyJ[\w-]{4,}\.eyJ[\w-]{4,}\.[\w-]*/g;
/** JSON keys whose values are secrets in token responses, credentials and config files. */
const SECRET_KEY = /token|secret|passw|credential|signature|^auth$|authorization|api_?key|private_?key/i;

function redactQueryString(query: string, allowed: ReadonlySet<string>, replacement: string): string {
  return query
    .split('&')
    .map((part) => {
      if (part === '') return part;
      const eq = part.indexOf('=');
      const rawKey = eq < 0 ? part : part.slice(0, eq);
      let key = rawKey;
      try {
        key = decodeURIComponent(rawKey.replaceAll('+', ' '));
      } catch {
        // A malformed escape is not a name on the allow-list.
      }
      if (allowed.has(key)) return part;
      // A bare `?secret` (no `=`) may itself be the secret: hide it whole.
      return eq < 0 ? replacement : `${rawKey}=${replacement}`;
    })
    .join('&');
}

/**
 * A URL as text, absolute or relative (a Location header's), with every query value off the
 * allow-list, the fragment, any user info and any JWT in the path replaced.
 */
export function redactUrlText(text: string): string {
  let rest = text;
  let fragment = '';
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    fragment = hash === rest.length - 1 ? '#' : `#${REDACTED_IN_URL}`;
    rest = rest.slice(0, hash);
  }
  let query = '';
  const question = rest.indexOf('?');
  if (question >= 0) {
    query = `?${redactQueryString(rest.slice(question + 1), QUERY_ALLOWLIST, REDACTED_IN_URL)}`;
    rest = rest.slice(0, question);
  }
  // User info may be a token on its own (`https://TOKEN@host/`), not only user:password.
  rest = rest.replace(/^([a-z][a-z\d+.-]*:\/\/)[^/@]*@/i, `$1${REDACTED_IN_URL}@`);
  return `${rest.replace(JWT, REDACTED_IN_URL)}${query}${fragment}`;
}

/** A URL with every query value off the allow-list, the fragment, user info and JWTs replaced. */
export function redactUrl(url: URL): string {
  return redactUrlText(url.href);
}

/** `Bearer eyJ…` → `Bearer <redacted>`: the scheme is useful to see, the credential never. */
export function redactHeaderValue(name: string, value: string): string {
  const lower = name.toLowerCase();
  if (URL_HEADERS.has(lower)) return redactUrlText(value);
  if (lower === 'link') return value.replace(/<([^>]*)>/g, (_m, url: string) => `<${redactUrlText(url)}>`);
  if (PUBLIC_HEADERS.has(lower) || !SECRET_HEADER.test(lower)) return value.replace(JWT, REDACTED);
  const space = value.indexOf(' ');
  return SCHEME_HEADERS.has(lower) && space > 0 && /^[A-Za-z][\w-]*$/.test(value.slice(0, space))
    ? `${value.slice(0, space)} ${REDACTED}`
    : REDACTED;
}

export function redactHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value)
      ? value.map((v) => redactHeaderValue(name, v))
      : redactHeaderValue(name, value);
  }
  return out;
}

/** A JSON value with every secret-named key's value and every JWT replaced, however deep. */
export function redactJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactJson);
  if (typeof value === 'string') return value.replace(JWT, REDACTED);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) ? REDACTED : redactJson(v)]),
    );
  }
  return value;
}

/** An urlencoded OAuth2 form with every field but the allow-listed ones replaced. */
export function redactForm(body: string): string {
  const redacted = redactQueryString(body, FORM_ALLOWLIST, REDACTED);
  try {
    return decodeURIComponent(redacted.replaceAll('+', ' '));
  } catch {
    return redacted;
  }
}
