import { RegauthError } from '../errors/regauth-error.js';
import { sanitizeServerText } from '../errors/sanitize-server-text.js';
import { httpErrorFacts } from '../transport/http-error-facts.js';
import type { Send } from '../transport/http-types.js';
import { basicAuthorization } from './basic-authorization.js';
import { type FoundCredential, IDENTITY_TOKEN_USERNAME } from './credentials/credential.js';
import { parseTokenResponse, type TokenInfo } from './token-response.js';

/** Token and error answers are small JSON documents (a JWT is a few KiB); a bigger one is not a token server. */
export const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;
export const DEFAULT_CLIENT_ID = 'regauth';

/** Where fetchToken asks for a token, for what, and with which credential. */
export interface FetchTokenOptions {
  readonly send: Send;
  readonly realm: URL;
  readonly service?: string;
  readonly scopes: readonly string[];
  readonly found?: FoundCredential;
  /** Ask for a refresh token (docker login's offline_token=true / access_type=offline). */
  readonly offline?: boolean;
  readonly clientId?: string;
  /** The clock the token's expiry is computed with. Left out: Date.now. */
  readonly now?: () => number;
  /** Ends the token request (ERR_ABORTED). */
  readonly signal?: AbortSignal;
}

async function errorMessage(res: Awaited<ReturnType<Send>>): Promise<string> {
  try {
    const body = JSON.parse(await res.text(MAX_TOKEN_RESPONSE_BYTES)) as Record<string, unknown>;
    const first = Array.isArray(body.errors)
      ? (body.errors[0] as Record<string, unknown> | undefined)
      : undefined;
    const text = first?.message ?? body.error_description ?? body.details ?? body.error;
    return typeof text === 'string'
      ? `: ${sanitizeServerText(text.slice(0, 300), { singleLine: true })}`
      : '';
  } catch {
    return '';
  }
}

/**
 * Asks a realm for a token (the seed's step 2). With an identity (refresh) token: the OAuth2
 * POST (https://distribution.github.io/distribution/spec/auth/oauth/). With a user name and
 * password: GET with Basic credentials and `account`, as docker does. Without credentials: an
 * anonymous GET (https://distribution.github.io/distribution/spec/auth/token/).
 */
export async function fetchToken(options: FetchTokenOptions): Promise<TokenInfo> {
  const { send, realm, found } = options;
  const now = options.now ?? Date.now;
  const clientId = options.clientId ?? DEFAULT_CLIENT_ID;
  const credential = found?.credential;
  const who = credential?.username && credential.username !== '<token>' ? ` for ${credential.username}` : '';
  let res: Awaited<ReturnType<Send>> | undefined;
  let method = 'POST';
  if (credential?.identityToken) {
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: credential.identityToken,
      client_id: clientId,
    });
    if (options.service) form.set('service', options.service);
    if (options.scopes.length > 0) form.set('scope', options.scopes.join(' '));
    if (options.offline) form.set('access_type', 'offline');
    res = await send({
      method: 'POST',
      url: realm,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    // A realm without OAuth2 answers the POST 404 or 405 (containerd also sees 400): ask again
    // with GET, the identity token as the Basic password, as registries such as ACR accept.
    if (res.status === 404 || res.status === 405 || res.status === 400) {
      await res.dump();
      res = undefined;
    }
  }
  if (res === undefined) {
    const url = new URL(realm.href);
    if (options.service) url.searchParams.set('service', options.service);
    for (const scope of options.scopes) url.searchParams.append('scope', scope);
    const headers: Record<string, string> = {};
    const username =
      credential?.username ?? (credential?.identityToken ? IDENTITY_TOKEN_USERNAME : undefined);
    const password = credential?.identityToken ?? credential?.password;
    if (username !== undefined && password !== undefined) {
      if (username !== IDENTITY_TOKEN_USERNAME) url.searchParams.set('account', username);
      headers.authorization = basicAuthorization(username, password);
    }
    if (options.offline) {
      url.searchParams.set('offline_token', 'true');
      url.searchParams.set('client_id', clientId);
    }
    method = 'GET';
    res = await send({
      method,
      url,
      headers,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  }
  const answer = httpErrorFacts(res, method);

  if (res.status === 200) {
    const text = await res.text(MAX_TOKEN_RESPONSE_BYTES);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new RegauthError(
        'ERR_TOKEN_RESPONSE',
        `the token server at ${realm.host} answered with something that is not JSON`,
        answer,
      );
    }
    return parseTokenResponse(body, realm.host, now(), answer);
  }
  const detail = await errorMessage(res);
  const from = found ? ` (credentials from ${found.source})` : '';
  if (res.status === 401 || res.status === 403) {
    throw new RegauthError(
      'ERR_UNAUTHORIZED',
      credential
        ? `the token server at ${realm.host} refused the credentials${who}${from}${detail}`
        : `the token server at ${realm.host} requires credentials${detail}`,
      { ...answer, hint: { kind: 'login', reason: credential ? 'refused' : 'missing' } },
    );
  }
  if (res.status === 429) {
    const wait = sanitizeServerText(res.header('retry-after') ?? '', { singleLine: true });
    throw new RegauthError(
      'ERR_TOO_MANY_REQUESTS',
      `the token server at ${realm.host} is refusing requests for now${wait ? `; retry in ${wait} s` : ''}${detail}`,
      answer,
    );
  }
  throw new RegauthError(
    'ERR_TOKEN_RESPONSE',
    `the token server at ${realm.host} answered ${res.status}${detail}`,
    answer,
  );
}
