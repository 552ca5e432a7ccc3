import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRegauthError } from '../src/errors/regauth-error.js';
import {
  createRedisRevocationStore,
  type RedisRevocationStore,
} from '../src/server/redis-revocation-store.js';
import { createRedisStore, type SharedStore } from '../src/server/shared-store.js';
import { checkStoreConfig } from '../src/server/store-config.js';
import { type RedisHandle, startRedis } from './harness/redis.js';

const KEEP_MS = 3_600_000;

const fail = (path: string, why: string): never => {
  throw new Error(`${path}: ${why}`);
};

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${what} within ${timeoutMs} ms`);
}

describe('Redis revocation store (real redis-server)', () => {
  let redis: RedisHandle;
  const stores: SharedStore[] = [];
  const revocationStores: RedisRevocationStore[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const store of revocationStores) await store.close();
    for (const store of stores) await store.close();
    await redis?.stop();
  });

  const open = async (
    prefix: string,
    extra: { resyncMs?: number; keepMs?: number; now?: () => number } = {},
  ) => {
    const checked = checkStoreConfig({ url: redis.url, prefix, timeout: 0.5 }, 'store', fail);
    if (checked === undefined) throw new Error('no store');
    const store = await createRedisStore(checked);
    stores.push(store);
    const revocations = createRedisRevocationStore(store, { keepMs: KEEP_MS, ...extra });
    revocationStores.push(revocations);
    await revocations.ready;
    return revocations;
  };

  it('shows a revocation recorded at one replica at the others through pub/sub, keeping the later epoch', async () => {
    const a = await open('share:');
    const b = await open('share:');
    const other = await open('other:');
    const epoch = Date.now() - 1_000;
    const recorded = await a.revoke('alice', epoch);
    expect(recorded).toEqual({ account: 'alice', beforeMs: epoch, untilMs: epoch + KEEP_MS });
    expect(a.revokedBefore('alice')).toBe(epoch);
    await until(() => b.revokedBefore('alice') === epoch, 'replica B did not see the revocation');
    // An earlier epoch never brings a token back.
    expect((await b.revoke('alice', epoch - 60_000)).beforeMs).toBe(epoch);
    expect(b.list()).toEqual([{ account: 'alice', beforeMs: epoch, untilMs: epoch + KEEP_MS }]);
    // Another prefix is another deployment.
    expect(other.revokedBefore('alice')).toBeUndefined();

    const raw = new Redis(redis.url);
    try {
      // The name is written as it is (GET /revocations needs it), under the prefix, with an expiry.
      expect(await raw.hgetall('share:revocations')).toEqual({ alice: `${epoch}:${epoch + KEEP_MS}` });
      const ttl = await raw.pttl('share:revocations');
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(KEEP_MS);
    } finally {
      raw.disconnect();
    }
  });

  it('fills a new replica at start-up and heals a missed message with the periodic re-sync', async () => {
    const a = await open('fill:');
    const epoch = Date.now() - 5_000;
    await a.revoke('bob', epoch);
    const late = await open('fill:', { resyncMs: 200 });
    expect(late.revokedBefore('bob')).toBe(epoch);

    // Written behind the replicas' back, never published: only the re-sync can find it.
    const raw = new Redis(redis.url);
    try {
      await raw.hset('fill:revocations', 'carol', String(epoch + 1));
      await raw.set('fill:revocations:gen', 'changed-behind-its-back');
    } finally {
      raw.disconnect();
    }
    await until(() => late.revokedBefore('carol') === epoch + 1, 'the re-sync did not find carol');
  });

  it('refuses to record while Redis is down, keeps its mirror, and shares again once Redis is back', async () => {
    const a = await open('down:');
    const b = await open('down:');
    const epoch = Date.now() - 1_000;
    await a.revoke('dave', epoch);
    await until(() => b.revokedBefore('dave') === epoch, 'replica B did not see dave');
    await redis.kill();
    try {
      const error = await a.revoke('erin', epoch).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isRegauthError(error) && error.code).toBe('ERR_NETWORK');
      expect((error as Error).message).toMatch(/was not recorded: Redis \(redis:\/\/127\.0\.0\.1:\d+\/0\)/);
      expect(a.revokedBefore('erin')).toBeUndefined();
      // What the replicas knew stays, though Redis forgot it.
      expect(b.revokedBefore('dave')).toBe(epoch);
    } finally {
      await redis.restart();
    }
    expect(b.revokedBefore('dave')).toBe(epoch);
    // Recording works again once the store has reconnected, and reaches B again.
    await until(
      async () =>
        (await a.revoke('erin', epoch).then(
          () => true,
          () => false,
        )) === true,
      'revoke did not work again after the restart',
      20_000,
    );
    await until(() => b.revokedBefore('erin') === epoch, 'replica B did not see erin after the restart');
    expect(b.revokedBefore('dave')).toBe(epoch);
  });

  it('ignores messages and hash entries that are not revocations', async () => {
    const b = await open('hostile:', { resyncMs: 200 });
    const raw = new Redis(redis.url);
    const epoch = Date.now() - 1_000;
    try {
      for (const message of [
        'garbage',
        'abc mallory',
        '1e400 mallory',
        `${epoch}`,
        ` ${epoch}`,
        'NaN mallory',
      ]) {
        await raw.publish('hostile:revocations', message);
      }
      await raw.hset(
        'hostile:revocations',
        'trent',
        'not-a-number',
        'victor',
        String(Date.now() - 2 * KEEP_MS),
        'walter',
        String(epoch),
      );
      await raw.set('hostile:revocations:gen', 'changed-behind-its-back');
      // A good message after the bad ones, with a space inside the name, still arrives.
      await raw.publish('hostile:revocations', `${epoch} peggy sue`);
    } finally {
      raw.disconnect();
    }
    await until(() => b.revokedBefore('peggy sue') === epoch, 'the good message did not arrive');
    // walter was never published: once he is known, a re-sync has read the bad entries beside him.
    await until(() => b.revokedBefore('walter') === epoch, 'no re-sync read the hash');
    expect(
      b
        .list()
        .map((r) => r.account)
        .sort(),
    ).toEqual(['peggy sue', 'walter']);
    for (const account of ['mallory', 'trent', 'victor', ''])
      expect(b.revokedBefore(account)).toBeUndefined();
  });

  it('keeps each entry for its own keep time: a writer with a shorter one un-revokes no one, and a new replica reads them', async () => {
    const a = await open('keep:');
    const alice = Date.now() - 5_000;
    await a.revoke('alice', alice);
    // `regauth serve revoke` under a config with a 2 s refresh lifetime.
    const short = await open('keep:', { keepMs: 2_000 });
    await short.revoke('bob', Date.now());
    const raw = new Redis(redis.url);
    try {
      expect(Object.keys(await raw.hgetall('keep:revocations'))).toContain('alice');
      // Kept as long as the hash: a replica that finds no generation has nothing to miss.
      expect(await raw.pttl('keep:revocations:gen')).toBeGreaterThan(KEEP_MS - 60_000);
      // The short writer's own keep time passes; bob's entry goes, alice's stays.
      await new Promise((r) => setTimeout(r, 2_500));
      const c = await open('keep:');
      expect(c.revokedBefore('alice')).toBe(alice);
      // A lost generation key with the hash still there: a new replica reads the hash anyway.
      await raw.del('keep:revocations:gen');
      const d = await open('keep:');
      expect(d.revokedBefore('alice')).toBe(alice);
    } finally {
      raw.disconnect();
    }
  });

  it('ignores far-future epochs on the channel and in the hash, and refuses to record one', async () => {
    const a = await open('future:');
    const b = await open('future:', { resyncMs: 200 });
    const epoch = Date.now() - 1_000;
    const ahead = Date.now() + 600_000;
    const raw = new Redis(redis.url);
    try {
      await raw.publish('future:revocations', '1e300 mallory');
      await raw.publish('future:revocations', `${ahead} oscar`);
      await raw.hset('future:revocations', 'trent', '1e300', 'victor', `${ahead}:${ahead + KEEP_MS}`);
      await raw.set('future:revocations:gen', 'changed-behind-its-back');
      await raw.publish('future:revocations', `${epoch} peggy`);
      await raw.hset('future:revocations', 'walter', String(epoch));
      await raw.set('future:revocations:gen', 'changed-again');
      await until(() => b.revokedBefore('walter') === epoch, 'no re-sync read the hash');
      expect(b.revokedBefore('peggy')).toBe(epoch);
      for (const account of ['mallory', 'oscar', 'trent', 'victor'])
        expect(b.revokedBefore(account)).toBeUndefined();

      const error = await a.revoke('zoe', ahead).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isRegauthError(error) && error.code).toBe('ERR_USAGE');
      expect((error as Error).message).toMatch(/ahead of Redis's clock/);
      expect(await raw.hget('future:revocations', 'zoe')).toBeNull();
      expect(a.revokedBefore('zoe')).toBeUndefined();
      // A stored far-future entry is dropped by the next write, not kept in force.
      await a.revoke('peggy', epoch);
      expect(await raw.hget('future:revocations', 'trent')).toBeNull();
      expect(await raw.hget('future:revocations', 'victor')).toBeNull();
    } finally {
      raw.disconnect();
    }
  });

  it("records a revocation meaning now at Redis's clock, not a lagging recorder's", async () => {
    // This recorder's clock is 30 s behind the other replicas' (and Redis's, on the same host).
    const lagging = await open('skew:', { now: () => Date.now() - 30_000 });
    const b = await open('skew:');
    const before = Date.now();
    const recorded = await lagging.revoke('alice', Date.now() - 30_000 + 1);
    // Tokens the other replicas issued in those 30 s are covered too.
    expect(recorded.beforeMs).toBeGreaterThan(before);
    await until(() => b.revokedBefore('alice') === recorded.beforeMs, 'replica B did not see alice');
    // An explicit time in the past stays as given: what was issued after it is spared.
    const past = Date.now() - 600_000;
    expect((await lagging.revoke('bob', past)).beforeMs).toBe(past);
  });
});
