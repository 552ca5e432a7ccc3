import { ExpiringTable } from './expiring-table.js';

/** The first back-off, in seconds: a typo costs a moment, not a lock-out. */
export const BACKOFF_START_S = 1;

export interface UserBackoffOptions {
  /** Failed logins of one user (from any address) before the back-off starts; 0: never back off. */
  readonly freeFailures: number;
  /** Seconds without a failure, after a back-off ends, before the user's count starts over. */
  readonly quietSeconds: number;
  /** The longest back-off, in seconds. */
  readonly maxSeconds: number;
  readonly maxEntries: number;
  readonly now?: () => number;
}

/**
 * Milliseconds a user waits after its `failures`-th failure: the back-off's maths, shared with
 * the Redis counters (whose Lua script repeats it) so every store answers alike.
 */
export function backoffDelayMs(
  failures: number,
  options: Pick<UserBackoffOptions, 'freeFailures' | 'maxSeconds'>,
): number {
  const over = failures - options.freeFailures;
  if (over <= 0) return 0;
  // 2^30 s is far past any cap: stop doubling before the number grows silly.
  const seconds = BACKOFF_START_S * 2 ** Math.min(over - 1, 30);
  return Math.min(seconds, options.maxSeconds) * 1000;
}

/** Seconds until a user whose last failure (of `failures`) was at `last` may be checked again. */
export function backoffRetryAfter(
  entry: { readonly failures: number; readonly last: number },
  options: Pick<UserBackoffOptions, 'freeFailures' | 'maxSeconds'>,
  now: number,
): number {
  const until = entry.last + backoffDelayMs(entry.failures, options);
  return until > now ? Math.ceil((until - now) / 1000) : 0;
}

/**
 * Per-user exponential back-off that does not care where the failures came from: rotating
 * source addresses gains an attacker nothing. After `freeFailures` failures each further one
 * makes the user wait BACKOFF_START_S, then twice that, up to `maxSeconds`: a guesser gets about
 * one try per `maxSeconds` per user. A back-off is a delay, not a lock held until someone stops:
 * it never outlasts `maxSeconds` after the last failure, and the password guard lets the user's
 * own recent logins through it (OWASP Authentication Cheat Sheet, "Account Lockout").
 *
 * Keyed by KeyedDigest keys; unknown names get entries exactly like real users, or a 429 would
 * tell who exists.
 */
export class UserBackoff {
  readonly #entries: ExpiringTable<{ failures: number; last: number }>;
  #options: UserBackoffOptions;
  readonly #now: () => number;

  constructor(options: UserBackoffOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#entries = new ExpiringTable(options.maxEntries, this.#now);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Seconds until the user may be checked again, or 0 when there is no back-off. */
  retryAfter(userKey: string): number {
    if (this.#options.freeFailures <= 0) return 0;
    const entry = this.#entries.get(userKey);
    if (!entry) return 0;
    return backoffRetryAfter(entry, this.#options, this.#now());
  }

  recordFailure(userKey: string): void {
    if (this.#options.freeFailures <= 0) return;
    const now = this.#now();
    const failures = (this.#entries.get(userKey)?.failures ?? 0) + 1;
    const expires = now + backoffDelayMs(failures, this.#options) + this.#options.quietSeconds * 1000;
    this.#entries.set(userKey, { failures, last: now }, expires);
  }

  /**
   * Takes back one failure charged before a check that then succeeded or could not run: the
   * count drops, the time of the last failure stays.
   */
  refund(userKey: string): void {
    const entry = this.#entries.get(userKey);
    if (!entry) return;
    const failures = entry.failures - 1;
    if (failures <= 0) {
      this.#entries.delete(userKey);
      return;
    }
    const expires = entry.last + backoffDelayMs(failures, this.#options) + this.#options.quietSeconds * 1000;
    this.#entries.set(userKey, { failures, last: entry.last }, expires);
  }

  /** New numbers (a config reload); the failures counted so far stay. */
  setLimits(limits: Pick<UserBackoffOptions, 'freeFailures' | 'quietSeconds' | 'maxSeconds'>): void {
    this.#options = { ...this.#options, ...limits };
  }

  sweep(): void {
    this.#entries.sweep();
  }
}
