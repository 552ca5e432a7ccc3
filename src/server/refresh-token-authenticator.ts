import type { Identity } from './authenticator.js';
import type { TokenIssuer } from './token-issuer.js';

/** What a refresh token stands for, when it is still honoured. */
export type RefreshAuthentication =
  | { readonly outcome: 'accepted'; readonly identity: Identity; readonly fingerprint?: string }
  /**
   * `account`: the subject of an intact token, for the log; left out for a forged or expired one.
   * `revoked`: intact, but issued before its account's revocation epoch.
   */
  | { readonly outcome: 'refused'; readonly account?: string; readonly revoked?: true };

/** The refresh_token grant's own authenticator (distribution docs/spec/auth/oauth.md). */
export interface RefreshTokenAuthenticator {
  authenticate(token: string): RefreshAuthentication;
}

export interface RefreshTokenAuthenticatorOptions {
  readonly issuer: Pick<TokenIssuer, 'verifyRefreshToken'>;
  /** The service tokens are issued for: a refresh token of another service is refused. */
  readonly service: string;
  /** The current fingerprint of a user's credential (PasswordGuard.fingerprint). */
  readonly fingerprint: (user: string) => string | undefined;
  /** The account's revocation epoch in ms (RevocationStore.revokedBefore). Left out: none. */
  readonly revokedBefore?: (account: string) => number | undefined;
}

/**
 * Honours a refresh token that is intact, unexpired and for this service. One that carries a
 * credential fingerprint is honoured only while the user's credential still has it: a password
 * change or a removed user revokes it. One without (the authenticator that accepted the login
 * keeps no fingerprint: a program, a directory) lives by its signature and expiry, with the
 * labels it was issued with. Either kind is refused when issued before its account's
 * revocation epoch.
 */
export function createRefreshTokenAuthenticator(
  options: RefreshTokenAuthenticatorOptions,
): RefreshTokenAuthenticator {
  return {
    authenticate(token) {
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
      return {
        outcome: 'accepted',
        identity: { name: claims.sub, labels: claims.labels ?? {} },
        ...(claims.fp === undefined ? {} : { fingerprint: claims.fp }),
      };
    },
  };
}
