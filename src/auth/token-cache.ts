import { createHmac, randomBytes, scrypt } from 'node:crypto';
import { parseScope } from '../scope/parse-scope.js';
import { callStore, type MaybePromise, type OnStoreError } from './call-store.js';
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

/**
 * Somewhere tokens outlive the process or are shared between clients: the CLI's file
 * (FileTokenStore), memory shared by several clients (MemoryTokenStore), or a store of your own
 * (Redis, a database). Every method may answer at once or with a promise. A method that throws or
 * rejects never fails a request: a failed read is a miss, a failed write is not kept, and
 * `onStoreError` is told.
 */
export interface TokenStore {
  /** The token kept under `key`, or undefined. Tokens past their `expiresAt` are never used. */
  loadToken(key: string): MaybePromise<TokenInfo | undefined>;
  /** Keeps `token` under `key`; `registry` (`docker.io`, `localhost:5000`) lets a logout find it. */
  saveToken(key: string, registry: string, token: TokenInfo): MaybePromise<void>;
  /**
   * Random bytes (at least 16) kept with the store and mixed into the hash of every secret in a
   * token key: the same for every process sharing the store, different between stores. Left
   * out, or failing: the cache draws its own, and its keys then match nothing stored by another
   * process.
   */
  keySalt?(): MaybePromise<Uint8Array>;
  /**
   * Whether a token that has not expired is kept for `registry` (as saveToken was told it).
   * When not, a first token is fetched while its key is still being derived (hashing a password
   * takes milliseconds), and kept under that key once both are done. Left out: the key comes first.
   */
  hasTokens?(registry: string): MaybePromise<boolean>;
}

/** How a TokenCache keeps tokens: `new TokenCache({ store })` is all most callers need. */
export interface TokenCacheOptions {
  /** Left out: tokens live in memory only. */
  readonly store?: TokenStore;
  /** The clock, in milliseconds since the epoch. Left out: Date.now. */
  readonly now?: () => number;
  /** Left out: DEFAULT_TOKEN_CACHE_MARGIN_S. */
  readonly marginSeconds?: number;
  /** Told when the store throws or rejects; the request goes on without it. Left out: nothing is told. */
  readonly onStoreError?: OnStoreError | undefined;
}

/** Options of TokenCache.tokenFor. */
export interface TokenForOptions {
  /** Fetch a new token even when a fresh one is cached (the registry refused the cached one). */
  readonly force?: boolean;
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
 * At most this many narrower scope sets are remembered for one token (see TokenCache.tokenFor):
 * a token for one repository's `pull,push,delete` covers 7; a mount's two repositories about as
 * many. More would cost a store write each for sets no request is likely to ask for.
 */
const MAX_COVERED_SCOPE_SETS = 16;

/** Actions of one resource beyond this many are not split into subsets (2^n of them). */
const MAX_SPLIT_ACTIONS = 4;

/**
 * The single-resource scope sets a token for `scopes` also serves: each resource with every
 * non-empty subset of its actions (a `pull,push` token serves a `pull`), except the set itself.
 * A `*` action is not split: it already stands for every action.
 */
export function coveredScopeSets(scopes: readonly string[]): string[][] {
  const out: string[][] = [];
  const own = JSON.stringify([...scopes].sort());
  const seen = new Set<string>([own]);
  const add = (set: string[]) => {
    const id = JSON.stringify([...set].sort());
    if (seen.has(id) || out.length >= MAX_COVERED_SCOPE_SETS) return;
    seen.add(id);
    out.push(set);
  };
  for (const text of scopes) {
    let parsed: ReturnType<typeof parseScope>;
    try {
      parsed = parseScope(text);
    } catch {
      continue;
    }
    const { actions } = parsed;
    const prefix = text.slice(0, text.length - actions.join(',').length);
    if (actions.includes('*') || actions.length > MAX_SPLIT_ACTIONS || !text.endsWith(actions.join(','))) {
      add([text]);
      continue;
    }
    for (let mask = 1; mask < 1 << actions.length; mask++) {
      add([`${prefix}${actions.filter((_, i) => (mask & (1 << i)) !== 0).join(',')}`]);
    }
  }
  return out;
}

/** Numbers credential objects for TokenCache's fetches started before their key. */
let credentialCount = 0;

/** A credential's key part (TokenCache.#identity). */
function identityOf(credential: Credential, salt: Uint8Array): Promise<string> {
  const mac = (secret: string) => createHmac('sha256', salt).update(secret).digest('base64url').slice(0, 22);
  if (credential.registryToken !== undefined) {
    return Promise.resolve(`registrytoken:${mac(credential.registryToken)}`);
  }
  if (credential.identityToken !== undefined)
    return Promise.resolve(`refresh:${mac(credential.identityToken)}`);
  const { username, password } = credential;
  if (username === undefined || password === undefined) return Promise.resolve('anonymous');
  const { N, r, p, bytes } = PASSWORD_HASH;
  return new Promise((resolve, reject) => {
    scrypt(`${username}\u0000${password}`, salt, bytes, { N, r, p }, (err, hash) => {
      if (err) reject(err);
      else resolve(`password:${username}:${hash.toString('base64url')}`);
    });
  });
}

function isTokenInfo(t: unknown): t is TokenInfo {
  const v = t as Partial<TokenInfo> | null | undefined;
  return (
    typeof v === 'object' && v !== null && typeof v.token === 'string' && typeof v.expiresAt === 'number'
  );
}

/**
 * Tokens keyed by registry origin, realm, service, identity (a salted hash of the secret, never
 * the user name alone) and scopes. Docker and containerd keep tokens per registry host; a second
 * registry that copies the first one's challenge, or the same user name with another password,
 * must not find them. One fetch in flight per key however many requests wait for it — also while
 * the store is being read: parallel blob requests share one store read and one token request.
 *
 * One cache may serve several clients (createRegistryClients' `tokenCache` option): they then
 * share tokens and in-flight fetches. `new TokenCache({ store })` is all it takes.
 */
export class TokenCache {
  readonly #memory = new Map<string, TokenInfo>();
  readonly #inFlight = new Map<string, Promise<TokenInfo>>();
  readonly #reading = new Map<string, Promise<TokenInfo | undefined>>();
  readonly #identities = new WeakMap<Credential, Promise<string>>();
  /** Fetches started before their key was known (tokenFor), by the parts of that key. */
  readonly #early = new Map<string, Promise<TokenInfo>>();
  readonly #credentialIds = new WeakMap<Credential, number>();
  readonly #store: TokenStore | undefined;
  readonly #now: () => number;
  readonly #marginMs: number;
  readonly #onStoreError: OnStoreError | undefined;
  #salt: Promise<Uint8Array> | undefined;

  constructor(options: TokenCacheOptions = {}) {
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
    this.#marginMs = (options.marginSeconds ?? DEFAULT_TOKEN_CACHE_MARGIN_S) * 1000;
    this.#onStoreError = options.onStoreError;
  }

  /** The store this cache reads and writes, if any. */
  get store(): TokenStore | undefined {
    return this.#store;
  }

  #keySalt(): Promise<Uint8Array> {
    this.#salt ??= (async () => {
      const store = this.#store;
      if (store?.keySalt === undefined) return randomBytes(16);
      const salt = await callStore('keySalt', () => store.keySalt?.(), this.#onStoreError);
      if (salt instanceof Uint8Array && salt.length >= 16) return salt;
      if (salt !== undefined) {
        this.#onStoreError?.(new TypeError('keySalt() must give at least 16 bytes'), 'keySalt');
      }
      return randomBytes(16);
    })();
    return this.#salt;
  }

  /**
   * Who a token was issued to, as a key part: the secret only as a salted hash. A password's
   * scrypt runs on libuv's thread pool, so the event loop goes on meanwhile (a token fetch, a
   * round trip), once per credential however many keys ask.
   */
  #identity(credential: Credential | undefined, salt: Uint8Array): Promise<string> {
    if (!credential) return Promise.resolve('anonymous');
    let known = this.#identities.get(credential);
    if (known === undefined) {
      known = identityOf(credential, salt);
      this.#identities.set(credential, known);
    }
    return known;
  }

  /** The key a token for `parts` is kept under. Asynchronous: the salt may come from the store. */
  async key(parts: TokenKeyParts): Promise<string> {
    const salt = await this.#keySalt();
    return JSON.stringify([
      parts.origin,
      parts.realm,
      parts.service,
      await this.#identity(parts.credential, salt),
      [...parts.scopes].sort(),
    ]);
  }

  #fresh(token: TokenInfo | undefined): token is TokenInfo {
    if (!token) return false;
    return token.expiresAt - this.#now() > this.#marginMs;
  }

  /** The store's token for a key, read once however many callers ask at the same time. */
  #read(key: string): Promise<TokenInfo | undefined> {
    const store = this.#store;
    if (!store) return Promise.resolve(undefined);
    let reading = this.#reading.get(key);
    if (!reading) {
      reading = callStore('loadToken', () => store.loadToken(key), this.#onStoreError).then((stored) => {
        if (this.#reading.get(key) === reading) this.#reading.delete(key);
        if (!isTokenInfo(stored) || !this.#fresh(stored)) return undefined;
        const token: TokenInfo = { token: stored.token, expiresAt: stored.expiresAt };
        this.#memory.set(key, token);
        return token;
      });
      this.#reading.set(key, reading);
    }
    return reading;
  }

  /** A fresh cached token, or the result of `fetch` (shared by concurrent callers of the same key). */
  get(key: string, registry: string, fetch: () => Promise<TokenInfo>, force = false): Promise<TokenInfo> {
    return this.#get(key, [], registry, fetch, force);
  }

  /**
   * A fresh token for `parts`, from memory, the store, or `fetch`. A token fetched here is also
   * kept for the narrower scope sets it covers (coveredScopeSets: a `pull,push` token serves a
   * later `pull` of the same repository, in this process or the next), under keys that differ
   * from its own only in the scopes. A registry may still refuse such a token (the realm granted
   * less than was asked): the caller then asks again with `force` for the exact scopes.
   */
  async tokenFor(
    parts: TokenKeyParts,
    registry: string,
    fetch: () => Promise<TokenInfo>,
    options: TokenForOptions = {},
  ): Promise<TokenInfo> {
    const force = options.force ?? false;
    const keys = Promise.all([
      this.key(parts),
      ...coveredScopeSets(parts.scopes).map((scopes) => this.key({ ...parts, scopes })),
    ]);
    // Awaited below or by the fetch it runs beside; a caller sharing another's fetch never does.
    keys.catch(() => {});
    if (!force) {
      const id = this.#partsId(parts);
      const early = this.#early.get(id);
      if (early) return early;
      // Nothing kept anywhere yet (a first run, or an emptied cache): no key can find a token.
      if (this.#memory.size === 0 && this.#inFlight.size === 0 && (await this.#storeLacks(registry))) {
        return this.#early.get(id) ?? this.#fetchBeforeKey(id, keys, registry, fetch);
      }
    }
    const [key = '', ...covered] = await keys;
    return this.#get(key, covered, registry, fetch, force);
  }

  /**
   * A fresh token kept for `parts` (memory, a fetch under way, or the store), never fetched: for
   * a request that may not send credentials anywhere yet.
   */
  async cached(parts: TokenKeyParts, registry: string): Promise<TokenInfo | undefined> {
    if (this.#memory.size === 0 && this.#inFlight.size === 0 && (await this.#storeLacks(registry))) {
      return undefined;
    }
    const key = await this.key(parts);
    const hit = this.#memory.get(key);
    if (this.#fresh(hit)) return hit;
    // Another caller's fetch under way is waited for; its failure is its own, not a miss's.
    const fetching = this.#inFlight.get(key);
    return fetching ? fetching.catch(() => undefined) : this.#read(key);
  }

  /** Whether the store says it keeps no token for `registry` (a failing store: it may). */
  async #storeLacks(registry: string): Promise<boolean> {
    const store = this.#store;
    if (store?.hasTokens === undefined) return false;
    return (await callStore('hasTokens', () => store.hasTokens?.(registry), this.#onStoreError)) === false;
  }

  /** A key's parts with the credential as an object number: what #early shares fetches by. */
  #partsId(parts: TokenKeyParts): string {
    return JSON.stringify([
      parts.origin,
      parts.realm,
      parts.service,
      parts.credential === undefined ? 0 : this.#credentialId(parts.credential),
      [...parts.scopes].sort(),
    ]);
  }

  /**
   * A first token when nothing is cached for its registry: fetched while its keys (`keys`: its
   * own, then the covered sets') are derived, then kept under them as #get keeps a token.
   * Callers asking meanwhile share it by the parts of the key (the credential by object), as
   * #get's callers share a fetch by key.
   */
  #fetchBeforeKey(
    id: string,
    keys: Promise<string[]>,
    registry: string,
    fetch: () => Promise<TokenInfo>,
  ): Promise<TokenInfo> {
    const promise = (async () => {
      const token = await fetch();
      const [key = '', ...covered] = await keys;
      this.#memory.set(key, token);
      const extra = covered.filter((k) => !this.#fresh(this.#memory.get(k)));
      for (const k of extra) this.#memory.set(k, token);
      await this.#saveAll([key, ...extra], registry, token);
      return token;
    })();
    this.#early.set(id, promise);
    const done = () => {
      if (this.#early.get(id) === promise) this.#early.delete(id);
    };
    promise.then(done, done);
    return promise;
  }

  #credentialId(credential: Credential): number {
    let id = this.#credentialIds.get(credential);
    if (id === undefined) {
      id = ++credentialCount;
      this.#credentialIds.set(credential, id);
    }
    return id;
  }

  async #saveAll(keys: readonly string[], registry: string, token: TokenInfo): Promise<void> {
    const store = this.#store;
    if (!store) return;
    await Promise.all(
      keys.map((k) => callStore('saveToken', () => store.saveToken(k, registry, token), this.#onStoreError)),
    );
  }

  async #get(
    key: string,
    covered: readonly string[],
    registry: string,
    fetch: () => Promise<TokenInfo>,
    force: boolean,
  ): Promise<TokenInfo> {
    if (!force) {
      const hit = this.#memory.get(key);
      if (this.#fresh(hit)) return hit;
      const fetching = this.#inFlight.get(key);
      if (fetching) return fetching;
      const stored = await this.#read(key);
      if (stored) return stored;
    }
    // Nothing between here and the set below waits: whoever comes next finds this fetch.
    const pending = this.#inFlight.get(key);
    if (pending) return pending;
    const promise = (async () => {
      const token = await fetch();
      this.#memory.set(key, token);
      // A covered set keeps a fresh token of its own: one fetched for exactly its scopes.
      const extra = covered.filter((k) => !this.#fresh(this.#memory.get(k)));
      for (const k of extra) this.#memory.set(k, token);
      await this.#saveAll([key, ...extra], registry, token);
      return token;
    })();
    this.#inFlight.set(key, promise);
    try {
      return await promise;
    } finally {
      if (this.#inFlight.get(key) === promise) this.#inFlight.delete(key);
    }
  }

  /** Drop a token the registry refused, so the next request fetches a new one. */
  invalidate(key: string): void {
    this.#memory.delete(key);
  }
}
