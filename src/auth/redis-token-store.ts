import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { RegauthError } from '../errors/regauth-error.js';
import { type ChallengeStore, isChallenge, MAX_SCOPE_NAMES_PER_ORIGIN } from './challenge-cache.js';
import type { Challenge } from './parse-challenge.js';
import type { TokenStore } from './token-cache.js';
import type { TokenInfo } from './token-response.js';

/**
 * ioredis (`new Redis(url)`, also `Redis.Cluster`): raw commands through `call`, replies as
 * strings, numbers and arrays.
 */
export interface RedisCallClient {
  /** Sends `command` with `args` and settles with Redis's reply. */
  call(command: string, ...args: string[]): Promise<unknown>;
}

/**
 * node-redis v4 and later (`createClient({ url })`, connected): raw commands through
 * `sendCommand([...])`, as its README shows for commands it has no method for.
 */
export interface RedisSendCommandClient {
  /** Sends `[command, ...args]` and settles with Redis's reply. */
  sendCommand(args: string[]): Promise<unknown>;
}

/**
 * The Redis connection a RedisTokenStore sends its commands through: made, connected and closed
 * by you, so that regauth's client library needs no Redis package of its own. Only raw commands
 * are sent (GET, SET, DEL, SCAN, EVAL): their shapes are the same in every client, unlike the
 * clients' own methods (ioredis `set(k, v, 'PX', ms)`, node-redis `set(k, v, { PX: ms })`).
 */
export type RedisStoreClient = RedisCallClient | RedisSendCommandClient;

/** Options of RedisTokenStore. */
export interface RedisTokenStoreOptions {
  /** ioredis (`new Redis(url)`) or node-redis (`createClient({ url })`, connected). */
  readonly client: RedisStoreClient;
  /** Prefix of every key, so one Redis serves several fleets or applications. Left out: `regauth:`. */
  readonly prefix?: string;
  /**
   * How long one command may take before the store gives up on it (a miss, reported to
   * `onStoreError`). Left out: DEFAULT_REDIS_STORE_TIMEOUT_MS.
   */
  readonly timeoutMs?: number;
  /**
   * 32 bytes: every value is then sealed with AES-256-GCM (a random IV per value, the Redis key
   * as associated data). Someone who can read the Redis then cannot use the tokens in it, and
   * someone who can write it cannot plant a challenge that sends credentials elsewhere; values
   * written without the key (or with another) are misses. Give every worker the same key.
   */
  readonly encryptionKey?: Uint8Array;
  /** The clock that decides how long a token is kept. Left out: Date.now. */
  readonly now?: () => number;
}

/**
 * One command a store sends waits at most this long. A CI pull that finds Redis gone or hung
 * should lose a fraction of a second per store call, not the pull: loopback and LAN Redis answer
 * in well under a millisecond, so a second is a Redis in trouble, not a busy one.
 */
export const DEFAULT_REDIS_STORE_TIMEOUT_MS = 1_000;

/** Default key prefix: the token server's `store:` prefix is `regauth:` too, and keys do not collide. */
const DEFAULT_PREFIX = 'regauth:';

/**
 * Challenges and scope names are kept this long after they were last written: a day is many
 * CI runs, and a registry that moves its realm is asked afresh after a day at the latest.
 */
const REGISTRY_FACTS_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * No value larger than this is written or parsed: a JWT with many grants is a few KiB; a value
 * this large is someone else's, or damage, and parsing it would cost every worker.
 */
const MAX_VALUE_BYTES = 256 * 1024;

/** forgetRegistry asks SCAN for this many keys per round trip (a hint to Redis, not a limit). */
const SCAN_COUNT = 1000;

/** forgetRegistry stops after this many SCAN rounds (10^6 keys at SCAN_COUNT): a bound, not a goal. */
const MAX_SCAN_ROUNDS = 1000;

/** Version of the values written; a value of another version is a miss. */
const VERSION = 1;

/**
 * Keeps scope names per origin in one hash, refreshed on each write; a hash that grew past
 * ARGV[3] fields is dropped and started again (a miss costs one token request, nothing more).
 * KEYS[1] hash; ARGV[1] field, ARGV[2] value, ARGV[3] max fields, ARGV[4] ttl ms.
 */
const SAVE_SCOPE_NAMES_LUA = `
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

/** A short, fixed-length name for a string in a key: no glob characters, no user names in key listings. */
function digest(text: string, length = 43): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, length);
}

interface StoredToken {
  readonly v: typeof VERSION;
  /** The registry (`docker.io`, `localhost:5000`) the token was issued for. */
  readonly r: string;
  readonly token: string;
  readonly expiresAt: number;
}

/**
 * Tokens, challenges and scope names in Redis, shared by every process that uses the same Redis
 * and prefix: a fleet of CI workers fetches a token once per credential and scope until it
 * expires. Implements TokenStore and ChallengeStore; give it to createRegistry or
 * createRegistryClients as `store`.
 *
 * Keys, all under the prefix: `salt` (TokenStore.keySalt, written once with SET NX, so every
 * worker derives the same token keys); `token:<key hash>` (kept with PX until the
 * token's own expiry, never longer); `challenge:<origin hash>` and `scopes:<origin hash>` (a day).
 * Keys hold hashes, never a user name or registry name.
 *
 * Every command waits at most `timeoutMs`: a Redis that is down or hangs costs a miss per call
 * (reported to `onStoreError`), never a pull. Errors it reports name the command and what Redis
 * or the client said, with every value it sent blanked out.
 *
 * Tokens are secrets: whoever can read this Redis can use them until they expire, and whoever
 * can write it can plant a challenge that sends your credentials to a realm of their choosing.
 * Give it a Redis only the fleet can reach, with a password and TLS, or set `encryptionKey`.
 */
export class RedisTokenStore implements TokenStore, ChallengeStore {
  readonly #send: (args: string[]) => Promise<unknown>;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #key: Uint8Array | undefined;
  readonly #now: () => number;

  constructor(options: RedisTokenStoreOptions) {
    const client = options.client as Partial<RedisCallClient & RedisSendCommandClient> | undefined;
    if (typeof client?.call === 'function') {
      const call = client.call.bind(client);
      this.#send = ([command, ...args]) => call(command as string, ...args);
    } else if (typeof client?.sendCommand === 'function') {
      const sendCommand = client.sendCommand.bind(client);
      this.#send = (args) => sendCommand(args);
    } else {
      throw new RegauthError(
        'ERR_INVALID_OPTIONS',
        'RedisTokenStore needs a Redis client: give `client: new Redis(url)` (ioredis) or a connected `createClient({ url })` (node-redis)',
      );
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_REDIS_STORE_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new RegauthError(
        'ERR_INVALID_OPTIONS',
        `RedisTokenStore timeoutMs must be a positive number of milliseconds, not ${String(timeoutMs)}`,
      );
    }
    if (options.encryptionKey !== undefined && options.encryptionKey.length !== 32) {
      throw new RegauthError(
        'ERR_INVALID_OPTIONS',
        `RedisTokenStore encryptionKey must be 32 bytes (AES-256), not ${options.encryptionKey.length}: make one with crypto.randomBytes(32) and give the same to every worker`,
      );
    }
    this.#prefix = options.prefix ?? DEFAULT_PREFIX;
    this.#timeoutMs = timeoutMs;
    this.#key = options.encryptionKey;
    this.#now = options.now ?? Date.now;
  }

  /** One command, given up after the timeout; a failure names the command, never a value sent. */
  async #command(args: string[]): Promise<unknown> {
    const name = args[0] ?? '';
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.#send(args),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new RegauthError(
                  'ERR_NETWORK',
                  `Redis did not answer ${name} within ${this.#timeoutMs} ms; going on without the shared token store (check that Redis is up and reachable, or raise timeoutMs)`,
                ),
              ),
            this.#timeoutMs,
          );
        }),
      ]);
    } catch (err) {
      if (err instanceof RegauthError) throw err;
      // The client's error may quote the command (ioredis keeps its arguments on the error): a
      // new error carries only the message, with whatever was sent blanked out, and no cause.
      let text = err instanceof Error ? err.message : String(err);
      for (const arg of args.slice(1)) if (arg.length >= 4) text = text.split(arg).join('***');
      throw new RegauthError(
        'ERR_NETWORK',
        `Redis ${name} failed: ${text.slice(0, 300)}; going on without the shared token store (check that Redis is up and the client connected)`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  #seal(redisKey: string, value: object): string {
    const json = JSON.stringify({ v: VERSION, ...value });
    if (this.#key === undefined) return json;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(redisKey));
    const sealed = Buffer.concat([iv, cipher.update(json, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return JSON.stringify({ v: VERSION, sealed: sealed.toString('base64') });
  }

  /** The object a value holds, or undefined for anything else: foreign, damaged, or sealed with another key. */
  #open(redisKey: string, stored: unknown): Record<string, unknown> | undefined {
    if (typeof stored !== 'string' || stored.length > MAX_VALUE_BYTES) return undefined;
    let outer: unknown;
    try {
      outer = JSON.parse(stored);
    } catch {
      return undefined;
    }
    if (typeof outer !== 'object' || outer === null || (outer as { v?: unknown }).v !== VERSION)
      return undefined;
    const sealed = (outer as { sealed?: unknown }).sealed;
    if (this.#key === undefined)
      return typeof sealed === 'undefined' ? (outer as Record<string, unknown>) : undefined;
    // With a key, a plain value is someone else's: it could be a planted challenge.
    if (typeof sealed !== 'string') return undefined;
    const bytes = Buffer.from(sealed, 'base64');
    if (bytes.length < 12 + 16) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, bytes.subarray(0, 12));
      decipher.setAAD(Buffer.from(redisKey));
      decipher.setAuthTag(bytes.subarray(bytes.length - 16));
      const json = Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]);
      const inner: unknown = JSON.parse(json.toString('utf8'));
      if (typeof inner !== 'object' || inner === null || (inner as { v?: unknown }).v !== VERSION)
        return undefined;
      return inner as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }

  #tokenKey(key: string): string {
    return `${this.#prefix}token:${digest(key)}`;
  }

  #challengeKey(origin: string): string {
    return `${this.#prefix}challenge:${digest(origin)}`;
  }

  #scopesKey(origin: string): string {
    return `${this.#prefix}scopes:${digest(origin)}`;
  }

  /** The key this store's salt is kept under (TokenStore.keySalt). */
  get saltKey(): string {
    return `${this.#prefix}salt`;
  }

  async keySalt(): Promise<Uint8Array> {
    // SET NX then GET: the first worker's salt wins, and every worker reads that one back.
    await this.#command(['SET', this.saltKey, randomBytes(16).toString('base64'), 'NX']);
    const stored = await this.#command(['GET', this.saltKey]);
    const salt = typeof stored === 'string' ? Buffer.from(stored, 'base64') : Buffer.alloc(0);
    if (salt.length < 16 || salt.length > 64) {
      throw new RegauthError(
        'ERR_INVALID_CONFIG',
        `the Redis key ${this.saltKey} holds no regauth key salt; delete it (the next worker writes a new one) or choose another prefix`,
      );
    }
    return salt;
  }

  async loadToken(key: string): Promise<TokenInfo | undefined> {
    const redisKey = this.#tokenKey(key);
    const stored = this.#open(redisKey, await this.#command(['GET', redisKey]));
    if (
      stored === undefined ||
      typeof stored.token !== 'string' ||
      typeof stored.expiresAt !== 'number' ||
      stored.expiresAt <= this.#now()
    ) {
      return undefined;
    }
    return { token: stored.token, expiresAt: stored.expiresAt };
  }

  async saveToken(key: string, registry: string, token: TokenInfo): Promise<void> {
    const ttl = Math.floor(token.expiresAt - this.#now());
    if (!(ttl > 0)) return;
    const redisKey = this.#tokenKey(key);
    const stored: Omit<StoredToken, 'v'> = { r: registry, token: token.token, expiresAt: token.expiresAt };
    const value = this.#seal(redisKey, stored);
    if (value.length > MAX_VALUE_BYTES) return;
    // PX: Redis drops the token when it expires; it never outlives what the realm granted.
    await this.#command(['SET', redisKey, value, 'PX', String(ttl)]);
  }

  async loadChallenge(origin: string): Promise<Challenge | undefined> {
    const redisKey = this.#challengeKey(origin);
    const stored = this.#open(redisKey, await this.#command(['GET', redisKey]));
    if (stored === undefined || stored.origin !== origin || !isChallenge(stored.challenge)) return undefined;
    return { scheme: stored.challenge.scheme, params: { ...stored.challenge.params } };
  }

  async saveChallenge(origin: string, challenge: Challenge): Promise<void> {
    const redisKey = this.#challengeKey(origin);
    const value = this.#seal(redisKey, { origin, challenge });
    if (value.length > MAX_VALUE_BYTES) return;
    await this.#command(['SET', redisKey, value, 'PX', String(REGISTRY_FACTS_TTL_MS)]);
  }

  async forgetChallenge(origin: string): Promise<void> {
    await this.#command(['DEL', this.#challengeKey(origin), this.#scopesKey(origin)]);
  }

  async loadScopeNames(origin: string, requested: string): Promise<readonly string[] | undefined> {
    const redisKey = this.#scopesKey(origin);
    const field = digest(requested);
    const stored = this.#open(`${redisKey}/${field}`, await this.#command(['HGET', redisKey, field]));
    if (
      stored === undefined ||
      stored.requested !== requested ||
      !Array.isArray(stored.named) ||
      !stored.named.every((s) => typeof s === 'string')
    ) {
      return undefined;
    }
    return stored.named as string[];
  }

  async saveScopeNames(origin: string, requested: string, named: readonly string[]): Promise<void> {
    const redisKey = this.#scopesKey(origin);
    const field = digest(requested);
    const value = this.#seal(`${redisKey}/${field}`, { requested, named: [...named] });
    if (value.length > MAX_VALUE_BYTES) return;
    await this.#command([
      'EVAL',
      SAVE_SCOPE_NAMES_LUA,
      '1',
      redisKey,
      field,
      value,
      String(MAX_SCOPE_NAMES_PER_ORIGIN),
      String(REGISTRY_FACTS_TTL_MS),
    ]);
  }

  /**
   * Drops every token issued for a registry, and the challenges and scope names of its origins
   * (a logout: every worker asks afresh). Returns how many tokens. Unlike the cache's own calls,
   * this one rejects when Redis fails: a logout that did not happen must not look as if it had.
   *
   * loadToken is told the cache key only, not the registry, so a token's Redis key cannot carry
   * its registry; and an index set per registry would cost a second write per token and collect
   * the keys of expired tokens. So saving stays one SET, and logout (rare) pays instead: it walks
   * the `token:` keys with SCAN, reads each batch with one MGET and deletes those whose value
   * names the registry. SCAN walks one node: on Redis Cluster, log out on each primary.
   */
  async forgetRegistry(registry: string, origins: readonly string[] = []): Promise<number> {
    const match = `${this.#prefix.replace(/[*?[\]\\]/g, '\\$&')}token:*`;
    let cursor = '0';
    let removed = 0;
    for (let round = 0; round < MAX_SCAN_ROUNDS; round++) {
      const reply = await this.#command(['SCAN', cursor, 'MATCH', match, 'COUNT', String(SCAN_COUNT)]);
      if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !Array.isArray(reply[1])) {
        throw new RegauthError(
          'ERR_NETWORK',
          'Redis answered SCAN with something other than a cursor and keys; is the client a Redis client?',
        );
      }
      const keys = (reply[1] as unknown[]).filter((k): k is string => typeof k === 'string');
      if (keys.length > 0) {
        const values = await this.#command(['MGET', ...keys]);
        const mine = keys.filter(
          (k, i) => this.#open(k, Array.isArray(values) ? values[i] : undefined)?.r === registry,
        );
        if (mine.length > 0) removed += Number(await this.#command(['DEL', ...mine])) || 0;
      }
      cursor = reply[0];
      if (cursor === '0') break;
    }
    for (const origin of origins) await this.forgetChallenge(origin);
    return removed;
  }
}
