import type { ResourceScope } from '../scope/parse-scope.js';

/**
 * Who a token is for, as an authenticator established it. The ACL matches on both parts, as
 * docker_auth's `api.Labels` (cesanta/docker_auth auth_server/api/authn.go).
 */
export interface Identity {
  /** The account: the token's `sub` claim and the ACL's `account`. */
  readonly name: string;
  /**
   * Facts about the account an ACL rule can match (`labels: { group: 'ci-*' }`): LDAP groups,
   * OIDC claims, what an external program printed. Left empty by htpasswd.
   */
  readonly labels: Readonly<Record<string, readonly string[]>>;
}

/** A user name and password to check, and where the request came from. */
export interface PasswordCheckRequest {
  readonly user: string;
  readonly password: string;
  /** The client's address (the socket peer, or what a trusted proxy forwarded). */
  readonly address: string;
}

/**
 * An authenticator's verdict. `unknown` hands the user to the next authenticator of the `authn:`
 * list; the first that knows the user decides (docker_auth tries its authenticators in order the
 * same way, auth_server/server/server.go authenticateUser).
 */
export type Authentication =
  | {
      readonly outcome: 'accepted';
      readonly identity: Identity;
      /**
       * A short fingerprint of the credential as the backend holds it (a hash of the htpasswd
       * entry): refresh tokens carry it, so changing the password revokes them. Left out: refresh
       * tokens of this identity are checked only by their signature and expiry.
       */
      readonly fingerprint?: string;
      /**
       * When the credential itself stops being valid, in ms since the epoch: a CI job's OIDC token
       * lives minutes. A refresh token for this login must not outlive it, or a 5-minute CI token
       * would become a 90-day credential through `docker login`'s offline token.
       */
      readonly expiresAt?: number;
    }
  /** The backend knows the user and the password is wrong. */
  | { readonly outcome: 'refused' }
  /** The backend does not know the user: the next authenticator is asked. */
  | { readonly outcome: 'unknown' };

/** How the list runs an authenticator (see authenticateInOrder). */
export interface AuthenticateOptions {
  /**
   * Whether no authenticator comes after this one. A backend that answers `unknown` quickly for
   * names it does not hold (htpasswd) must then spend what a wrong password costs, or the answer
   * time tells who exists. Left out: treat it as last.
   */
  readonly last?: boolean;
}

/** One way of checking passwords: an htpasswd file, LDAP, an OIDC issuer's tokens, a program. */
export interface Authenticator {
  /** What it is, for logs and metrics: `htpasswd`, `ldap`, `oidc`, `ext_auth`. */
  readonly kind: string;
  /**
   * True when its credentials are signed tokens nobody can guess (OIDC): a refusal is then no
   * guess, and a per-user back-off would only let anyone lock out every CI job that logs in with
   * the same user name (`github-actions`). The per-address budget still applies.
   */
  readonly unguessable?: boolean;
  /**
   * Checks one user name and password. Throwing means the backend failed (down, timed out): the
   * login is answered 503 and no later authenticator is asked in its place.
   */
  authenticate(request: PasswordCheckRequest, options?: AuthenticateOptions): Promise<Authentication>;
  /**
   * Whether `user` is an account this backend holds, answered without any I/O. Log lines name
   * such users; anyone else by a keyed hash (a failed login's name is often a password typed
   * into the wrong field). Left out: only accepted logins are named.
   */
  knows?(user: string): boolean;
  /**
   * The current fingerprint of `user`'s credential (see Authentication's `fingerprint`), without
   * any I/O: cached logins and refresh tokens carrying another one are no longer honoured.
   */
  fingerprint?(user: string): string | undefined;
  /**
   * Names this backend for refresh tokens: one records the `id` of the backend that accepted
   * the login, and the refresh grant asks that backend again (`lookup`). The same for the same
   * settings across restarts; a backend whose settings change (another directory) gets another
   * id, and refresh tokens naming the old one are refused. Left out: `lookup` is never called.
   */
  readonly id?: string;
  /**
   * Re-reads the account `name` (the name of an Identity this backend accepted) without a
   * password, for a refresh token: its identity as the backend holds it now, with its current
   * labels; undefined when the backend no longer holds it (deleted). Throwing means the backend
   * failed (down, timed out): the refresh is answered 503, never granted on stale labels.
   * Left out: refresh tokens of this backend live by their signature, expiry and fingerprint.
   */
  lookup?(name: string): Promise<Identity | undefined>;
  /** Releases connections and timers; called on shutdown and when a reload replaces it. */
  close?(): Promise<void>;
}

/** What the request for a token asked about, besides who and which scopes. */
export interface AuthorizationContext {
  /** The service the token is for (the registry's `auth.token.service`). */
  readonly service: string;
  /** The client's address, as for PasswordCheckRequest. */
  readonly address: string;
}

/**
 * Decides what an identity gets of what it asked for: the granted scopes, never more actions
 * than were asked (distribution docs/spec/auth/token.md). `identity` is undefined for an
 * anonymous request.
 */
export interface Authorizer {
  /** The granted scopes: a subset of `requested`, resources with nothing granted left out. */
  authorize(
    identity: Identity | undefined,
    requested: readonly ResourceScope[],
    context: AuthorizationContext,
  ): Promise<ResourceScope[]>;
  /** Releases connections and timers; called on shutdown and when a reload replaces it. */
  close?(): Promise<void>;
}
