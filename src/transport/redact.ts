/** Headers whose values are secrets, whatever the request (PROTOCOL.md §7). */
const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-registry-auth',
]);
/** JSON keys whose values are secrets in token responses, credentials and config files. */
const SECRET_KEYS = new Set([
  'token',
  'access_token',
  'refresh_token',
  'password',
  'identitytoken',
  'registrytoken',
  'secret',
  'auth',
]);
/** Form fields (OAuth2 POST bodies) and query parameters that carry secrets. */
const SECRET_PARAMS = new Set(['password', 'refresh_token', 'access_token', 'token']);

export const REDACTED = '<redacted>';

/** `Bearer eyJ…` → `Bearer <redacted>`: the scheme is useful to see, the credential never. */
export function redactHeaderValue(name: string, value: string): string {
  if (!SECRET_HEADERS.has(name.toLowerCase())) return value;
  const space = value.indexOf(' ');
  return space > 0 && /^[A-Za-z][\w-]*$/.test(value.slice(0, space))
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

/** A JSON value with every secret-named key's value replaced, however deep. */
export function redactJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactJson);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_KEYS.has(k.toLowerCase()) ? REDACTED : redactJson(v)]),
    );
  }
  return value;
}

/** A URL with secret query parameters and any user:password part replaced. */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password) copy.password = 'redacted';
  for (const key of [...copy.searchParams.keys()]) {
    if (SECRET_PARAMS.has(key.toLowerCase())) copy.searchParams.set(key, REDACTED);
  }
  return copy.href;
}

/** An urlencoded form with secret fields replaced. */
export function redactForm(body: string): string {
  const form = new URLSearchParams(body);
  for (const key of [...form.keys()]) if (SECRET_PARAMS.has(key.toLowerCase())) form.set(key, REDACTED);
  return decodeURIComponent(form.toString().replaceAll('+', ' '));
}
