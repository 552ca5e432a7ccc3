import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyedDigest } from '../src/server/keyed-digest.js';
import { type LoginCounterLimits, MemoryLoginCounters } from '../src/server/login-counters.js';
import { RedisLoginCounters } from '../src/server/redis-login-counters.js';
import type { ServerLogEntry } from '../src/server/server-log-entry.js';
import { createRedisStore, type SharedStore, STORE_RETRY_MS } from '../src/server/shared-store.js';
import { checkStoreConfig } from '../src/server/store-config.js';
import { type RedisHandle, startRedis } from './harness/redis.js';

const fail = (path: string, why: string): never => {
  throw new Error(`${path}: ${why}`);
};

function storeConfig(url: string, extra: Record<string, unknown> = {}) {
  const checked = checkStoreConfig({ url, timeout: 0.5, ...extra }, 'store', fail);
  if (checked === undefined) throw new Error('no store');
  return checked;
}

/** A deterministic sequence of numbers in [0, 1) (a linear congruential generator). */
function sequence(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} within ${timeoutMs} ms`);
}

describe('Redis login counters (real redis-server)', () => {
  let redis: RedisHandle;
  const stores: SharedStore[] = [];
  const digest = new KeyedDigest(Buffer.alloc(32, 7));

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const store of stores) await store.close();
    await redis?.stop();
  });

  const openStore = async (prefix: string, log?: (entry: ServerLogEntry) => void, now?: () => number) => {
    const store = await createRedisStore(storeConfig(redis.url, { prefix }), {
      ...(log === undefined ? {} : { log }),
      ...(now === undefined ? {} : { now }),
    });
    stores.push(store);
    return store;
  };

  it('answers what the in-process counters answer, for the same sequence, read at another replica', async () => {
    let clock = 1_700_000_000_000;
    const now = () => clock;
    const limits: LoginCounterLimits & { maxEntries: number; now: () => number } = {
      loginFailures: 2,
      loginWindow: 20,
      backoffMaxSeconds: 8,
      addressFailures: 5,
      maxEntries: 1000,
      now,
    };
    const memory = new MemoryLoginCounters(limits);
    const store = await openStore('same-maths:', undefined, now);
    // One replica records, another (whose own counters stay empty) reads: its answers are Redis's.
    const writer = new RedisLoginCounters(store, digest, limits);
    const reader = new RedisLoginCounters(store, digest, limits);
    const random = sequence(12);
    const users = ['alice', 'bob', undefined];
    const addresses = ['127.0.0.1', '::1'];
    let nonZero = 0;
    for (let step = 0; step < 400; step++) {
      const user = users[Math.floor(random() * users.length)];
      const address = addresses[Math.floor(random() * addresses.length)] as string;
      const userKey = user === undefined ? undefined : digest.key(user);
      if (random() < 0.5) {
        memory.recordFailure(userKey, address);
        await writer.recordFailure(userKey, address);
      } else {
        const expected = memory.waits(userKey, address);
        expect(await reader.waits(userKey, address), `step ${step}`).toEqual(expected);
        if (expected.user > 0 || expected.address > 0) nonZero++;
      }
      // Steps of up to 2.5 s: back-offs and budgets both start, run out and start over.
      clock += Math.floor(random() * 2500);
    }
    // The sequence exercised lock-outs, not only empty answers.
    expect(nonZero).toBeGreaterThan(40);
    expect(store.health()).toBe('up');
  });

  it('keeps neither a user name nor an address in Redis, and lets the keys expire', async () => {
    const limits = {
      loginFailures: 1,
      loginWindow: 1,
      backoffMaxSeconds: 1,
      addressFailures: 3,
      maxEntries: 100,
    };
    const store = await openStore('expiry:');
    const counters = new RedisLoginCounters(store, digest, limits);
    await counters.recordFailure(digest.key('alice'), '127.0.0.9');
    await counters.recordFailure(digest.key('alice'), '127.0.0.9');
    const other = new RedisLoginCounters(store, digest, limits);
    expect((await other.waits(digest.key('alice'), '127.0.0.9')).user).toBeGreaterThan(0);
    const raw = new Redis(redis.url, { lazyConnect: true });
    await raw.connect();
    try {
      const keys = await raw.keys('expiry:*');
      expect(keys.sort()).toEqual(
        [`expiry:login:addr:${digest.key('127.0.0.9')}`, `expiry:login:user:${digest.key('alice')}`].sort(),
      );
      expect(keys.join(' ')).not.toMatch(/alice|127\.0\.0\.9/);
      for (const key of keys) {
        const ttl = await raw.pttl(key);
        // The user's: its 1 s back-off and the 1 s window; the address's: its level's drain.
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(2000);
      }
      // Redis drops them on its own: nothing is left to sweep.
      await until(async () => (await raw.keys('expiry:*')).length === 0, 'the keys did not expire');
      expect(await other.waits(digest.key('alice'), '127.0.0.9')).toEqual({ user: 0, address: 0 });
    } finally {
      raw.disconnect();
    }
  });

  it('goes on with its own counters while Redis is down, and shares again once it is back', async () => {
    const limits = {
      loginFailures: 1,
      loginWindow: 60,
      backoffMaxSeconds: 60,
      addressFailures: 0,
      maxEntries: 100,
    };
    const logs: ServerLogEntry[] = [];
    const storeA = await openStore('outage:', (entry) => logs.push(entry));
    const storeB = await openStore('outage:');
    const a = new RedisLoginCounters(storeA, digest, limits);
    const b = new RedisLoginCounters(storeB, digest, limits);
    const carol = digest.key('carol');
    await redis.kill();
    // Each failure still counts here; the read falls back without an exception.
    await a.recordFailure(carol, '127.0.0.1');
    await a.recordFailure(carol, '127.0.0.1');
    expect((await a.waits(carol, '127.0.0.1')).user).toBeGreaterThan(0);
    expect(storeA.health()).toBe('unreachable');
    // B never saw them, and Redis is gone: B does not know.
    expect((await b.waits(carol, '127.0.0.1')).user).toBe(0);
    expect(logs.filter((e) => e.msg === 'store unreachable')).toHaveLength(1);

    await redis.restart();
    const dave = digest.key('dave');
    // Once the pause is over and the connection is back, a new failure at A is visible at B.
    await until(
      async () => {
        await new Promise((r) => setTimeout(r, STORE_RETRY_MS / 4));
        await a.recordFailure(dave, '127.0.0.1');
        return storeA.health() === 'up' && (await b.waits(dave, '127.0.0.1')).user > 0;
      },
      'counters did not resume on Redis',
      20_000,
    );
    expect(logs.some((e) => e.msg === 'store reachable again')).toBe(true);
  });

  it('waits at most one timeout for a Redis that stopped answering, then skips it for a while', async () => {
    const results: string[] = [];
    // The store's clock stands still while Redis is paused: its pause after a timeout never ends.
    let clock = Date.now();
    const store = await createRedisStore(storeConfig(redis.url, { prefix: 'slow:', timeout: 0.2 }), {
      observer: { observeStore: (_operation, result) => results.push(result), setStoreUp: () => {} },
      now: () => clock,
    });
    stores.push(store);
    const limits = {
      loginFailures: 1,
      loginWindow: 60,
      backoffMaxSeconds: 60,
      addressFailures: 3,
      maxEntries: 10,
    };
    const counters = new RedisLoginCounters(store, digest, limits);
    expect(await counters.waits(digest.key('frank'), '127.0.0.1')).toEqual({ user: 0, address: 0 });
    expect(results).toEqual(['ok']);
    redis.pause();
    try {
      // Answered from this process's counters once the timeout ran out; the failure still counts here.
      await counters.recordFailure(digest.key('frank'), '127.0.0.1');
      await counters.recordFailure(digest.key('frank'), '127.0.0.1');
      expect((await counters.waits(digest.key('frank'), '127.0.0.1')).user).toBeGreaterThan(0);
      // One command timed out; the others skipped Redis without waiting for it.
      expect(results).toEqual(['ok', 'timeout']);
      expect(store.health()).toBe('unreachable');
    } finally {
      redis.resume();
    }
    clock += STORE_RETRY_MS;
    await until(async () => {
      await new Promise((r) => setTimeout(r, 50));
      await counters.waits(digest.key('frank'), '127.0.0.1');
      return store.health() === 'up';
    }, 'the store did not come back');
  });

  it('speaks TLS to a rediss:// server whose CA it is given, and to none it cannot check', async () => {
    const secure = await startRedis({ tls: true });
    try {
      const trusted = await createRedisStore(storeConfig(secure.url, { ca: { file: secure.caFile } }));
      stores.push(trusted);
      expect(trusted.health()).toBe('up');
      expect(await trusted.run('ping', (client) => client.call('PING'))).toBe('PONG');
      const logs: ServerLogEntry[] = [];
      // Without the CA the certificate cannot be checked: no connection, and it says why.
      const untrusted = await createRedisStore(storeConfig(secure.url), { log: (entry) => logs.push(entry) });
      stores.push(untrusted);
      expect(untrusted.health()).toBe('unreachable');
      expect(await untrusted.run('ping', (client) => client.call('PING'))).toBeUndefined();
      expect(JSON.stringify(logs)).toMatch(/certificate/i);
    } finally {
      await secure.stop();
    }
  });

  it('never puts the Redis password in a log line', async () => {
    const guarded = await startRedis({ requirePassword: true });
    try {
      const password = guarded.password as string;
      const wrong = `${password}-wrong`;
      const logs: ServerLogEntry[] = [];
      const bad = await createRedisStore(storeConfig(guarded.url.replace('redis://', `redis://:${wrong}@`)), {
        log: (entry) => logs.push(entry),
      });
      stores.push(bad);
      const counters = new RedisLoginCounters(bad, digest, {
        loginFailures: 1,
        loginWindow: 60,
        backoffMaxSeconds: 60,
        addressFailures: 3,
        maxEntries: 10,
      });
      await counters.recordFailure(digest.key('erin'), '127.0.0.1');
      expect(bad.health()).toBe('unreachable');
      expect(logs.length).toBeGreaterThan(0);
      expect(JSON.stringify(logs)).not.toContain(wrong);
      expect(JSON.stringify(logs)).not.toContain(password);
      expect(bad.description).toBe(`redis://127.0.0.1:${guarded.port}/0`);

      const good = await createRedisStore(storeConfig(guarded.url, { password: () => password }));
      stores.push(good);
      expect(good.health()).toBe('up');
      expect(await good.run('ping', (client) => client.call('PING'))).toBe('PONG');
    } finally {
      await guarded.stop();
    }
  });
});
