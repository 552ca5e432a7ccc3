import { RegauthError, type RegauthErrorOptions } from '../errors/regauth-error.js';

/** distribution token.md: a token without expires_in lives 60 s, and clients treat less as 60. */
export const MIN_TOKEN_LIFETIME_S = 60;

/** A token as the realm issued it, with its expiry made absolute. */
export interface TokenInfo {
  readonly token: string;
  /** Epoch milliseconds after which the token is no good. */
  readonly expiresAt: number;
  /** The OAuth2 refresh token, when the realm sent one (docker login's identity token). */
  readonly refreshToken?: string;
}

/**
 * Reads a token response (https://distribution.github.io/distribution/spec/auth/token/#token-response-fields,
 * RFC 6749 §5.1): `access_token` preferred over `token` (servers send
 * one or both), `expires_in` defaulting to and floored at 60 s, `issued_at` ignored when missing,
 * unreadable or in the future (a server clock ahead of ours must not shorten the life).
 */
export function parseTokenResponse(
  body: unknown,
  realmHost: string,
  now: number,
  /** The answer the body came in (status, redacted request), kept on the errors. */
  answer: Pick<RegauthErrorOptions, 'status' | 'request'> = {},
): TokenInfo {
  const bad = (why: string) =>
    new RegauthError(
      'ERR_TOKEN_RESPONSE',
      `the token server at ${realmHost} sent a token response ${why}`,
      answer,
    );
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw bad('that is not a JSON object');
  const {
    token,
    access_token: accessToken,
    expires_in: expiresIn,
    issued_at: issuedAt,
    refresh_token: refresh,
  } = body as Record<string, unknown>;
  const value = typeof accessToken === 'string' && accessToken !== '' ? accessToken : token;
  if (typeof value !== 'string' || value === '') throw bad('without "token" or "access_token"');
  // A token goes into an Authorization header: printable ASCII only, no header injection.
  if (!/^[!-~]+$/.test(value)) throw bad('whose token holds white space, control or non-ASCII characters');
  const lifetime =
    typeof expiresIn === 'number' && Number.isFinite(expiresIn)
      ? Math.max(MIN_TOKEN_LIFETIME_S, expiresIn)
      : MIN_TOKEN_LIFETIME_S;
  let start = now;
  if (typeof issuedAt === 'string') {
    const t = Date.parse(issuedAt);
    // A server clock behind ours would make a fresh token look old: only trust a recent past.
    if (!Number.isNaN(t) && t <= now && now - t < lifetime * 1000) start = t;
  }
  const info: TokenInfo = { token: value, expiresAt: start + lifetime * 1000 };
  return typeof refresh === 'string' && refresh !== '' ? { ...info, refreshToken: refresh } : info;
}
