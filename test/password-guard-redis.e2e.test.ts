import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../src/server/authenticator.js';
import { KeyedDigest } from '../src/server/keyed-digest.js';
import { PasswordGuard } from '../src/server/password-guard.js';
import { RedisLoginCounters } from '../src/server/redis-login-counters.js';
import {
  createRedisStore,
  type SharedStore,
  STORE_RETRY_MS,
  type StoreObserver,
  type StoreResult,
} from '../src/server/shared-store.js';
import { checkStoreConfig } from '../src/server/store-config.js';
import { type RedisHandle, startRedis } from './harness/redis.js';

const fail = (path: string, why: string): never => {
  throw new Error(`${path}: ${why}`);
};

/** Counts every store command by operation and result. */
function countingObserver() {
  const seen: { operation: string; result: StoreResult }[] = [];
  const observer: StoreObserver = {
    observeStore(operation, result, seconds) {
      if (seconds !== undefined) seen.push({ operation, result });
    },
    setStoreUp() {},
  };
  return { observer, seen };
}

const limits = {
  loginFailures: 3,
  loginWindow: 300,
  backoffMaxSeconds: 300,
  addressFailures: 100,
};

describe('PasswordGuard over a Redis that stops answering (real redis-server)', () => {
  let redis: RedisHandle;
  const stores: SharedStore[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    redis?.resume();
    for (const store of stores) await store.close();
    await redis?.stop();
  });

  it('adds at most one store timeout to a request whose password check outlasts the retry pause', async () => {
    const { observer, seen } = countingObserver();
    const config = checkStoreConfig({ url: redis.url, timeout: 0.3, prefix: 'one-timeout:' }, 'store', fail);
    if (config === undefined) throw new Error('no store');
    const store = await createRedisStore(config, { observer });
    stores.push(store);
    const digest = new KeyedDigest(Buffer.alloc(32, 3));
    let checks = 0;
    // Slower than the pause after which the store is tried again: the failure is recorded after it.
    const slow: Authenticator = {
      kind: 'ext_auth',
      async authenticate() {
        checks++;
        await new Promise((r) => setTimeout(r, STORE_RETRY_MS + 400));
        return { outcome: 'refused' };
      },
    };
    const guard = new PasswordGuard({
      authenticators: () => [slow],
      cacheSeconds: 60,
      ...limits,
      passwordChecks: 4,
      passwordQueue: 8,
      checksPerAddress: 4,
      digest,
      counters: new RedisLoginCounters(store, digest, { ...limits, maxEntries: 1000 }),
    });
    expect(await guard.authenticate('alice', 'wrong-1', '127.0.0.1')).toEqual({
      ok: false,
      reason: 'invalid',
    });
    // One read of the waits, the user's failure charged before the check, the address's after it.
    expect(seen.map((s) => `${s.operation}:${s.result}`)).toEqual([
      'login_waits:ok',
      'login_attempt:ok',
      'login_failure:ok',
    ]);

    redis.pause();
    seen.length = 0;
    expect(await guard.authenticate('alice', 'wrong-2', '127.0.0.1')).toEqual({
      ok: false,
      reason: 'invalid',
    });
    expect(checks).toBe(2);
    // The read timed out; the failure went to this replica's own counters, not to a second wait.
    expect(seen.filter((s) => s.result !== 'ok')).toHaveLength(1);
    expect(seen.map((s) => `${s.operation}:${s.result}`)).toEqual(['login_waits:timeout']);

    // The next request, after the pause, tries Redis once more: again one timeout and no more.
    seen.length = 0;
    expect(await guard.authenticate('alice', 'wrong-3', '127.0.0.1')).toEqual({
      ok: false,
      reason: 'invalid',
    });
    expect(seen.map((s) => `${s.operation}:${s.result}`)).toEqual(['login_waits:timeout']);
    expect(checks).toBe(3);

    redis.resume();
  }, 60_000);
});
