import { budgetLevel, budgetRetryAfter } from './address-budget.js';
import type { KeyedDigest } from './keyed-digest.js';
import {
  type LoginCounterLimits,
  type LoginCounters,
  type LoginWaits,
  MemoryLoginCounters,
} from './login-counters.js';
import type { SharedStore, StoreScript } from './shared-store.js';
import { backoffRetryAfter } from './user-backoff.js';

/**
 * Reads a user's back-off and an address's budget in one command. Fields: `f` failures, `l` the
 * last failure, `v` the bucket's level, `t` when it was last charged, `x` when the entry expires
 * (ms since the epoch). `x` is read rather than trusted to Redis's own expiry so that every
 * replica applies the maths of the in-process tables at its own clock.
 */
const WAITS: StoreScript = {
  name: 'regauthLoginWaits',
  keys: 2,
  lua: `
local u = {false, false, false}
if ARGV[1] == '1' then u = redis.call('HMGET', KEYS[1], 'f', 'l', 'x') end
local a = redis.call('HMGET', KEYS[2], 'v', 't', 'x')
return {u[1], u[2], u[3], a[1], a[2], a[3]}
`,
};

/**
 * Records a failure for user and address atomically: the same maths as UserBackoff.recordFailure
 * and AddressBudget.charge (backoffDelayMs: BACKOFF_START_S = 1 doubling, capped), numbers kept
 * with 17 significant digits so a double survives the trip. PEXPIRE only collects garbage.
 */
const RECORD: StoreScript = {
  name: 'regauthLoginFailure',
  keys: 2,
  lua: `
local now = tonumber(ARGV[1])
local function num(x) return string.format('%.17g', x) end
if ARGV[2] == '1' then
  local free = tonumber(ARGV[3])
  local quiet = tonumber(ARGV[4])
  local max = tonumber(ARGV[5])
  local e = redis.call('HMGET', KEYS[1], 'f', 'x')
  local f = 0
  if e[1] and e[2] and tonumber(e[2]) > now then f = tonumber(e[1]) end
  f = f + 1
  local delay = 0
  if f - free > 0 then delay = math.min(2 ^ math.min(f - free - 1, 30), max) * 1000 end
  local x = now + delay + quiet * 1000
  redis.call('HSET', KEYS[1], 'f', num(f), 'l', num(now), 'x', num(x))
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(x - now)))
end
local cap = tonumber(ARGV[6])
if cap > 0 then
  local rate = cap / (tonumber(ARGV[7]) * 1000)
  local e = redis.call('HMGET', KEYS[2], 'v', 't', 'x')
  local level = 0
  if e[1] and e[2] and e[3] and tonumber(e[3]) > now then
    -- A level charged under a larger budget (before a reload lowered it) counts as a full one.
    level = math.max(0, math.min(cap, tonumber(e[1])) - (now - tonumber(e[2])) * rate)
  end
  level = math.min(cap, level + 1)
  local x = now + math.ceil(level / rate)
  redis.call('HSET', KEYS[2], 'v', num(level), 't', num(now), 'x', num(x))
  redis.call('PEXPIRE', KEYS[2], math.max(1, math.ceil(x - now)))
end
return 1
`,
};

/**
 * Checks both waits and, when neither holds, charges one failure to both, in one atomic step:
 * the maths of WAITS (read in JS there) and RECORD together, so concurrent guesses at any
 * replica each see the charges of the others. ARGV: now, count the user ('1'), ignore the
 * user's back-off ('1'), free failures, quiet seconds, max back-off seconds, address budget,
 * its window. Returns {what, seconds}: 'ok' (charged), 'user' (only the address charged) or
 * 'address' (nothing charged).
 */
const ATTEMPT: StoreScript = {
  name: 'regauthLoginAttempt',
  keys: 2,
  lua: `
local now = tonumber(ARGV[1])
local function num(x) return string.format('%.17g', x) end
local cap = tonumber(ARGV[7])
local rate = 0
local level = 0
if cap > 0 then
  rate = cap / (tonumber(ARGV[8]) * 1000)
  local e = redis.call('HMGET', KEYS[2], 'v', 't', 'x')
  if e[1] and e[2] and e[3] and tonumber(e[3]) > now then
    level = math.max(0, tonumber(e[1]) - (now - tonumber(e[2])) * rate)
  end
  local excess = level - (cap - 1)
  if excess > 0 then return {'address', math.max(1, math.ceil(excess / rate / 1000))} end
end
local function chargeAddress()
  if cap <= 0 then return end
  level = math.min(cap, level + 1)
  local x = now + math.ceil(level / rate)
  redis.call('HSET', KEYS[2], 'v', num(level), 't', num(now), 'x', num(x))
  redis.call('PEXPIRE', KEYS[2], math.max(1, math.ceil(x - now)))
end
if ARGV[2] == '1' then
  local free = tonumber(ARGV[4])
  local quiet = tonumber(ARGV[5])
  local max = tonumber(ARGV[6])
  local e = redis.call('HMGET', KEYS[1], 'f', 'l', 'x')
  local f = 0
  local l = 0
  if e[1] and e[2] and e[3] and tonumber(e[3]) > now then
    f = tonumber(e[1])
    l = tonumber(e[2])
  end
  local function delay(n)
    if n - free <= 0 then return 0 end
    return math.min(2 ^ math.min(n - free - 1, 30), max) * 1000
  end
  if ARGV[3] ~= '1' then
    local untilMs = l + delay(f)
    if untilMs > now then
      chargeAddress()
      return {'user', math.ceil((untilMs - now) / 1000)}
    end
  end
  f = f + 1
  local x = now + delay(f) + quiet * 1000
  redis.call('HSET', KEYS[1], 'f', num(f), 'l', num(now), 'x', num(x))
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(x - now)))
end
return {'ok', 0}
`,
};

/**
 * Takes back a charge of ATTEMPT (UserBackoff.refund and AddressBudget.refund). ARGV: now,
 * refund the user ('1'), free failures, quiet seconds, max back-off seconds, refund the
 * address ('1'), address budget, its window.
 */
const REFUND: StoreScript = {
  name: 'regauthLoginRefund',
  keys: 2,
  lua: `
local now = tonumber(ARGV[1])
local function num(x) return string.format('%.17g', x) end
if ARGV[2] == '1' then
  local free = tonumber(ARGV[3])
  local max = tonumber(ARGV[5])
  local e = redis.call('HMGET', KEYS[1], 'f', 'l', 'x')
  if e[1] and e[2] and e[3] and tonumber(e[3]) > now then
    local f = tonumber(e[1]) - 1
    local l = tonumber(e[2])
    if f <= 0 then
      redis.call('DEL', KEYS[1])
    else
      local d = 0
      if f - free > 0 then d = math.min(2 ^ math.min(f - free - 1, 30), max) * 1000 end
      local x = l + d + tonumber(ARGV[4]) * 1000
      redis.call('HSET', KEYS[1], 'f', num(f), 'x', num(x))
      redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(x - now)))
    end
  end
end
local cap = tonumber(ARGV[7])
if ARGV[6] == '1' and cap > 0 then
  local rate = cap / (tonumber(ARGV[8]) * 1000)
  local e = redis.call('HMGET', KEYS[2], 'v', 't', 'x')
  if e[1] and e[2] and e[3] and tonumber(e[3]) > now then
    local level = math.max(0, tonumber(e[1]) - (now - tonumber(e[2])) * rate - 1)
    if level <= 0 then
      redis.call('DEL', KEYS[2])
    else
      local x = now + math.ceil(level / rate)
      redis.call('HSET', KEYS[2], 'v', num(level), 't', num(now), 'x', num(x))
      redis.call('PEXPIRE', KEYS[2], math.max(1, math.ceil(x - now)))
    end
  end
end
return 1
`,
};

/**
 * Failed-login counters in Redis, shared by every replica that uses the same store and derives
 * the same KeyedDigest (createTokenHandler derives it from the signing key when the store is
 * Redis). Keys: `<prefix>login:user:<digest of the name>` and `<prefix>login:addr:<digest of
 * the address key>`: neither a name nor an address is written to Redis.
 *
 * Every failure is also counted in this process, and a wait is the longer of the two: when Redis
 * is skipped (unreachable, slow) logins go on against this replica's own counts, and a Redis
 * that restarts empty forgets nothing this replica saw.
 */
export class RedisLoginCounters implements LoginCounters {
  readonly #store: SharedStore;
  readonly #digest: KeyedDigest;
  #limits: LoginCounterLimits;
  readonly #local: MemoryLoginCounters;
  readonly #now: () => number;

  constructor(
    store: SharedStore,
    digest: KeyedDigest,
    limits: LoginCounterLimits & { readonly maxEntries: number; readonly now?: () => number },
  ) {
    this.#store = store;
    this.#digest = digest;
    this.#limits = limits;
    this.#local = new MemoryLoginCounters(limits);
    this.#now = limits.now ?? Date.now;
  }

  #keys(userKey: string | undefined, addressKey: string): [string, string] {
    const prefix = this.#store.prefix;
    return [`${prefix}login:user:${userKey ?? '-'}`, `${prefix}login:addr:${this.#digest.key(addressKey)}`];
  }

  async waits(userKey: string | undefined, addressKey: string): Promise<LoginWaits> {
    const local = this.#local.waits(userKey, addressKey);
    const countUser = userKey !== undefined && this.#limits.loginFailures > 0;
    if (!countUser && this.#limits.addressFailures <= 0) return local;
    const raw = await this.#store.run('login_waits', (client) =>
      client.script(WAITS, this.#keys(userKey, addressKey), [countUser ? '1' : '0']),
    );
    if (!Array.isArray(raw)) return { ...local, local: true };
    const now = this.#now();
    const [f, l, ux, v, t, ax] = (raw as unknown[]).map((x) =>
      typeof x === 'string' ? Number(x) : undefined,
    );
    const backoffOptions = {
      freeFailures: this.#limits.loginFailures,
      maxSeconds: this.#limits.backoffMaxSeconds,
    };
    const user =
      countUser && f !== undefined && l !== undefined && ux !== undefined && ux > now
        ? backoffRetryAfter({ failures: f, last: l }, backoffOptions, now)
        : 0;
    const budget = { failures: this.#limits.addressFailures, windowSeconds: this.#limits.loginWindow };
    const rate = budget.failures / (budget.windowSeconds * 1000);
    const address =
      budget.failures > 0 && v !== undefined && t !== undefined && ax !== undefined && ax > now
        ? budgetRetryAfter(budgetLevel({ level: v, at: t }, rate, now, budget.failures), budget)
        : 0;
    return { user: Math.max(user, local.user), address: Math.max(address, local.address) };
  }

  async recordFailure(userKey: string | undefined, addressKey: string, localOnly = false): Promise<void> {
    this.#local.recordFailure(userKey, addressKey);
    const countUser = userKey !== undefined && this.#limits.loginFailures > 0;
    if (localOnly || (!countUser && this.#limits.addressFailures <= 0)) return;
    await this.#store.run('login_failure', (client) =>
      client.script(RECORD, this.#keys(userKey, addressKey), [
        this.#now(),
        countUser ? '1' : '0',
        this.#limits.loginFailures,
        this.#limits.loginWindow,
        this.#limits.backoffMaxSeconds,
        this.#limits.addressFailures,
        this.#limits.loginWindow,
      ]),
    );
  }

  async attempt(
    userKey: string | undefined,
    addressKey: string,
    ignoreUser: boolean,
    localOnly = false,
  ): Promise<LoginWaits> {
    const countUser = userKey !== undefined && this.#limits.loginFailures > 0;
    if (localOnly || (!countUser && this.#limits.addressFailures <= 0)) {
      return {
        ...this.#local.attempt(userKey, addressKey, ignoreUser),
        ...(localOnly ? { local: true } : {}),
      };
    }
    const raw = await this.#store.run('login_attempt', (client) =>
      client.script(ATTEMPT, this.#keys(userKey, addressKey), [
        this.#now(),
        countUser ? '1' : '0',
        ignoreUser ? '1' : '0',
        this.#limits.loginFailures,
        this.#limits.loginWindow,
        this.#limits.backoffMaxSeconds,
        this.#limits.addressFailures,
        this.#limits.loginWindow,
      ]),
    );
    if (!Array.isArray(raw)) return { ...this.#local.attempt(userKey, addressKey, ignoreUser), local: true };
    const [what, seconds] = raw as [unknown, unknown];
    const wait = Math.max(1, Number(seconds) || 0);
    // This replica's own counters follow what Redis charged: they answer if Redis goes away.
    if (what === 'address') return { user: 0, address: wait };
    if (what === 'user') {
      this.#local.recordFailure(undefined, addressKey);
      return { user: wait, address: 0 };
    }
    if (userKey !== undefined) this.#local.chargeUser(userKey);
    return { user: 0, address: 0 };
  }

  async refund(
    userKey: string | undefined,
    addressKey: string | undefined,
    localOnly = false,
  ): Promise<void> {
    this.#local.refund(userKey, addressKey);
    const user = userKey !== undefined && this.#limits.loginFailures > 0;
    const address = addressKey !== undefined && this.#limits.addressFailures > 0;
    if (localOnly || (!user && !address)) return;
    await this.#store.run('login_refund', (client) =>
      client.script(REFUND, this.#keys(userKey, addressKey ?? ''), [
        this.#now(),
        user ? '1' : '0',
        this.#limits.loginFailures,
        this.#limits.loginWindow,
        this.#limits.backoffMaxSeconds,
        address ? '1' : '0',
        this.#limits.addressFailures,
        this.#limits.loginWindow,
      ]),
    );
  }

  sizes(): { backoffUsers: number; addressBudgets: number } {
    return this.#local.sizes();
  }

  sweep(): void {
    this.#local.sweep();
  }

  setLimits(limits: LoginCounterLimits): void {
    this.#limits = { ...this.#limits, ...limits };
    this.#local.setLimits(limits);
  }
}
