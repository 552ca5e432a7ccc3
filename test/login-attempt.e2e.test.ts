import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyedDigest } from '../src/server/keyed-digest.js';
import { type LoginCounterLimits, MemoryLoginCounters } from '../src/server/login-counters.js';
import { RedisLoginCounters } from '../src/server/redis-login-counters.js';
import { createRedisStore, type SharedStore } from '../src/server/shared-store.js';
import { checkStoreConfig } from '../src/server/store-config.js';
import { type RedisHandle, startRedis } from './harness/redis.js';

const fail = (path: string, why: string): never => {
  throw new Error(`${path}: ${why}`);
};

/** A deterministic sequence of numbers in [0, 1) (a linear congruential generator). */
function sequence(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('login attempts charged before the check (real redis-server)', () => {
  let redis: RedisHandle;
  let store: SharedStore;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  it('charges, refuses and refunds in Redis as the in-process counters do, for the same sequence', async () => {
    let clock = 1_700_000_000_000;
    const now = () => clock;
    const limits: LoginCounterLimits & { maxEntries: number; now: () => number } = {
      loginFailures: 2,
      loginWindow: 20,
      backoffMaxSeconds: 8,
      addressFailures: 3,
      maxEntries: 1000,
      now,
    };
    const config = checkStoreConfig({ url: redis.url, timeout: 2, prefix: 'attempts:' }, 'store', fail);
    if (config === undefined) throw new Error('no store');
    store = await createRedisStore(config, { now });
    const memory = new MemoryLoginCounters(limits);
    const shared = new RedisLoginCounters(store, new KeyedDigest(Buffer.alloc(32, 9)), limits);
    const random = sequence(7);
    const users = ['alice', 'bob', undefined];
    const addresses = ['127.0.0.1', '::1'];
    const answers = { charged: 0, user: 0, address: 0, refunds: 0 };
    for (let step = 0; step < 300; step++) {
      const user = users[Math.floor(random() * users.length)];
      const address = addresses[Math.floor(random() * addresses.length)] as string;
      const roll = random();
      if (roll < 0.3) {
        answers.refunds++;
        memory.refund(user, address);
        await shared.refund(user, address);
      } else {
        const ignoreUser = roll > 0.9;
        const expected = memory.attempt(user, address, ignoreUser);
        expect(await shared.attempt(user, address, ignoreUser), `step ${step}`).toEqual(expected);
        if (expected.address > 0) answers.address++;
        else if (expected.user > 0) answers.user++;
        else {
          answers.charged++;
          // Most admitted checks fail: only then does the address pay.
          if (random() < 0.9) {
            memory.recordFailure(undefined, address);
            await shared.recordFailure(undefined, address);
          }
        }
      }
      clock += Math.floor(random() * 1500);
    }
    // The sequence went through every branch, or the comparison proved little.
    expect(answers.charged).toBeGreaterThan(10);
    expect(answers.user).toBeGreaterThan(5);
    expect(answers.address).toBeGreaterThan(5);
  }, 60_000);
});
