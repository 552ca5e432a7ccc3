import { hash } from 'node:crypto';
import type { ResourceScope } from '../scope/parse-scope.js';
import type { IssuedToken } from './token-issuer.js';

/**
 * Bytes of tokens kept for reuse. A token with its x5c header is 1–2 KiB, so this holds a few
 * thousand: far more than the bursts reuse is for, and small next to a server's heap even when
 * an anonymous client asks for a new scope on every request.
 */
export const MAX_REUSE_BYTES = 8 * 1024 * 1024;
/** Entries kept for reuse, whatever their size. */
export const MAX_REUSE_ENTRIES = 10_000;

/**
 * Hands out the same access token again, for a few seconds, to the same subject asking for the
 * same grant. Clients send bursts of identical token requests (one per parallel layer, one per CI
 * job sharing a robot account); a signature costs more than the rest of a request together. The
 * answer keeps the token's own `issued_at` and `expires_in`, so clients compute its true expiry.
 *
 * Keys are SHA-256 digests of subject, audience and grant, so a key is 43 characters whatever the
 * request named; the tokens are counted in bytes, and the oldest go first when either cap is hit.
 */
export class TokenReuse {
  readonly #entries = new Map<string, { token: IssuedToken; until: number }>();
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(
    seconds: number,
    now: () => number = Date.now,
    maxEntries = MAX_REUSE_ENTRIES,
    maxBytes = MAX_REUSE_BYTES,
  ) {
    this.#ttlMs = seconds * 1000;
    this.#now = now;
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
  }

  static key(subject: string, audience: string, granted: readonly ResourceScope[]): string {
    // One-shot crypto.hash: no Hash object per request (bench scenario 8).
    return hash(
      'sha256',
      JSON.stringify([subject, audience, granted.map((g) => [g.type, g.name, g.actions])]),
      'base64url',
    );
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Bytes of token text held. */
  get bytes(): number {
    return this.#bytes;
  }

  get(key: string): IssuedToken | undefined {
    if (this.#ttlMs <= 0) return undefined;
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.until <= this.#now()) {
      this.#drop(key);
      return undefined;
    }
    return entry.token;
  }

  remember(key: string, token: IssuedToken): void {
    if (this.#ttlMs <= 0 || token.token.length > this.#maxBytes) return;
    this.#drop(key);
    while (
      this.#entries.size > 0 &&
      (this.#entries.size >= this.#maxEntries || this.#bytes + token.token.length > this.#maxBytes)
    ) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#drop(oldest.value);
    }
    this.#entries.set(key, { token, until: this.#now() + this.#ttlMs });
    this.#bytes += token.token.length;
  }

  /** Drops the tokens whose reuse time is over. */
  sweep(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) if (entry.until <= now) this.#drop(key);
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.token.token.length;
  }
}
