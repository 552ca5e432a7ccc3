import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../src/server/generate-signing-key.js';
import { htpasswdLine } from '../src/server/testing/fixtures.js';
import { createTokenHandler, type TokenHandler } from '../src/server/token-handler.js';
import type { TokenHandlerConfig } from '../src/server/token-handler-config.js';
import { type RedisHandle, startRedis } from './harness/redis.js';

/**
 * Replicas with the same config must count a user's failures together, whatever config each
 * started with: one started on [k1] and reloaded onto [k2, k1] shares counters with one
 * started on [k2, k1] (a rotation done by reloading some replicas and restarting others).
 */

const LOGIN_FAILURES = 3;
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('shared login counters across a signing-key rotation (real redis-server)', () => {
  let redis: RedisHandle;
  const handlers: TokenHandler[] = [];
  let k1: { keyPem: string; certPem: string };
  let k2: { keyPem: string; certPem: string };

  beforeAll(async () => {
    redis = await startRedis();
    [k1, k2] = await Promise.all([generateSigningKey(), generateSigningKey()]);
  });
  afterAll(async () => {
    for (const handler of handlers) handler.close();
    await redis?.stop();
  });

  const config = (
    keys: { keyPem: string; certPem: string }[],
    prefix: string,
    store: Record<string, unknown> = {},
  ): TokenHandlerConfig => ({
    token: {
      issuer: 'rotation-issuer',
      service: 'rotation-registry',
      keys: keys.map((k) => ({ key: { pem: k.keyPem }, certificate: { pem: k.certPem } })),
    },
    users: { entries: htpasswdLine('alice', 'alice-pw') },
    acl: [{ match: { account: 'alice' }, actions: ['pull'] }],
    limits: { loginFailures: LOGIN_FAILURES, loginWindow: 60, loginBackoffMax: 60, addressFailures: 1000 },
    store: { url: redis.url, prefix, timeout: 2, ...store },
  });

  const open = async (first: TokenHandlerConfig): Promise<TokenHandler> => {
    const handler = await createTokenHandler(first);
    handlers.push(handler);
    return handler;
  };

  const ask = async (handler: TokenHandler, password: string): Promise<number> => {
    const res = await handler.fetch(
      new Request(
        `http://t.invalid${handler.realmPath}?service=rotation-registry&scope=repository:alice/app:pull`,
        {
          headers: { authorization: basic('alice', password) },
        },
      ),
      { address: '127.0.0.1' },
    );
    if (res === undefined) throw new Error('the handler did not own the path');
    await res.arrayBuffer();
    return res.status;
  };

  /** Wrong guesses alternating between the two handlers until the first 429, at most 20. */
  const failuresUntilBackoff = async (a: TokenHandler, b: TokenHandler): Promise<number> => {
    for (let i = 0; i < 20; i++) {
      const status = await ask(i % 2 === 0 ? a : b, `wrong-${i}`);
      if (status === 429) return i;
      expect(status).toBe(401);
    }
    return Number.POSITIVE_INFINITY;
  };

  it('counts together on a replica reloaded onto the new keys and one restarted with them', async () => {
    const a = await open(config([k1], 'rotate-derived:'));
    await a.reload(config([k2, k1], 'rotate-derived:'));
    const b = await open(config([k2, k1], 'rotate-derived:'));
    // LOGIN_FAILURES + 1 failures in total start the back-off: the next guess is refused.
    expect(await failuresUntilBackoff(a, b)).toBe(LOGIN_FAILURES + 1);
  }, 60_000);

  it('with store.secret, counts together whatever signing keys the replicas hold', async () => {
    const secret = { secret: 'a'.repeat(40) };
    const a = await open(config([k1], 'rotate-secret:', secret));
    const b = await open(config([k2, k1], 'rotate-secret:', secret));
    expect(await failuresUntilBackoff(a, b)).toBe(LOGIN_FAILURES + 1);
  }, 60_000);
});
