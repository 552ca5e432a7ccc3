import { ExpiringTable } from './expiring-table.js';

/**
 * How long a successful login vouches for its address. Entries come only from correct
 * passwords, so a long memory helps no attacker; a week covers weekly jobs and a holiday.
 */
export const RECENT_LOGIN_TTL_S = 7 * 24 * 3600;

/**
 * Which addresses logged which users in lately. A user's back-off, which strangers can cause,
 * does not apply at an address that user logged in from (the "known device" idea of OWASP's
 * Authentication Cheat Sheet, with the address as the device); and addresses with any recent
 * login keep a lane in the password-check queue when strangers fill it. Neither tells a client
 * anything about other users: only a correct password puts an entry here.
 */
export class RecentLogins {
  readonly #entries: ExpiringTable<true>;
  readonly #now: () => number;

  constructor(maxEntries: number, now: () => number = Date.now) {
    this.#entries = new ExpiringTable(maxEntries, now);
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  remember(userKey: string, addressKey: string): void {
    const expires = this.#now() + RECENT_LOGIN_TTL_S * 1000;
    this.#entries.set(`${userKey} ${addressKey}`, true, expires);
    this.#entries.set(` ${addressKey}`, true, expires);
  }

  /** Did this user log in from this address lately? */
  knows(userKey: string, addressKey: string): boolean {
    return this.#entries.get(`${userKey} ${addressKey}`) === true;
  }

  /** Did anyone log in from this address lately? */
  knowsAddress(addressKey: string): boolean {
    return this.#entries.get(` ${addressKey}`) === true;
  }

  sweep(): void {
    this.#entries.sweep();
  }
}
