import type { TokenInfo } from './token-response.js';

/**
 * Renew this long before expiry, so a request never leaves with a token about to lapse: a
 * sixth of the shortest lifetime (60 s), long enough for one chunk of an upload to go out.
 */
export const DEFAULT_TOKEN_CACHE_MARGIN_S = 10;

/** Somewhere tokens outlive the process: the CLI's file in the user's cache directory. */
export interface TokenStore {
  loadToken(key: string): TokenInfo | undefined;
  saveToken(key: string, registry: string, token: TokenInfo): void;
}

export interface TokenCacheOptions {
  /** Left out: tokens live in memory only. */
  readonly store?: TokenStore;
  readonly now?: () => number;
  /** Left out: DEFAULT_TOKEN_CACHE_MARGIN_S. */
  readonly marginSeconds?: number;
}

/**
 * Tokens keyed by realm, service, identity and scopes. One fetch in flight per key however many
 * requests wait for it (PROTOCOL.md §7: parallel blob requests must share one token request).
 */
export class TokenCache {
  readonly #memory = new Map<string, TokenInfo>();
  readonly #inFlight = new Map<string, Promise<TokenInfo>>();
  readonly #store: TokenStore | undefined;
  readonly #now: () => number;
  readonly #marginMs: number;

  constructor(options: TokenCacheOptions = {}) {
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
    this.#marginMs = (options.marginSeconds ?? DEFAULT_TOKEN_CACHE_MARGIN_S) * 1000;
  }

  static key(parts: { realm: string; service: string; identity: string; scopes: readonly string[] }): string {
    return JSON.stringify([parts.realm, parts.service, parts.identity, [...parts.scopes].sort()]);
  }

  #fresh(token: TokenInfo | undefined): token is TokenInfo {
    if (!token) return false;
    return token.expiresAt - this.#now() > this.#marginMs;
  }

  /** A fresh cached token, or the result of `fetch` (shared by concurrent callers of the same key). */
  async get(
    key: string,
    registry: string,
    fetch: () => Promise<TokenInfo>,
    force = false,
  ): Promise<TokenInfo> {
    if (!force) {
      const hit = this.#memory.get(key);
      if (this.#fresh(hit)) return hit;
      const stored = this.#store?.loadToken(key);
      if (this.#fresh(stored)) {
        this.#memory.set(key, stored);
        return stored;
      }
    }
    const pending = this.#inFlight.get(key);
    if (pending) return pending;
    const promise = fetch().then((token) => {
      this.#memory.set(key, token);
      this.#store?.saveToken(key, registry, token);
      return token;
    });
    this.#inFlight.set(key, promise);
    try {
      return await promise;
    } finally {
      this.#inFlight.delete(key);
    }
  }

  /** Drop a token the registry refused, so the next request fetches a new one. */
  invalidate(key: string): void {
    this.#memory.delete(key);
  }
}
