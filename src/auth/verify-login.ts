import { RegauthError } from '../errors/regauth-error.js';
import type { Send } from '../transport/http-types.js';
import type { FoundCredential } from './credentials/credential.js';
import { fetchToken } from './fetch-token.js';
import { parseChallenges, resolveRealm } from './parse-challenge.js';

export interface LoginResult {
  /** `bearer`, `basic`, or `none` when the registry asked for no credentials at all. */
  readonly scheme: 'bearer' | 'basic' | 'none';
  /** A refresh token the realm issued (docker stores it as `identitytoken`). */
  readonly identityToken?: string;
}

/**
 * Checks credentials the way `docker login` does (PROTOCOL.md §4): ping `/v2/`; for a Bearer
 * challenge ask the realm for a token with `offline_token=true` and no scope, then the ping
 * must succeed with that token; for Basic the ping must succeed with the credentials.
 */
export async function verifyLogin(options: {
  readonly send: Send;
  readonly baseUrl: URL;
  readonly found: FoundCredential;
  readonly clientId?: string;
}): Promise<LoginResult> {
  const { send, found } = options;
  const ping = new URL('/v2/', options.baseUrl);
  const host = ping.host;
  const first = await send({ method: 'GET', url: ping });
  await first.dump();
  if (first.status === 200) return { scheme: 'none' };
  if (first.status !== 401) {
    throw new RegauthError(
      'ERR_REGISTRY',
      `${host} answered ${first.status} to GET /v2/; is it a registry?`,
      {
        status: first.status,
      },
    );
  }
  const challenges = parseChallenges(first.headerValues('www-authenticate'));
  const bearer = challenges.find((c) => c.scheme === 'bearer');
  const { username, password } = found.credential;
  if (bearer) {
    const realm = resolveRealm(bearer, ping);
    if (!realm)
      throw new RegauthError('ERR_INVALID_CHALLENGE', `${host} sent a Bearer challenge without a realm`);
    const token = await fetchToken({
      send,
      realm,
      scopes: [],
      found,
      offline: true,
      ...(bearer.params.service === undefined ? {} : { service: bearer.params.service }),
      ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
    });
    const check = await send({
      method: 'GET',
      url: ping,
      headers: { authorization: `Bearer ${token.token}` },
    });
    await check.dump();
    if (check.status !== 200) {
      throw new RegauthError(
        'ERR_UNAUTHORIZED',
        `the token server at ${realm.host} accepted the credentials but ${host} refused its token (${check.status}); ` +
          "the registry's auth.token settings (issuer, service, rootcertbundle) may not match the token server",
        { status: check.status },
      );
    }
    return token.refreshToken === undefined
      ? { scheme: 'bearer' }
      : { scheme: 'bearer', identityToken: token.refreshToken };
  }
  if (challenges.some((c) => c.scheme === 'basic')) {
    if (username === undefined || password === undefined) {
      throw new RegauthError(
        'ERR_USAGE',
        `${host} uses Basic authentication: log in with a user name and password`,
      );
    }
    const check = await send({
      method: 'GET',
      url: ping,
      headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` },
    });
    await check.dump();
    if (check.status !== 200) {
      throw new RegauthError(
        'ERR_UNAUTHORIZED',
        `${host} refused the credentials for ${username} (${check.status})`,
        {
          status: check.status,
        },
      );
    }
    return { scheme: 'basic' };
  }
  throw new RegauthError(
    'ERR_UNSUPPORTED',
    `${host} asks for ${challenges.map((c) => c.scheme).join(', ') || 'an unnamed'} authentication, which regauth does not speak`,
  );
}
