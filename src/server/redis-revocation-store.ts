import { randomUUID } from 'node:crypto';
import { RegauthError } from '../errors/regauth-error.js';
import { ADMIN_CLOCK_SKEW_MS } from './admin-endpoint.js';
import { MAX_REVOCATIONS, type Revocation, type RevocationStore } from './revocation-store.js';
import type { SharedStore, StoreScript } from './shared-store.js';

/**
 * How often a replica reads the revocations again besides listening for them: a published one
 * it missed (its subscriber was reconnecting) or one Redis lost is caught up with within this.
 * A cheap check (one small GET) unless something changed.
 */
export const REVOCATION_RESYNC_MS = 2_000;

/**
 * Records the later of the epoch given and the one in force, each entry with its own expiry
 * (`epoch:until`, the later of the old and new until), so a writer with a shorter keep time
 * (`regauth serve revoke` under a config whose refresh lifetime is shorter than a reloaded
 * replica's) drops nothing another writer kept; drops entries past their own until; keeps the
 * hash and the generation until the last entry's until, so a replica that finds no generation
 * knows there is nothing to read; sets a new generation and publishes `epoch:until account`.
 * Refuses an epoch later than Redis's own clock (TIME) plus the skew allowed, and ignores stored
 * ones that are: a far-future epoch would make an account's refresh tokens unrevokable. An epoch
 * meaning "now" becomes at least Redis's now + 1 ms, so replicas whose clocks lag the recorder's
 * by S do not spare the tokens they issued in the last S: every such epoch reads one clock.
 * KEYS: the hash, the generation. ARGV: account, epoch, keep (ms), skew (ms), channel, the new
 * generation: a random id rather than a counter, which a Redis restarted empty would count again
 * from 1, so a replica could take a changed hash for the one it read; '1' when the epoch means
 * now. Returns `epoch:until` in force, or `future:<Redis time>` when refused.
 */
const REVOKE: StoreScript = {
  name: 'regauthRevoke',
  keys: 2,
  lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keep = tonumber(ARGV[3])
local latest = now + tonumber(ARGV[4])
local function parse(v)
  local e, u = string.match(v, '^(-?%d+):(-?%d+)$')
  if e then e = tonumber(e); u = tonumber(u) else e = tonumber(v); if e then u = e + keep end end
  if not e or e ~= e or u ~= u or e > latest then return nil end
  return e, u
end
local epoch = tonumber(ARGV[2])
if not epoch or epoch ~= epoch or epoch > latest then return 'future:' .. string.format('%.0f', now) end
if ARGV[7] == '1' and epoch <= now then epoch = now + 1 end
local untilMs = epoch + keep
local ce, cu = parse(redis.call('HGET', KEYS[1], ARGV[1]) or '')
if ce and cu > now then
  if ce > epoch then epoch = ce end
  if cu > untilMs then untilMs = cu end
end
local last = untilMs
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local e, u = parse(all[i + 1])
  if not e or u <= now then redis.call('HDEL', KEYS[1], all[i])
  elseif u > last then last = u end
end
local text = string.format('%.0f:%.0f', epoch, untilMs)
if untilMs > now then redis.call('HSET', KEYS[1], ARGV[1], text) end
local ttl = math.min(math.max(math.ceil(last - now), 1), 1e13)
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ttl)) end
redis.call('SET', KEYS[2], ARGV[6], 'PX', string.format('%.0f', ttl))
redis.call('PUBLISH', ARGV[5], text .. ' ' .. ARGV[1])
return text
`,
};

/**
 * Reads the generation and, when it is not the one this replica last read, the whole hash. A
 * missing generation (expired, or lost) or none read yet always reads the hash: it may still hold
 * entries. KEYS: the hash, the generation. ARGV: the generation last read ('' for none).
 */
const SYNC: StoreScript = {
  name: 'regauthRevocationSync',
  keys: 2,
  lua: `
local gen = redis.call('GET', KEYS[2]) or ''
if gen ~= '' and gen == ARGV[1] then return {gen} end
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
 * `<prefix>revocations` (account → `epoch:until` in ms, each entry kept until its own until, when
 * the refresh tokens it covers have expired), kept as long as its last entry, as is
 * `<prefix>revocations:gen`, which changes with each; each revocation is published on the channel
 * `<prefix>revocations`.
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
 * when its own until is over, so a Redis that is down or restarted empty brings no token back
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
  /** account → epoch and the entry's own expiry (the writer's keep time, at least ours). */
  const entries = new Map<string, { beforeMs: number; untilMs: number }>();
  /** As in createMemoryRevocationStore: an entry pushed out of a full mirror becomes a floor for all. */
  let floor = { beforeMs: Number.NEGATIVE_INFINITY, untilMs: Number.NEGATIVE_INFINITY };
  let lastGen = '';
  let closed = false;

  const live = (entry: { untilMs: number }, at: number) => entry.untilMs > at;
  /**
   * Takes `epoch:until` (or a bare epoch, until = epoch + keep). An epoch later than now plus the
   * skew allowed is ignored: stamped into refresh tokens, it would make them unrevokable.
   */
  const merge = (account: string, value: string): void => {
    const colon = value.indexOf(':');
    const beforeMs = Number(colon < 0 ? value : value.slice(0, colon));
    const at = now();
    if (value === '' || !Number.isFinite(beforeMs) || beforeMs > at + ADMIN_CLOCK_SKEW_MS) return;
    const given = colon < 0 ? beforeMs : Number(value.slice(colon + 1));
    const untilMs = Math.max(Number.isFinite(given) ? given : beforeMs, beforeMs + keepMs());
    if (!live({ untilMs }, at)) return;
    const known = entries.get(account);
    if (known !== undefined && known.beforeMs >= beforeMs && known.untilMs >= untilMs) return;
    const entry = {
      beforeMs: Math.max(beforeMs, known?.beforeMs ?? beforeMs),
      untilMs: Math.max(untilMs, known?.untilMs ?? untilMs),
    };
    entries.delete(account);
    while (entries.size >= maxEntries) {
      const oldest = entries.entries().next();
      if (oldest.done) break;
      entries.delete(oldest.value[0]);
      floor = {
        beforeMs: Math.max(floor.beforeMs, oldest.value[1].beforeMs),
        untilMs: Math.max(floor.untilMs, oldest.value[1].untilMs),
      };
    }
    entries.set(account, entry);
  };
  const revokedBefore = (account: string): number | undefined => {
    const at = now();
    let entry = entries.get(account);
    if (entry !== undefined && !live(entry, at)) {
      entries.delete(account);
      entry = undefined;
    }
    const floorNow = live(floor, at) ? floor.beforeMs : undefined;
    if (entry === undefined) return floorNow;
    return floorNow === undefined ? entry.beforeMs : Math.max(entry.beforeMs, floorNow);
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
          const value = pairs[i + 1];
          if (typeof account === 'string' && typeof value === 'string') merge(account, value);
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
        if (space > 0) merge(message.slice(space + 1), message.slice(0, space));
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
          [
            account,
            Math.round(beforeMs),
            keepMs(),
            ADMIN_CLOCK_SKEW_MS,
            channel,
            randomUUID(),
            // An epoch not before this clock's now means "now" (admin-endpoint.ts's checkBefore).
            beforeMs >= now() ? '1' : '0',
          ],
        ),
      );
      const text = typeof answer === 'string' ? answer : '';
      if (text.startsWith('future:')) {
        const redisNow = Number(text.slice('future:'.length));
        throw new RegauthError(
          'ERR_USAGE',
          `the revocation of ${account} was not recorded: its time ${new Date(beforeMs).toISOString()} is more than ${ADMIN_CLOCK_SKEW_MS / 1000} s ahead of Redis's clock (${Number.isFinite(redisNow) ? new Date(redisNow).toISOString() : 'unknown'}); check this machine's clock, or give an earlier time`,
        );
      }
      const colon = text.indexOf(':');
      const epoch = colon > 0 ? Number(text.slice(0, colon)) : Number.NaN;
      const untilMs = colon > 0 ? Number(text.slice(colon + 1)) : Number.NaN;
      if (!Number.isFinite(epoch) || !Number.isFinite(untilMs)) {
        throw new RegauthError(
          'ERR_NETWORK',
          `the revocation of ${account} was not recorded: Redis (${store.description}) did not answer; nothing changed, try again once it is reachable (/healthz shows it)`,
        );
      }
      merge(account, text);
      return { account, beforeMs: epoch, untilMs: Math.max(untilMs, epoch + keepMs()) };
    },
    revokedBefore,
    list(): readonly Revocation[] {
      const at = now();
      for (const [account, entry] of entries) if (!live(entry, at)) entries.delete(account);
      return [...entries].map(([account, { beforeMs, untilMs }]) => ({
        account,
        beforeMs,
        untilMs: Math.max(untilMs, beforeMs + keepMs()),
      }));
    },
    async close() {
      closed = true;
      clearInterval(timer);
      unsubscribe();
      entries.clear();
    },
  };
}
