import { randomBytes } from 'node:crypto';
import { ExpiringTable } from './expiring-table.js';
import { HmacSha256 } from './hmac-sha256.js';

/** Entries only come from correct passwords, so this is the number of users logging in at once. */
export const MAX_VERIFIED_ENTRIES = 10_000;

/**
 * Remembers for a short time that a user name and password were verified, so the burst of
 * parallel token requests a client makes (one per scope) costs one bcrypt, not one each. It is
 * keyed by the user's table key (KeyedDigest) and keeps an HMAC of the pair under a key made at
 * start-up, never the password.
 */
export class VerifiedCache<T = string> {
  readonly #hmac = new HmacSha256(randomBytes(32));
  readonly #entries: ExpiringTable<{ mac: string; value: T }>;
  #ttlMs: number;
  readonly #now: () => number;

  constructor(ttlSeconds: number, now: () => number = Date.now, maxEntries = MAX_VERIFIED_ENTRIES) {
    this.#ttlMs = ttlSeconds * 1000;
    this.#now = now;
    this.#entries = new ExpiringTable(maxEntries, now);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The HMAC of a (user key, password) pair: what the cache compares, and a single-flight key. */
  mac(userKey: string, password: string): string {
    return this.#hmac.digest([userKey, '\u0000', password], 'base64');
  }

  /** What was remembered for this pair (the login's identity) when it was verified within the TTL. */
  lookup(userKey: string, mac: string): T | undefined {
    if (this.#ttlMs <= 0) return undefined;
    const entry = this.#entries.get(userKey);
    // Both sides are fixed-length HMACs of secret input: comparing them leaks nothing useful.
    return entry?.mac === mac ? entry.value : undefined;
  }

  /** `until` (ms since the epoch) ends the entry earlier: a credential that expires sooner. */
  remember(userKey: string, mac: string, value: T, until?: number): void {
    if (this.#ttlMs <= 0) return;
    const end = Math.min(this.#now() + this.#ttlMs, until ?? Number.POSITIVE_INFINITY);
    if (end <= this.#now()) return;
    this.#entries.set(userKey, { mac, value }, end);
  }

  /** A new lifetime for entries remembered from now on (a config reload). */
  setTtl(ttlSeconds: number): void {
    this.#ttlMs = ttlSeconds * 1000;
  }

  sweep(): void {
    this.#entries.sweep();
  }

  /** Forget everything: the user file changed. */
  clear(): void {
    this.#entries.clear();
  }
}
