import { RegauthError } from '../errors/regauth-error.js';
import { isLoopbackHostname } from '../transport/is-loopback-hostname.js';
import { isPrivateHostname } from '../transport/is-private-hostname.js';
import { type Challenge, resolveRealm } from './parse-challenge.js';

/**
 * The realm of a Bearer challenge, checked before anything is sent there: every route to a token
 * (requests, `token`, `login`, a challenge read back from a cache) passes here, so there is one
 * place that decides where credentials may go. After go-containerregistry's `validateRealmURL`
 * (pkg/v1/remote/transport/bearer.go):
 *
 * - an HTTPS registry's realm is HTTPS: a plain-HTTP realm would put the password on the wire in
 *   clear. Only when both are on this machine's loopback is plain HTTP harmless;
 * - a public registry's realm is never this machine or a private network address: a registry
 *   must not be able to point clients (and their credentials) at 127.0.0.1, the LAN or the cloud
 *   metadata service (169.254.169.254);
 * - a realm carries no user:password of its own.
 */
export function checkRealm(challenge: Challenge, requestUrl: URL): URL {
  const registry = requestUrl.host;
  const realm = resolveRealm(challenge, requestUrl);
  if (!realm) {
    throw new RegauthError('ERR_INVALID_CHALLENGE', `${registry} sent a Bearer challenge without a realm`);
  }
  if (realm.username !== '' || realm.password !== '') {
    throw new RegauthError(
      'ERR_INVALID_CHALLENGE',
      `${registry} sent a Bearer challenge whose realm holds a user name or password; refusing to use it`,
    );
  }
  const bothLoopback = isLoopbackHostname(requestUrl.hostname) && isLoopbackHostname(realm.hostname);
  if (requestUrl.protocol === 'https:' && realm.protocol !== 'https:' && !bothLoopback) {
    throw new RegauthError(
      'ERR_INSECURE_REALM',
      `${registry} sends clients to ${realm.origin} over plain HTTP; refusing to send credentials there`,
    );
  }
  if (!isPrivateHostname(requestUrl.hostname) && isPrivateHostname(realm.hostname)) {
    throw new RegauthError(
      'ERR_INSECURE_REALM',
      `${registry} sends clients to ${realm.origin}, an address on this machine or a private network, ` +
        'which a public registry has no business naming; refusing to send credentials there',
    );
  }
  return realm;
}
