import { createHmac, randomBytes } from 'node:crypto';

/**
 * Remembers for a short time that a user name and password were verified, so the burst of
 * parallel token requests a client makes (one per scope, PROTOCOL.md §6) costs one bcrypt, not
 * one each. It keeps an HMAC of the pair under a key made at start-up, never the password.
 */
export class VerifiedCache {
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, { mac: string; expires: number; fingerprint: string }>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(ttlSeconds: number, now: () => number = Date.now, maxEntries = 10_000) {
    this.#ttlMs = ttlSeconds * 1000;
    this.#now = now;
    this.#maxEntries = maxEntries;
  }

  #mac(user: string, password: string): string {
    return createHmac('sha256', this.#key).update(user).update('\u0000').update(password).digest('base64');
  }

  /** The stored hash's fingerprint when this pair was verified within the TTL. */
  lookup(user: string, password: string): string | undefined {
    if (this.#ttlMs <= 0) return undefined;
    const entry = this.#entries.get(user);
    if (!entry) return undefined;
    if (entry.expires <= this.#now()) {
      this.#entries.delete(user);
      return undefined;
    }
    // Both sides are fixed-length HMACs of secret input: comparing them leaks nothing useful.
    return entry.mac === this.#mac(user, password) ? entry.fingerprint : undefined;
  }

  remember(user: string, password: string, fingerprint: string): void {
    if (this.#ttlMs <= 0) return;
    if (this.#entries.size >= this.#maxEntries && !this.#entries.has(user)) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(user, {
      mac: this.#mac(user, password),
      expires: this.#now() + this.#ttlMs,
      fingerprint,
    });
  }

  /** Forget everything: the user file changed. */
  clear(): void {
    this.#entries.clear();
  }
}
