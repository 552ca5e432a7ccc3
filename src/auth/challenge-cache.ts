import { callStore, type MaybePromise, type OnStoreError } from './call-store.js';
import type { Challenge } from './parse-challenge.js';

/**
 * Where challenges learned from registries are kept between processes (or shared between
 * clients), by registry origin. Every method may answer at once or with a promise; one that
 * throws or rejects never fails a request (a failed read is a miss, a failed write is not kept).
 */
export interface ChallengeStore {
  /** The challenge kept for a registry origin (`https://registry.example`), or undefined. */
  loadChallenge(origin: string): MaybePromise<Challenge | undefined>;
  /** Keeps a challenge (scheme, realm, service: never a request's scope or error) for an origin. */
  saveChallenge(origin: string, challenge: Challenge): MaybePromise<void>;
  /** Drops the challenge kept for an origin: it no longer passes the realm check, or the user logged out. */
  forgetChallenge(origin: string): MaybePromise<void>;
  /**
   * The scopes a registry's challenge named for a request whose path asks for `requested` (its
   * scopes, sorted, joined by spaces), when they were not the path's own: Artifactory's virtual
   * repositories answer `GET /v2/virtual/alpine/…` with `scope="repository:alpine:pull"`.
   * Left out: such names are remembered in memory only, and each process asks the registry again.
   */
  loadScopeNames?(origin: string, requested: string): MaybePromise<readonly string[] | undefined>;
  /** Keeps what loadScopeNames gives back; `named` replaces what was kept for `requested`. */
  saveScopeNames?(origin: string, requested: string, named: readonly string[]): MaybePromise<void>;
  /**
   * The scheme a registry on loopback (`host:port`) was last found to speak by its HTTPS ping,
   * so that the next process can send its first GET at once instead of pinging again: an
   * answer confirms the scheme, a refusal costs a ping and the GET sent again. Left out: every
   * process pings. A store shared between machines (RedisTokenStore) leaves these out: each
   * machine's loopback is its own.
   */
  loadLoopbackScheme?(host: string): MaybePromise<LoopbackScheme | undefined>;
  /** Keeps what loadLoopbackScheme gives back for a host. */
  saveLoopbackScheme?(host: string, scheme: LoopbackScheme): MaybePromise<void>;
}

/** How a registry on loopback was found to speak: TLS, or plain HTTP. */
export type LoopbackScheme = 'http' | 'https';

/**
 * At most this many loopback hosts' schemes kept by a store: ports come and go (every test run
 * of a local registry picks a new one), so the oldest are dropped.
 */
export const MAX_LOOPBACK_SCHEMES = 64;

/** A store of someone else's may answer anything: only these two are a scheme. */
export function isLoopbackScheme(s: unknown): s is LoopbackScheme {
  return s === 'http' || s === 'https';
}

/** Challenge parameters that describe one request, not the registry: never reuse them. */
const PER_REQUEST_PARAMS = new Set(['scope', 'error', 'error_description']);

/**
 * At most this many scope names remembered per origin in memory: a registry names one per
 * repository and action set; a long-lived client of a hostile one must not grow without bound.
 */
export const MAX_SCOPE_NAMES_PER_ORIGIN = 1024;

/** How ChallengeCache and the stores key a set of requested scopes. */
export function scopeNamesKey(requested: readonly string[]): string {
  return [...new Set(requested)].sort().join(' ');
}

export interface ChallengeCacheOptions {
  /** Told when the store throws or rejects; the request goes on without it. */
  readonly onStoreError?: OnStoreError | undefined;
}

/**
 * The challenges registries answered with, by origin, in memory and in an optional store; and
 * the requests that are finding one out right now. Callers store only challenges they checked
 * (see checkRealm): what is kept here decides where credentials go.
 */
export class ChallengeCache {
  readonly #memory = new Map<string, Challenge>();
  readonly #reading = new Map<string, Promise<Challenge | undefined>>();
  readonly #scopeNames = new Map<string, Map<string, readonly string[]>>();
  readonly #readingNames = new Map<string, Promise<readonly string[]>>();
  readonly #discovering = new Map<string, Promise<void>>();
  readonly #store: ChallengeStore | undefined;
  readonly #onStoreError: OnStoreError | undefined;

  constructor(store?: ChallengeStore, options: ChallengeCacheOptions = {}) {
    this.#store = store;
    this.#onStoreError = options.onStoreError;
  }

  /** The challenge known for an origin; the store is read once however many ask at the same time. */
  async get(origin: string): Promise<Challenge | undefined> {
    const known = this.#memory.get(origin);
    if (known) return known;
    const store = this.#store;
    if (!store) return undefined;
    let reading = this.#reading.get(origin);
    if (!reading) {
      reading = callStore('loadChallenge', () => store.loadChallenge(origin), this.#onStoreError).then(
        (stored) => {
          if (this.#reading.get(origin) === reading) this.#reading.delete(origin);
          if (!isChallenge(stored)) return undefined;
          // Learned meanwhile (a 401 answered while the store was read) wins over the stored one.
          const current = this.#memory.get(origin);
          if (current) return current;
          this.#memory.set(origin, stored);
          return stored;
        },
      );
      this.#reading.set(origin, reading);
    }
    return reading;
  }

  /** Keeps what a challenge says about the registry (scheme, realm, service), not its per-request scope or error. */
  async learn(origin: string, challenge: Challenge): Promise<Challenge> {
    const learned: Challenge = {
      scheme: challenge.scheme,
      params: Object.fromEntries(
        Object.entries(challenge.params).filter(([k]) => !PER_REQUEST_PARAMS.has(k)),
      ),
    };
    this.#memory.set(origin, learned);
    const store = this.#store;
    if (store)
      await callStore('saveChallenge', () => store.saveChallenge(origin, learned), this.#onStoreError);
    return learned;
  }

  async forget(origin: string): Promise<void> {
    this.#memory.delete(origin);
    this.#scopeNames.delete(origin);
    const store = this.#store;
    if (store) await callStore('forgetChallenge', () => store.forgetChallenge(origin), this.#onStoreError);
  }

  /**
   * The scopes the registry named for requests asking for `requested`, besides those: usually
   * none. The store is read once per origin and scope set however many ask at the same time.
   */
  scopeNames(origin: string, requested: readonly string[]): Promise<readonly string[]> {
    const key = scopeNamesKey(requested);
    const known = this.#scopeNames.get(origin)?.get(key);
    if (known) return Promise.resolve(known);
    const store = this.#store;
    if (!store?.loadScopeNames) return Promise.resolve([]);
    const id = JSON.stringify([origin, key]);
    let reading = this.#readingNames.get(id);
    if (!reading) {
      reading = callStore(
        'loadScopeNames',
        () => store.loadScopeNames?.(origin, key),
        this.#onStoreError,
      ).then((stored) => {
        if (this.#readingNames.get(id) === reading) this.#readingNames.delete(id);
        const learned = this.#scopeNames.get(origin)?.get(key);
        if (learned) return learned;
        const named = Array.isArray(stored) && stored.every((s) => typeof s === 'string') ? stored : [];
        this.#remember(origin, key, named);
        return named;
      });
      this.#readingNames.set(id, reading);
    }
    return reading;
  }

  /**
   * Remembers that the registry's challenge named `named` for a request asking for `requested`,
   * so that later requests (and later processes, through the store) ask the realm for both at once.
   */
  async learnScopeNames(
    origin: string,
    requested: readonly string[],
    named: readonly string[],
  ): Promise<void> {
    const key = scopeNamesKey(requested);
    const own = new Set(requested);
    const extra = [...new Set(named)].filter((s) => !own.has(s)).sort();
    const known = this.#scopeNames.get(origin)?.get(key);
    if (known && known.length === extra.length && known.every((s, i) => s === extra[i])) return;
    this.#remember(origin, key, extra);
    const store = this.#store;
    if (store?.saveScopeNames) {
      await callStore('saveScopeNames', () => store.saveScopeNames?.(origin, key, extra), this.#onStoreError);
    }
  }

  #remember(origin: string, key: string, named: readonly string[]): void {
    let names = this.#scopeNames.get(origin);
    if (!names) {
      names = new Map();
      this.#scopeNames.set(origin, names);
    }
    names.delete(key);
    names.set(key, named);
    if (names.size > MAX_SCOPE_NAMES_PER_ORIGIN) {
      const oldest = names.keys().next().value;
      if (oldest !== undefined) names.delete(oldest);
    }
  }

  /**
   * Requests that start together at a registry not met yet wait for the first one's answer
   * instead of each collecting its own 401: one challenge round trip, then one token fetch.
   * The promise of the request finding out this origin's challenge now, if there is one.
   */
  pending(origin: string): Promise<void> | undefined {
    return this.#discovering.get(origin);
  }

  /**
   * Marks a request as the one finding out an origin's challenge. Returns the function that ends
   * the mark (call it once the answer is in, or the request failed), or undefined when another
   * request holds it already.
   */
  discover(origin: string): (() => void) | undefined {
    if (this.#discovering.has(origin)) return undefined;
    let release: () => void = () => {};
    const pending = new Promise<void>((resolve) => {
      release = () => {
        if (this.#discovering.get(origin) === pending) this.#discovering.delete(origin);
        resolve();
      };
    });
    this.#discovering.set(origin, pending);
    return release;
  }
}

/** A store of someone else's may answer anything: only a well-formed challenge is used. */
export function isChallenge(c: unknown): c is Challenge {
  const v = c as Partial<Challenge> | null | undefined;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.scheme === 'string' &&
    typeof v.params === 'object' &&
    v.params !== null &&
    Object.values(v.params).every((p) => typeof p === 'string')
  );
}
