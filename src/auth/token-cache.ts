import { createHmac, randomBytes, scryptSync } from 'node:crypto';
import type { Credential } from './credentials/credential.js';
import type { TokenInfo } from './token-response.js';

/**
 * Renew this long before expiry, so a request never leaves with a token about to lapse: a
 * sixth of the shortest lifetime (60 s), long enough for one chunk of an upload to go out.
 */
export const DEFAULT_TOKEN_CACHE_MARGIN_S = 10;

/**
 * How a password is hashed into a token key. Keys may be written to disk, and a fast hash of a
 * password there could be guessed offline at billions per second; scrypt at 2^10 × 8 (1 MiB,
 * a few milliseconds, once per credential per process) makes each guess cost the same.
 * Identity and registry tokens are random and long: an HMAC is enough for them.
 */
const PASSWORD_HASH = { N: 1024, r: 8, p: 1, bytes: 16 } as const;

/** Somewhere tokens outlive the process: the CLI's file in the user's cache directory. */
export interface TokenStore {
  loadToken(key: string): TokenInfo | undefined;
  saveToken(key: string, registry: string, token: TokenInfo): void;
  /**
   * Random bytes kept with the store and mixed into the hash of every secret in a token key:
   * the same for every process sharing the store, different between stores. Left out: the
   * cache draws its own, and its keys then match nothing stored by another process.
   */
  keySalt?(): Uint8Array;
}

export interface TokenCacheOptions {
  /** Left out: tokens live in memory only. */
  readonly store?: TokenStore;
  readonly now?: () => number;
  /** Left out: DEFAULT_TOKEN_CACHE_MARGIN_S. */
  readonly marginSeconds?: number;
}

/** What a token is for: it serves a later request only when every part is the same. */
export interface TokenKeyParts {
  /** The registry the token is sent to, as an origin (`https://registry-1.docker.io`). */
  readonly origin: string;
  readonly realm: string;
  readonly service: string;
  /** The credential it was issued for; left out: anonymous. */
  readonly credential?: Credential;
  readonly scopes: readonly string[];
}

/**
 * Tokens keyed by registry origin, realm, service, identity (a salted hash of the secret, never
 * the user name alone) and scopes. Docker and containerd keep tokens per registry host; a second
 * registry that copies the first one's challenge, or the same user name with another password,
 * must not find them. One fetch in flight per key however many requests wait for it: parallel
 * blob requests share one token request.
 */
export class TokenCache {
  readonly #memory = new Map<string, TokenInfo>();
  readonly #inFlight = new Map<string, Promise<TokenInfo>>();
  readonly #identities = new WeakMap<Credential, string>();
  readonly #store: TokenStore | undefined;
  readonly #now: () => number;
  readonly #marginMs: number;
  #salt: Uint8Array | undefined;

  constructor(options: TokenCacheOptions = {}) {
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
    this.#marginMs = (options.marginSeconds ?? DEFAULT_TOKEN_CACHE_MARGIN_S) * 1000;
  }

  #keySalt(): Uint8Array {
    this.#salt ??= this.#store?.keySalt?.() ?? randomBytes(16);
    return this.#salt;
  }

  /** Who a token was issued to, as a key part: the secret only as a salted hash. */
  #identity(credential: Credential | undefined): string {
    if (!credential) return 'anonymous';
    const known = this.#identities.get(credential);
    if (known !== undefined) return known;
    const salt = this.#keySalt();
    const mac = (secret: string) =>
      createHmac('sha256', salt).update(secret).digest('base64url').slice(0, 22);
    let identity = 'anonymous';
    if (credential.registryToken !== undefined) identity = `registrytoken:${mac(credential.registryToken)}`;
    else if (credential.identityToken !== undefined) identity = `refresh:${mac(credential.identityToken)}`;
    else if (credential.username !== undefined && credential.password !== undefined) {
      const { N, r, p, bytes } = PASSWORD_HASH;
      const hash = scryptSync(`${credential.username}\u0000${credential.password}`, salt, bytes, { N, r, p });
      identity = `password:${credential.username}:${hash.toString('base64url')}`;
    }
    this.#identities.set(credential, identity);
    return identity;
  }

  key(parts: TokenKeyParts): string {
    return JSON.stringify([
      parts.origin,
      parts.realm,
      parts.service,
      this.#identity(parts.credential),
      [...parts.scopes].sort(),
    ]);
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
