import { ExpiringTable } from './expiring-table.js';

export interface AddressBudgetOptions {
  /** Failures one address may spend; 0: no budget. */
  readonly failures: number;
  /** Seconds in which a spent budget refills completely. */
  readonly windowSeconds: number;
  readonly maxEntries: number;
  readonly now?: () => number;
}

/**
 * What is left in the bucket of `entry` at `now`, draining at `rate` failures per millisecond
 * from at most `failures`, the budget now: a level charged under a larger budget (before a
 * reload lowered it) counts as a full bucket, not as one that takes many windows to drain.
 */
export function budgetLevel(
  entry: { readonly level: number; readonly at: number },
  rate: number,
  now: number,
  failures: number,
): number {
  return Math.max(0, Math.min(entry.level, failures) - (now - entry.at) * rate);
}

/**
 * Seconds until an address whose bucket holds `level` may fail once more: the budget's maths,
 * shared with the Redis counters (whose Lua script repeats the charge) so every store answers alike.
 */
export function budgetRetryAfter(
  level: number,
  options: Pick<AddressBudgetOptions, 'failures' | 'windowSeconds'>,
): number {
  const rate = options.failures / (options.windowSeconds * 1000);
  const excess = level - (options.failures - 1);
  return excess > 0 ? Math.max(1, Math.ceil(excess / rate / 1000)) : 0;
}

/**
 * A failure budget per client address, across all user names: a leaky bucket that holds
 * `failures` and drains completely in `windowSeconds`. It caps what one address can make the
 * server hash for unknown names, and how often it can probe the login cache during a back-off.
 * An address that has spent its budget waits until one failure has drained.
 *
 * Keys are address keys (client-address.ts): IPv6 clients are counted per /64, since one host
 * usually holds the whole /64 and could otherwise take a fresh address per request.
 */
export class AddressBudget {
  readonly #entries: ExpiringTable<{ level: number; at: number }>;
  #options: AddressBudgetOptions;
  readonly #now: () => number;
  /** Failures drained per millisecond. */
  #rate: number;

  constructor(options: AddressBudgetOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#entries = new ExpiringTable(options.maxEntries, this.#now);
    this.#rate = options.failures / (options.windowSeconds * 1000);
  }

  get size(): number {
    return this.#entries.size;
  }

  #level(addressKey: string, now: number): number {
    const entry = this.#entries.get(addressKey);
    return entry ? budgetLevel(entry, this.#rate, now, this.#options.failures) : 0;
  }

  /** Seconds until the address may fail once more, or 0 when it has budget left. */
  retryAfter(addressKey: string): number {
    if (this.#options.failures <= 0) return 0;
    return budgetRetryAfter(this.#level(addressKey, this.#now()), this.#options);
  }

  /** Spends one failure. */
  charge(addressKey: string): void {
    if (this.#options.failures <= 0) return;
    const now = this.#now();
    const level = Math.min(this.#options.failures, this.#level(addressKey, now) + 1);
    this.#entries.set(addressKey, { level, at: now }, now + Math.ceil(level / this.#rate));
  }

  /** Gives back one failure charged before a check that then succeeded or could not run. */
  refund(addressKey: string): void {
    if (this.#options.failures <= 0) return;
    const now = this.#now();
    const level = Math.max(0, this.#level(addressKey, now) - 1);
    if (level === 0) this.#entries.delete(addressKey);
    else this.#entries.set(addressKey, { level, at: now }, now + Math.ceil(level / this.#rate));
  }

  /**
   * New numbers (a config reload). The spent levels stay and drain at the new rate; a level above
   * a lowered budget counts as the full new budget (budgetLevel).
   */
  setLimits(limits: Pick<AddressBudgetOptions, 'failures' | 'windowSeconds'>): void {
    this.#options = { ...this.#options, ...limits };
    this.#rate = limits.failures / (limits.windowSeconds * 1000);
  }

  sweep(): void {
    this.#entries.sweep();
  }
}
