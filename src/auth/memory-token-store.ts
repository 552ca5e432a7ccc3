import { randomBytes } from 'node:crypto';
import {
  type ChallengeStore,
  type LoopbackScheme,
  MAX_LOOPBACK_SCHEMES,
  MAX_SCOPE_NAMES_PER_ORIGIN,
} from './challenge-cache.js';
import type { Challenge } from './parse-challenge.js';
import type { TokenStore } from './token-cache.js';
import type { TokenInfo } from './token-response.js';

/** Options of MemoryTokenStore. */
export interface MemoryTokenStoreOptions {
  /** The clock that decides which tokens have expired. Left out: Date.now. */
  readonly now?: () => number;
}

/**
 * Tokens and challenges in this process's memory, for several clients to share (give the same
 * store, or one TokenCache holding it, to each createRegistryClients). Nothing is written
 * anywhere; expired tokens are dropped as new ones come in. Also a starting point for a store of
 * your own: a Redis or database store implements the same methods, returning promises.
 */
export class MemoryTokenStore implements TokenStore, ChallengeStore {
  readonly #tokens = new Map<string, { readonly registry: string; readonly token: TokenInfo }>();
  readonly #challenges = new Map<string, Challenge>();
  readonly #scopeNames = new Map<string, Map<string, readonly string[]>>();
  readonly #schemes = new Map<string, LoopbackScheme>();
  readonly #salt = randomBytes(16);
  readonly #now: () => number;

  constructor(options: MemoryTokenStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  keySalt(): Uint8Array {
    return this.#salt;
  }

  loadToken(key: string): TokenInfo | undefined {
    const kept = this.#tokens.get(key);
    return kept && kept.token.expiresAt > this.#now() ? kept.token : undefined;
  }

  saveToken(key: string, registry: string, token: TokenInfo): void {
    const now = this.#now();
    for (const [k, kept] of this.#tokens) if (kept.token.expiresAt <= now) this.#tokens.delete(k);
    this.#tokens.set(key, { registry, token: { token: token.token, expiresAt: token.expiresAt } });
  }

  loadChallenge(origin: string): Challenge | undefined {
    return this.#challenges.get(origin);
  }

  saveChallenge(origin: string, challenge: Challenge): void {
    this.#challenges.set(origin, challenge);
  }

  forgetChallenge(origin: string): void {
    this.#challenges.delete(origin);
    this.#scopeNames.delete(origin);
  }

  loadScopeNames(origin: string, requested: string): readonly string[] | undefined {
    return this.#scopeNames.get(origin)?.get(requested);
  }

  saveScopeNames(origin: string, requested: string, named: readonly string[]): void {
    let names = this.#scopeNames.get(origin);
    if (!names) {
      names = new Map();
      this.#scopeNames.set(origin, names);
    }
    names.delete(requested);
    names.set(requested, [...named]);
    if (names.size > MAX_SCOPE_NAMES_PER_ORIGIN) {
      const oldest = names.keys().next().value;
      if (oldest !== undefined) names.delete(oldest);
    }
  }

  loadLoopbackScheme(host: string): LoopbackScheme | undefined {
    return this.#schemes.get(host);
  }

  saveLoopbackScheme(host: string, scheme: LoopbackScheme): void {
    this.#schemes.delete(host);
    this.#schemes.set(host, scheme);
    if (this.#schemes.size > MAX_LOOPBACK_SCHEMES) {
      const oldest = this.#schemes.keys().next().value;
      if (oldest !== undefined) this.#schemes.delete(oldest);
    }
  }

  /**
   * Drops every token issued for a registry, and the challenges of its origins (a logout).
   * Returns how many tokens.
   */
  forgetRegistry(registry: string, origins: readonly string[] = []): number {
    let n = 0;
    for (const [key, kept] of this.#tokens) {
      if (kept.registry === registry) {
        this.#tokens.delete(key);
        n++;
      }
    }
    for (const origin of origins) this.forgetChallenge(origin);
    return n;
  }
}
