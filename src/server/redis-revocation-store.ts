import { randomUUID } from 'node:crypto';
import { RegauthError } from '../errors/regauth-error.js';
import { MAX_REVOCATIONS, type Revocation, type RevocationStore } from './revocation-store.js';
import type { SharedStore, StoreScript } from './shared-store.js';

/**
 * How often a replica reads the revocations again besides listening for them: a published one
 * it missed (its subscriber was reconnecting) or one Redis lost is caught up with within this.
 * A cheap check (one small GET) unless something changed.
 */
export const REVOCATION_RESYNC_MS = 2_000;

/**
 * Records the later of the epoch given and the one in force, drops entries past their keep
 * time, keeps the hash until its newest entry expires, sets a new generation and publishes the
 * epoch. KEYS: the hash (field: account, value: epoch in ms), the generation. ARGV: account,
 * epoch, now, keep (ms), channel, the new generation: a random id rather than a counter, which
 * a Redis restarted empty would count again from 1, so a replica could take a changed hash for
 * the one it read. Returns the epoch in force.
 */
const REVOKE: StoreScript = {
  name: 'regauthRevoke',
  keys: 2,
  lua: `
local now = tonumber(ARGV[3])
local keep = tonumber(ARGV[4])
local epoch = tonumber(ARGV[2])
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '')
if current and current + keep > now and current > epoch then epoch = current end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local e = tonumber(all[i + 1])
  if not e or e + keep <= now then redis.call('HDEL', KEYS[1], all[i]) end
end
local text = string.format('%.0f', epoch)
if epoch + keep > now then
  redis.call('HSET', KEYS[1], ARGV[1], text)
  local ttl = math.ceil(epoch + keep - now)
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
end
redis.call('SET', KEYS[2], ARGV[6], 'PX', keep)
redis.call('PUBLISH', ARGV[5], text .. ' ' .. ARGV[1])
return text
`,
};

/**
 * Reads the generation and, when it is not the one this replica last read, the whole hash.
 * KEYS: the hash, the generation. ARGV: the generation last read ('' for none).
 */
const SYNC: StoreScript = {
  name: 'regauthRevocationSync',
  keys: 2,
  lua: `
local gen = redis.call('GET', KEYS[2]) or ''
if gen == ARGV[1] then return {gen} end
return {gen, redis.call('HGETALL', KEYS[1])}
`,
};

/** Options of createRedisRevocationStore. */
export interface RedisRevocationStoreOptions {
  /**
   * How long an entry is kept after its epoch, in ms: the refresh tokens' lifetime. A function
   * is asked at each use (a reload may lengthen the lifetime).
   */
  readonly keepMs: number | (() => number);
  /** Left out: MAX_REVOCATIONS (the local mirror's size). */
  readonly maxEntries?: number;
  /** The clock, in milliseconds since the epoch. Left out: Date.now. */
  readonly now?: () => number;
  /**
   * Keep a local mirror current (subscription and periodic re-sync). False for a one-shot
   * writer such as `regauth serve revoke`. Left out: true.
   */
  readonly mirror?: boolean;
  /** Left out: REVOCATION_RESYNC_MS. */
  readonly resyncMs?: number;
}

/** A RevocationStore in Redis, with the promise that the mirror has read Redis once (or tried). */
export interface RedisRevocationStore extends RevocationStore {
  /** Resolves once the first read of Redis is over, whether or not Redis answered. */
  readonly ready: Promise<void>;
}

/**
 * Revocation epochs every replica on the same store shares. Redis holds one hash,
 * `<prefix>revocations` (account → epoch in ms), kept until its newest entry's refresh tokens
 * have expired; `<prefix>revocations:gen` changes with each, and each revocation is published on
 * the channel `<prefix>revocations`.
 *
 * Account names are written plainly, not as keyed digests like the login counters: only an
 * admin holding the bearer secret writes here, for accounts that exist (no stranger's typo of a
 * password ends up in Redis, as it could with failed logins); `GET /revocations` must name them;
 * `regauth serve revoke` must be able to write without the signing key; and a digest derived from
 * the signing key would change with it, so a key rotation would silently forget revocations.
 *
 * Every replica answers `revokedBefore` from a local mirror, filled at start-up, updated by the
 * subscription within milliseconds, and read again every REVOCATION_RESYNC_MS (cheaply: only
 * when the generation moved). The mirror only ever takes later epochs and forgets an entry only
 * when its keep time is over, so a Redis that is down or restarted empty brings no token back
 * on a replica that knew of the revocation. Recording one needs Redis: when it does not answer,
 * `revoke` rejects with ERR_NETWORK (the admin endpoint answers 503) and records nothing.
 */
export function createRedisRevocationStore(
  store: SharedStore,
  options: RedisRevocationStoreOptions,
): RedisRevocationStore {
  const now = options.now ?? Date.now;
  const keepOption = options.keepMs;
  const keepMs = typeof keepOption === 'function' ? keepOption : () => keepOption;
  const maxEntries = Math.max(1, options.maxEntries ?? MAX_REVOCATIONS);
  const hashKey = `${store.prefix}revocations`;
  const genKey = `${store.prefix}revocations:gen`;
  const channel = `${store.prefix}revocations`;
  const entries = new Map<string, number>();
  /** As in createMemoryRevocationStore: an entry pushed out of a full mirror becomes a floor for all. */
  let floor = Number.NEGATIVE_INFINITY;
  let lastGen = '';
  let closed = false;

  const live = (beforeMs: number, at: number) => beforeMs + keepMs() > at;
  const merge = (account: string, beforeMs: number): void => {
    if (!Number.isFinite(beforeMs) || !live(beforeMs, now())) return;
    const known = entries.get(account);
    if (known !== undefined && known >= beforeMs) return;
    entries.delete(account);
    while (entries.size >= maxEntries) {
      const oldest = entries.entries().next();
      if (oldest.done) break;
      entries.delete(oldest.value[0]);
      floor = Math.max(floor, oldest.value[1]);
    }
    entries.set(account, beforeMs);
  };
  const revokedBefore = (account: string): number | undefined => {
    const at = now();
    let epoch = entries.get(account);
    if (epoch !== undefined && !live(epoch, at)) {
      entries.delete(account);
      epoch = undefined;
    }
    const floorNow = live(floor, at) ? floor : undefined;
    if (epoch === undefined) return floorNow;
    return floorNow === undefined ? epoch : Math.max(epoch, floorNow);
  };

  let syncing: Promise<void> | undefined;
  const sync = (): Promise<void> => {
    syncing ??= (async () => {
      const raw = await store.run('revocation_sync', (client) =>
        client.script(SYNC, [hashKey, genKey], [lastGen]),
      );
      if (!Array.isArray(raw) || typeof raw[0] !== 'string') return;
      const pairs = raw[1];
      if (Array.isArray(pairs)) {
        for (let i = 0; i + 1 < pairs.length; i += 2) {
          const account = pairs[i];
          if (typeof account === 'string') merge(account, Number(pairs[i + 1]));
        }
      }
      lastGen = raw[0];
    })().finally(() => {
      syncing = undefined;
    });
    return syncing;
  };

  const mirror = options.mirror ?? true;
  let unsubscribe = () => {};
  let timer: NodeJS.Timeout | undefined;
  if (mirror) {
    unsubscribe = store.subscribe(
      channel,
      (message) => {
        const space = message.indexOf(' ');
        if (space > 0) merge(message.slice(space + 1), Number(message.slice(0, space)));
      },
      () => {
        // (Re)subscribed: messages sent meanwhile are lost, and Redis may have restarted: read all.
        lastGen = '';
        void sync();
      },
    );
    timer = setInterval(() => void sync(), options.resyncMs ?? REVOCATION_RESYNC_MS);
    timer.unref();
  }
  const ready = mirror ? sync() : Promise.resolve();

  return {
    ready,
    async revoke(account, beforeMs) {
      if (closed) throw new RegauthError('ERR_REFUSED', 'the revocation store is closed');
      const answer = await store.run('revoke', (client) =>
        client.script(
          REVOKE,
          [hashKey, genKey],
          [account, Math.round(beforeMs), now(), keepMs(), channel, randomUUID()],
        ),
      );
      const epoch = typeof answer === 'string' ? Number(answer) : Number.NaN;
      if (!Number.isFinite(epoch)) {
        throw new RegauthError(
          'ERR_NETWORK',
          `the revocation of ${account} was not recorded: Redis (${store.description}) did not answer; nothing changed, try again once it is reachable (/healthz shows it)`,
        );
      }
      merge(account, epoch);
      return { account, beforeMs: epoch, untilMs: epoch + keepMs() };
    },
    revokedBefore,
    list(): readonly Revocation[] {
      const at = now();
      for (const [account, beforeMs] of entries) if (!live(beforeMs, at)) entries.delete(account);
      return [...entries].map(([account, beforeMs]) => ({ account, beforeMs, untilMs: beforeMs + keepMs() }));
    },
    async close() {
      closed = true;
      clearInterval(timer);
      unsubscribe();
      entries.clear();
    },
  };
}
