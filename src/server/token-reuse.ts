import type { ResourceScope } from '../scope/parse-scope.js';
import type { IssuedToken } from './token-issuer.js';

/**
 * Hands out the same access token again, for a few seconds, to the same subject asking for the
 * same grant. Clients send bursts of identical token requests (one per parallel layer, one per CI
 * job sharing a robot account); a signature costs more than the rest of a request together. The
 * answer keeps the token's own `issued_at` and `expires_in`, so clients compute its true expiry.
 */
export class TokenReuse {
  readonly #entries = new Map<string, { token: IssuedToken; until: number }>();
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #maxEntries: number;

  constructor(seconds: number, now: () => number = Date.now, maxEntries = 10_000) {
    this.#ttlMs = seconds * 1000;
    this.#now = now;
    this.#maxEntries = maxEntries;
  }

  static key(subject: string, audience: string, granted: readonly ResourceScope[]): string {
    return JSON.stringify([subject, audience, granted.map((g) => [g.type, g.name, g.actions])]);
  }

  get(key: string): IssuedToken | undefined {
    if (this.#ttlMs <= 0) return undefined;
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.until <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.token;
  }

  remember(key: string, token: IssuedToken): void {
    if (this.#ttlMs <= 0) return;
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    this.#entries.set(key, { token, until: this.#now() + this.#ttlMs });
  }

  clear(): void {
    this.#entries.clear();
  }
}
