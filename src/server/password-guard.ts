import { authenticateInOrder, type DecidedAuthentication } from './authenticate-in-order.js';
import type { Authenticator, Identity } from './authenticator.js';
import { addressKey } from './client-address.js';
import { KeyedDigest } from './keyed-digest.js';
import { type LoginCounters, type LoginWaits, MemoryLoginCounters } from './login-counters.js';
import { PasswordCheckQueue, type PasswordCheckQueueStats } from './password-check-queue.js';
import { RecentLogins } from './recent-logins.js';
import { VerifiedCache } from './verified-cache.js';

/**
 * Entries per table (user back-off, address budget, recent logins). Keys are 22-character
 * digests or address keys and values a few numbers, roughly 200 bytes an entry with the Map's
 * own overhead: 20 MB per table at worst, however many distinct names a flood sends.
 */
export const MAX_TRACKED_ENTRIES = 100_000;

export interface PasswordGuardOptions {
  /**
   * The `authn:` list, tried in order (authenticateInOrder). A function: called per request, so
   * a reload that replaces the list takes effect at the next one.
   */
  readonly authenticators: () => readonly Authenticator[];
  /** Seconds a verified login is remembered (0: never). */
  readonly cacheSeconds: number;
  /** Failed logins of one user before back-off starts (0: no back-off). */
  readonly loginFailures: number;
  /** Quiet seconds after which a user's failure count, and an address's budget, start over. */
  readonly loginWindow: number;
  readonly backoffMaxSeconds: number;
  /** Failures per client address across user names within loginWindow (0: no budget). */
  readonly addressFailures: number;
  readonly passwordChecks: number;
  readonly passwordQueue: number;
  readonly checksPerAddress: number;
  /** Left out: MAX_TRACKED_ENTRIES. */
  readonly maxTrackedEntries?: number;
  /**
   * Left out: a key made at start-up. Tests pass one to get stable labels; replicas that share
   * counters pass one derived from what they share, so a name has one key on all of them.
   */
  readonly digest?: KeyedDigest;
  /**
   * Where failed logins are counted. Left out: in this process (MemoryLoginCounters) with the
   * limits above; RedisLoginCounters shares them between replicas.
   */
  readonly counters?: LoginCounters;
  readonly now?: () => number;
  /**
   * An account's revocation epoch in ms (RevocationStore.revokedBefore): a login verified
   * before it is not taken from the cache, the password is checked again. Left out: none.
   */
  readonly revokedBefore?: (account: string) => number | undefined;
  /** Called when a revocation sent a cached login back to its authenticator. */
  readonly onRevokedLogin?: () => void;
}

/** The numbers of PasswordGuardOptions that a config reload may change (PasswordGuard.setLimits). */
export type PasswordGuardLimits = Pick<
  PasswordGuardOptions,
  | 'cacheSeconds'
  | 'loginFailures'
  | 'loginWindow'
  | 'backoffMaxSeconds'
  | 'addressFailures'
  | 'passwordChecks'
  | 'passwordQueue'
  | 'checksPerAddress'
>;

export type GuardResult =
  | {
      readonly ok: true;
      readonly identity: Identity;
      /** The credential's fingerprint, for refresh tokens; left out when the backend keeps none. */
      readonly fingerprint?: string;
      /** When the credential expires (Authentication's `expiresAt`): nothing issued may outlive it. */
      readonly expiresAt?: number;
      /** The kind of authenticator that accepted. */
      readonly by: string;
      /** The `id` of the authenticator that accepted, when it has one: refresh tokens record it. */
      readonly authenticatorId?: string;
    }
  | { readonly ok: false; readonly reason: 'invalid' }
  /**
   * An authenticator failed (a program crashed or timed out, a directory is down): 503. Not
   * counted as a failed login; `error` is for the log and never holds the password.
   */
  | {
      readonly ok: false;
      readonly reason: 'unavailable';
      readonly retryAfter: number;
      readonly error: string;
    }
  /**
   * `backoff`: this user failed too often lately (429); `address`: this address failed too often,
   * or has too many checks in flight (429); `busy`: too many checks in flight overall (503).
   */
  | { readonly ok: false; readonly reason: 'backoff' | 'address' | 'busy'; readonly retryAfter: number };

export interface PasswordGuardStats {
  readonly backoffUsers: number;
  readonly addressBudgets: number;
  readonly recentLogins: number;
  readonly verifiedLogins: number;
  readonly checks: PasswordCheckQueueStats;
}

/** What a refused check tells the client to wait, in seconds: one check's time, give or take. */
const BUSY_RETRY_AFTER_S = 1;
/** What a client is told to wait when a backend failed: long enough for a restart of it. */
const UNAVAILABLE_RETRY_AFTER_S = 5;

/** What the check of one (user, password) pair came to; shared by identical requests in flight. */
type CheckOutcome = DecidedAuthentication | { readonly outcome: 'error'; readonly error: string };

/** A verified login as the cache keeps it: what the next request with the same pair gets. */
interface Verified {
  readonly identity: Identity;
  readonly fingerprint?: string;
  readonly expiresAt?: number;
  readonly by: string;
  readonly authenticatorId?: string;
  /** When the check that verified it began (ms): a revocation from after that time voids it. */
  readonly verifiedAt: number;
}

/**
 * Everything between a user name and password and a verdict on them, in the order that keeps
 * bcrypt work bounded and a user's own logins working while strangers guess:
 *
 * 1. an address that spent its failure budget gets 429 and nothing else — not even a look at
 *    the login cache, which would otherwise answer guesses at HMAC speed;
 * 2. a pair verified within `cacheSeconds` is accepted, even during a back-off others caused,
 *    unless its account was revoked since (then the password is checked again);
 * 3. a user in back-off gets 429, unless this address logged that user in lately;
 * 4. the bcrypt check runs in a bounded queue (503/429 when full), one check for identical
 *    concurrent pairs; it is charged as a failure against the user and the address before it
 *    starts (LoginCounters.attempt: concurrent guesses each see the others) and given back
 *    when it succeeds or cannot run.
 *
 * Unknown names go through every step exactly like real users: their answers and their
 * back-offs must not tell who exists.
 */
export class PasswordGuard {
  #options: PasswordGuardOptions;
  readonly #digest: KeyedDigest;
  readonly #verified: VerifiedCache<Verified>;
  readonly #counters: LoginCounters;
  readonly #recent: RecentLogins;
  readonly #queue: PasswordCheckQueue;
  readonly #inFlight = new Map<string, Promise<CheckOutcome>>();
  readonly #now: () => number;
  /**
   * Counts forgetVerified calls: a check that began before one (against the users or the
   * `authn:` list of then) neither fills the cleared cache nor answers a request that came after.
   */
  #epoch = 0;

  constructor(options: PasswordGuardOptions) {
    this.#options = options;
    const now = options.now ?? Date.now;
    this.#now = now;
    const maxEntries = options.maxTrackedEntries ?? MAX_TRACKED_ENTRIES;
    this.#digest = options.digest ?? new KeyedDigest();
    this.#verified = new VerifiedCache<Verified>(options.cacheSeconds, now);
    this.#counters =
      options.counters ??
      new MemoryLoginCounters({
        loginFailures: options.loginFailures,
        loginWindow: options.loginWindow,
        backoffMaxSeconds: options.backoffMaxSeconds,
        addressFailures: options.addressFailures,
        maxEntries,
        now,
      });
    this.#recent = new RecentLogins(maxEntries, now);
    this.#queue = new PasswordCheckQueue({
      concurrency: options.passwordChecks,
      maxWaiting: options.passwordQueue,
      perAddress: options.checksPerAddress,
    });
  }

  /**
   * How a log line names this user: the name when an authenticator holds it, else a keyed hash.
   */
  accountLabel(username: string, authenticators = this.#options.authenticators()): string {
    return authenticators.some((a) => a.knows?.(username) === true) ? username : this.#digest.label(username);
  }

  /**
   * The current fingerprint of `user`'s credential: from the first authenticator that holds the
   * user and keeps fingerprints; undefined when none does.
   */
  fingerprint(user: string, authenticators = this.#options.authenticators()): string | undefined {
    for (const authenticator of authenticators) {
      const fp = authenticator.fingerprint?.(user);
      if (fp !== undefined) return fp;
    }
    return undefined;
  }

  /**
   * `authenticators`: the list this request uses from start to end (a config reload hands each
   * request the list of its generation). Left out: the `authenticators` option's list now.
   */
  async authenticate(
    username: string,
    password: string,
    address: string,
    authenticators = this.#options.authenticators(),
  ): Promise<GuardResult> {
    const holder = authenticators.find((a) => a.knows?.(username) === true);
    // A name the first authenticator holding it takes only unguessable credentials for (OIDC with
    // its `user` set): a wrong one is then no guess at a password, and a per-user back-off would
    // let anyone lock out every CI job logging in under that shared name.
    const unguessable = holder?.unguessable === true;
    const userKey = holder === undefined ? this.#digest.key(username) : this.#digest.userKey(username);
    const addrKey = addressKey(address);

    // Both waits in one read (one round trip to a shared store), before the cache is looked at;
    // in-process counters answer at once, without a turn of the event loop.
    const read = this.#counters.waits(unguessable ? undefined : userKey, addrKey);
    const waits: LoginWaits = read instanceof Promise ? await read : read;
    const spent = waits.address;
    if (spent > 0) return { ok: false, reason: 'address', retryAfter: spent };

    const mac = this.#verified.mac(userKey, password);
    const cached = this.#verified.lookup(userKey, mac);
    // A cached login whose credential changed since (a new htpasswd entry) is checked again.
    if (
      cached !== undefined &&
      (cached.fingerprint === undefined ||
        this.fingerprint(username, authenticators) === cached.fingerprint) &&
      (cached.expiresAt === undefined || cached.expiresAt > this.#now()) &&
      !this.#revokedSince(cached)
    ) {
      const { verifiedAt: _, ...verified } = cached;
      return { ok: true, ...verified };
    }

    const backoff = waits.user;
    if (backoff > 0 && !this.#recent.knows(userKey, addrKey)) {
      // A refused guess still spends the address's budget, or a back-off would be free to probe.
      const charged = this.#counters.recordFailure(undefined, addrKey, waits.local);
      if (charged instanceof Promise) await charged;
      return { ok: false, reason: 'backoff', retryAfter: backoff };
    }

    const epoch = this.#epoch;
    const flightKey = `${epoch}:${mac}`;
    let pending = this.#inFlight.get(flightKey);
    if (!pending) {
      // The failure is charged before the check, atomically with the look at the waits, and
      // given back when the check succeeds or cannot run: concurrent guesses each count.
      const charged = !unguessable ? userKey : undefined;
      const attempt = this.#counters.attempt(
        charged,
        addrKey,
        this.#recent.knows(userKey, addrKey),
        waits.local,
      );
      const turn: LoginWaits = attempt instanceof Promise ? await attempt : attempt;
      if (turn.address > 0) return { ok: false, reason: 'address', retryAfter: turn.address };
      if (turn.user > 0) return { ok: false, reason: 'backoff', retryAfter: turn.user };
      const local = waits.local === true || turn.local === true;
      const refund = async (user: string | undefined, address: string | undefined): Promise<void> => {
        const done = this.#counters.refund(user, address, local);
        if (done instanceof Promise) await done;
      };
      // The same pair may have gone in while this one was charged: it shares that check.
      pending = this.#inFlight.get(flightKey);
      if (pending) await refund(charged, undefined);
      else {
        // After a revocation in this same millisecond, the check counts as made after it.
        const began = Math.max(
          this.#now(),
          this.#options.revokedBefore?.(username) ?? Number.NEGATIVE_INFINITY,
        );
        const admitted = this.#queue.run(
          addrKey,
          this.#recent.knowsAddress(addrKey),
          (): Promise<CheckOutcome> =>
            authenticateInOrder(authenticators, { user: username, password, address }).catch(
              (err: unknown) => ({ outcome: 'error', error: (err as Error)?.message ?? String(err) }),
            ),
        );
        if (admitted.refused !== undefined) {
          await refund(charged, undefined);
          return { ok: false, reason: admitted.refused, retryAfter: BUSY_RETRY_AFTER_S };
        }
        // Counted once per check, however many identical requests wait on it.
        pending = admitted.result.then(async (check) => {
          if (check.outcome === 'accepted') {
            if (epoch === this.#epoch)
              this.#verified.remember(
                userKey,
                mac,
                { ...verifiedOf(check), verifiedAt: began },
                check.expiresAt,
              );
            this.#recent.remember(userKey, addrKey);
            await refund(charged, undefined);
          } else if (check.outcome === 'error') {
            // A backend that failed says nothing about the password: the charge is given back.
            await refund(charged, undefined);
          } else {
            // The address pays for every failure; the user only for guessable ones.
            if (check.unguessable === true && charged !== undefined) await refund(charged, undefined);
            const spent = this.#counters.recordFailure(undefined, addrKey, local);
            if (spent instanceof Promise) await spent;
          }
          return check;
        });
        const settled = pending.finally(() => this.#inFlight.delete(flightKey));
        settled.catch(() => {});
        this.#inFlight.set(flightKey, pending);
      }
    }
    const check = await pending;
    if (check.outcome === 'accepted') {
      // Accepted within the backend's leeway, yet already expired: nothing may be issued for it.
      if (check.expiresAt !== undefined && check.expiresAt <= this.#now())
        return { ok: false, reason: 'invalid' };
      return { ok: true, ...verifiedOf(check) };
    }
    if (check.outcome === 'error') {
      return { ok: false, reason: 'unavailable', retryAfter: UNAVAILABLE_RETRY_AFTER_S, error: check.error };
    }
    return { ok: false, reason: 'invalid' };
  }

  /** Whether the account of a cached login was revoked after the login was verified. */
  #revokedSince(cached: Verified): boolean {
    const epoch = this.#options.revokedBefore?.(cached.identity.name);
    if (epoch === undefined || cached.verifiedAt >= epoch) return false;
    this.#options.onRevokedLogin?.();
    return true;
  }

  stats(): PasswordGuardStats {
    return {
      ...this.#counters.sizes(),
      recentLogins: this.#recent.size,
      verifiedLogins: this.#verified.size,
      checks: this.#queue.stats(),
    };
  }

  /** Drops expired entries from every table; the server calls this on a timer. */
  sweep(): void {
    this.#verified.sweep();
    this.#counters.sweep();
    this.#recent.sweep();
  }

  /** The users changed (a reload): cached logins may name old passwords or removed users. */
  forgetVerified(): void {
    this.#epoch++;
    this.#verified.clear();
  }

  /**
   * New limits from a config reload, applied to the tables as they are: failure counts, back-offs
   * and spent budgets stay (a reload must not lift a lock-out) and are judged by the new numbers
   * from the next request on; checks already admitted run to their end.
   */
  setLimits(limits: PasswordGuardLimits): void {
    this.#options = { ...this.#options, ...limits };
    this.#verified.setTtl(limits.cacheSeconds);
    this.#counters.setLimits(limits);
    this.#queue.setLimits({
      concurrency: limits.passwordChecks,
      maxWaiting: limits.passwordQueue,
      perAddress: limits.checksPerAddress,
    });
  }
}

function verifiedOf(
  check: DecidedAuthentication & { readonly outcome: 'accepted' },
): Omit<Verified, 'verifiedAt'> {
  return {
    identity: check.identity,
    ...(check.fingerprint === undefined ? {} : { fingerprint: check.fingerprint }),
    ...(check.expiresAt === undefined ? {} : { expiresAt: check.expiresAt }),
    by: check.by ?? 'unknown',
    ...(check.authenticatorId === undefined ? {} : { authenticatorId: check.authenticatorId }),
  };
}
