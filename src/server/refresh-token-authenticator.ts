import type { Authenticator, Identity } from './authenticator.js';
import type { TokenIssuer } from './token-issuer.js';

/** What a refresh token stands for, when it is still honoured. */
export type RefreshAuthentication =
  | { readonly outcome: 'accepted'; readonly identity: Identity; readonly fingerprint?: string }
  /**
   * `account`: the subject of an intact token, for the log; left out for a forged or expired one.
   * `revoked`: intact, but issued before its account's revocation epoch.
   */
  | {
      readonly outcome: 'refused';
      readonly account?: string;
      readonly reason?: string;
      readonly revoked?: true;
    }
  /** The backend that accepted the login failed to answer (`error` for the log): 503, no grant. */
  | { readonly outcome: 'unavailable'; readonly account: string; readonly error: string };

/** The refresh_token grant's own authenticator (distribution docs/spec/auth/oauth.md). */
export interface RefreshTokenAuthenticator {
  authenticate(token: string): Promise<RefreshAuthentication>;
}

/**
 * Asks the authenticator whose `id` is given for the account now (Authenticator.lookup):
 * `no_backend` when no authenticator of the list has that id and a lookup any more.
 */
export type RefreshLookup = (
  authenticatorId: string,
  name: string,
) => Promise<Identity | undefined | 'no_backend'>;

export interface RefreshTokenAuthenticatorOptions {
  readonly issuer: Pick<TokenIssuer, 'verifyRefreshToken'>;
  /** The service tokens are issued for: a refresh token of another service is refused. */
  readonly service: string;
  /** The current fingerprint of a user's credential (PasswordGuard.fingerprint). */
  readonly fingerprint: (user: string) => string | undefined;
  /** Left out: a token naming an authenticator is refused (nothing can check it again). */
  readonly lookup?: RefreshLookup;
  /** The account's revocation epoch in ms (RevocationStore.revokedBefore). Left out: none. */
  readonly revokedBefore?: (account: string) => number | undefined;
}

/**
 * Honours a refresh token that is intact, unexpired and for this service. One that carries a
 * credential fingerprint is honoured only while the user's credential still has it: a password
 * change or a removed user revokes it. One that names the authenticator that accepted the login
 * (a directory) is honoured only while that authenticator still holds the user, and with the
 * labels it gives now: a user deleted from the directory is refused, one removed from a group
 * loses that group's grants at the next refresh. One with neither (a program that keeps no
 * state, or a token issued before authenticators were named) lives by its signature and
 * expiry, with the labels it was issued with.
 * Every kind is refused when issued before its account's revocation epoch.
 */
export function createRefreshTokenAuthenticator(
  options: RefreshTokenAuthenticatorOptions,
): RefreshTokenAuthenticator {
  return {
    async authenticate(token) {
      const claims = options.issuer.verifyRefreshToken(token);
      if (!claims) return { outcome: 'refused' };
      if (
        claims.service !== options.service ||
        (claims.fp !== undefined && options.fingerprint(claims.sub) !== claims.fp)
      ) {
        return { outcome: 'refused', account: claims.sub };
      }
      const epoch = options.revokedBefore?.(claims.sub);
      if (epoch !== undefined && (claims.issuedAtMs ?? 0) < epoch) {
        return { outcome: 'refused', account: claims.sub, revoked: true };
      }
      const fingerprint = claims.fp === undefined ? {} : { fingerprint: claims.fp };
      if (claims.authn === undefined) {
        return {
          outcome: 'accepted',
          identity: { name: claims.sub, labels: claims.labels ?? {} },
          ...fingerprint,
        };
      }
      if (options.lookup === undefined) {
        return { outcome: 'refused', account: claims.sub, reason: 'its authenticator is gone' };
      }
      let found: Identity | undefined | 'no_backend';
      try {
        found = await options.lookup(claims.authn, claims.sub);
      } catch (err) {
        return { outcome: 'unavailable', account: claims.sub, error: (err as Error)?.message ?? String(err) };
      }
      if (found === 'no_backend') {
        return { outcome: 'refused', account: claims.sub, reason: 'its authenticator is gone' };
      }
      // A lookup that answers for another account (a directory whose names changed) is no answer.
      if (found === undefined || found.name !== claims.sub) {
        return { outcome: 'refused', account: claims.sub, reason: 'the user is gone from its authenticator' };
      }
      return { outcome: 'accepted', identity: found, ...fingerprint };
    },
  };
}

/** The lookup of an authn list: the first authenticator with that id and a lookup answers. */
export function createRefreshLookup(authenticators: () => readonly Authenticator[]): RefreshLookup {
  return async (authenticatorId, name) => {
    const authenticator = authenticators().find((a) => a.id === authenticatorId && a.lookup !== undefined);
    if (authenticator?.lookup === undefined) return 'no_backend';
    return authenticator.lookup(name);
  };
}
