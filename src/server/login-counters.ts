import { AddressBudget } from './address-budget.js';
import { UserBackoff } from './user-backoff.js';

/** Seconds a login must wait before its password is checked; 0: no wait. */
export interface LoginWaits {
  /** The user's back-off (0 when no user was asked about). */
  readonly user: number;
  /** The address's failure budget. */
  readonly address: number;
  /**
   * True when a shared store was skipped, failed or timed out for this read: the rest of the
   * request records its failure in this process only, so Redis latency costs one request at
   * most one timeout (issue: a probe after a slow password check would wait a second one).
   */
  readonly local?: true;
}

/** The limits the counters apply; PasswordGuardOptions names them alike. */
export interface LoginCounterLimits {
  /** Failed logins of one user before back-off starts (0: no back-off). */
  readonly loginFailures: number;
  /** Quiet seconds after which a user's failure count, and an address's budget, start over. */
  readonly loginWindow: number;
  readonly backoffMaxSeconds: number;
  /** Failures per client address across user names within loginWindow (0: no budget). */
  readonly addressFailures: number;
}

/**
 * The failed-login counters of the password guard: the per-user back-off (UserBackoff) and the
 * per-address failure budget (AddressBudget), kept in this process (MemoryLoginCounters) or in a
 * store the replicas share (RedisLoginCounters). Each call is at most one round trip to the
 * store: a login reads both waits at once before any password check, and a failure is recorded
 * for user and address at once. A store answers synchronously when it can, so the in-process
 * counters add no turn of the event loop.
 *
 * `userKey` and `addressKey` are KeyedDigest keys and address keys (client-address.ts); an
 * undefined `userKey` leaves the user out (a name whose credentials are unguessable).
 */
export interface LoginCounters {
  waits(userKey: string | undefined, addressKey: string): LoginWaits | Promise<LoginWaits>;
  /**
   * Charges one failure to the user before the password check, in the same atomic step that
   * checks the user's and the address's waits (one round trip to a shared store): concurrent
   * guesses each see the others' charges, so a back-off holds against a burst as it does
   * against a sequence. The address is charged only for a failure (recordFailure), after the
   * check: many users behind one address (a NAT, a CI fleet, a proxy) log in at once, and their
   * checks in flight must not spend its budget; the password-check queue already bounds an
   * address's concurrent checks. Refused (a wait above 0): nothing is charged, except the
   * address when the user's back-off refused (a refused guess still spends the address's
   * budget). `ignoreUser`: the user's back-off does not hold for this request (a recent login
   * from this address). A check that then succeeds, or could not run, is given back with `refund`.
   */
  attempt(
    userKey: string | undefined,
    addressKey: string,
    ignoreUser: boolean,
    localOnly?: boolean,
  ): LoginWaits | Promise<LoginWaits>;
  /** Takes back what `attempt` charged: the user's failure (when given) and the address's. */
  refund(
    userKey: string | undefined,
    addressKey: string | undefined,
    localOnly?: boolean,
  ): void | Promise<void>;
  /** `localOnly`: the request's read found the shared store unusable (LoginWaits `local`). */
  recordFailure(userKey: string | undefined, addressKey: string, localOnly?: boolean): void | Promise<void>;
  /** Entries held in this process: users in back-off and address budgets. */
  sizes(): { readonly backoffUsers: number; readonly addressBudgets: number };
  /** Drops expired entries held in this process. */
  sweep(): void;
  /**
   * New limits from a config reload: counts and spent budgets stay, judged by the new numbers
   * from the next call on.
   */
  setLimits(limits: LoginCounterLimits): void;
}

/** The counters of one process: what the guard always kept, and a store's fallback. */
export class MemoryLoginCounters implements LoginCounters {
  readonly #backoff: UserBackoff;
  readonly #budget: AddressBudget;

  constructor(limits: LoginCounterLimits & { readonly maxEntries: number; readonly now?: () => number }) {
    const now = limits.now ?? Date.now;
    this.#backoff = new UserBackoff({
      freeFailures: limits.loginFailures,
      quietSeconds: limits.loginWindow,
      maxSeconds: limits.backoffMaxSeconds,
      maxEntries: limits.maxEntries,
      now,
    });
    this.#budget = new AddressBudget({
      failures: limits.addressFailures,
      windowSeconds: limits.loginWindow,
      maxEntries: limits.maxEntries,
      now,
    });
  }

  waits(userKey: string | undefined, addressKey: string): LoginWaits {
    return {
      user: userKey === undefined ? 0 : this.#backoff.retryAfter(userKey),
      address: this.#budget.retryAfter(addressKey),
    };
  }

  recordFailure(userKey: string | undefined, addressKey: string): void {
    if (userKey !== undefined) this.#backoff.recordFailure(userKey);
    this.#budget.charge(addressKey);
  }

  attempt(userKey: string | undefined, addressKey: string, ignoreUser: boolean): LoginWaits {
    const address = this.#budget.retryAfter(addressKey);
    if (address > 0) return { user: 0, address };
    const user = userKey === undefined || ignoreUser ? 0 : this.#backoff.retryAfter(userKey);
    if (user > 0) {
      this.#budget.charge(addressKey);
      return { user, address: 0 };
    }
    if (userKey !== undefined) this.chargeUser(userKey);
    return { user: 0, address: 0 };
  }

  /** One failure charged to the user alone: what an admitted attempt costs before its check. */
  chargeUser(userKey: string): void {
    this.#backoff.recordFailure(userKey);
  }

  refund(userKey: string | undefined, addressKey: string | undefined): void {
    if (userKey !== undefined) this.#backoff.refund(userKey);
    if (addressKey !== undefined) this.#budget.refund(addressKey);
  }

  sizes(): { backoffUsers: number; addressBudgets: number } {
    return { backoffUsers: this.#backoff.size, addressBudgets: this.#budget.size };
  }

  sweep(): void {
    this.#backoff.sweep();
    this.#budget.sweep();
  }

  setLimits(limits: LoginCounterLimits): void {
    this.#backoff.setLimits({
      freeFailures: limits.loginFailures,
      quietSeconds: limits.loginWindow,
      maxSeconds: limits.backoffMaxSeconds,
    });
    this.#budget.setLimits({ failures: limits.addressFailures, windowSeconds: limits.loginWindow });
  }
}
