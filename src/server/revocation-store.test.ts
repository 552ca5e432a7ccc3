import { afterEach, describe, expect, it } from 'vitest';
import type { Authenticator } from './authenticator.js';
import { createMemoryRevocationStore, type RevocationStore } from './revocation-store.js';
import { testKeyPair } from './testing/fixtures.js';
import { createTokenHandler, type TokenHandler } from './token-handler.js';

const HOUR = 3_600_000;

describe('createMemoryRevocationStore', () => {
  it('keeps the later epoch of an account, and forgets it once no token that old can live', async () => {
    const clock = { now: 10 * HOUR };
    const store = createMemoryRevocationStore({ keepMs: HOUR, now: () => clock.now });
    expect(store.revokedBefore('alice')).toBeUndefined();
    expect(await store.revoke('alice', clock.now - 1000)).toEqual({
      account: 'alice',
      beforeMs: clock.now - 1000,
      untilMs: clock.now - 1000 + HOUR,
    });
    // An earlier epoch given later never brings a token back.
    expect((await store.revoke('alice', clock.now - 5000)).beforeMs).toBe(clock.now - 1000);
    expect(store.revokedBefore('alice')).toBe(clock.now - 1000);
    expect(store.revokedBefore('bob')).toBeUndefined();
    expect(store.list().map((r) => r.account)).toEqual(['alice']);
    clock.now += HOUR - 1001;
    expect(store.revokedBefore('alice')).toBe(10 * HOUR - 1000);
    clock.now += 1;
    expect(store.revokedBefore('alice')).toBeUndefined();
    expect(store.list()).toEqual([]);
  });

  it('stays within its size, and what leaves a full table still refuses as a floor for everyone', async () => {
    const clock = { now: 10 * HOUR };
    const store = createMemoryRevocationStore({ keepMs: HOUR, maxEntries: 3, now: () => clock.now });
    for (let i = 0; i < 10; i++) await store.revoke(`user-${i}`, clock.now - 100 + i);
    expect(store.list().map((r) => r.account)).toEqual(['user-7', 'user-8', 'user-9']);
    // user-0 … user-6 left the table: their epochs (the latest, user-6's) still hold, for all.
    expect(store.revokedBefore('user-0')).toBe(clock.now - 100 + 6);
    expect(store.revokedBefore('someone-else')).toBe(clock.now - 100 + 6);
    expect(store.revokedBefore('user-9')).toBe(clock.now - 100 + 9);
    clock.now += HOUR;
    expect(store.revokedBefore('user-0')).toBeUndefined();
    expect(store.list()).toEqual([]);
  });
});

/** Counts password checks: a login taken from the cache does not reach it. */
function countingAuthenticator(): Authenticator & { checks: number } {
  const counter = {
    kind: 'counting',
    checks: 0,
    async authenticate(request: { user: string; password: string }) {
      counter.checks++;
      return request.password === `${request.user}-pw`
        ? ({ outcome: 'accepted', identity: { name: request.user, labels: {} } } as const)
        : ({ outcome: 'refused' } as const);
    },
  };
  return counter;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('a token handler with revocations', () => {
  async function setup(reuse = 0) {
    const pair = await testKeyPair();
    // A fake clock inside one second (`iat` alone cannot tell these moments apart), not before
    // the test certificate's notBefore.
    const clock = { now: Math.ceil(Date.now() / 1000) * 1000 + 200 };
    const revocations: RevocationStore = createMemoryRevocationStore({
      keepMs: 24 * HOUR,
      now: () => clock.now,
    });
    const counting = countingAuthenticator();
    const tokens: TokenHandler = await createTokenHandler(
      {
        token: {
          issuer: 'unit-issuer',
          service: 'unit-registry',
          key: { pem: pair.keyPem },
          certificate: { pem: pair.certPem },
          reuse,
        },
        authenticators: [counting],
        users: { entries: '', cacheSeconds: 60 },
        acl: [{ match: { account: '/.+/' }, actions: ['pull'] }],
      },
      { now: () => clock.now, revocations },
    );
    cleanups.push(() => tokens.close());
    const call = async (form: Record<string, string>) => {
      const res = await tokens.fetch(
        new Request('http://unit/token', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ service: 'unit-registry', scope: 'repository:a:pull', ...form }),
        }),
        { address: '10.0.0.1' },
      );
      if (res === undefined) throw new Error('the handler did not answer /token');
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    };
    const login = (user = 'alice') =>
      call({ grant_type: 'password', access_type: 'offline', username: user, password: `${user}-pw` });
    const refresh = async (token: string | undefined) =>
      (await call({ grant_type: 'refresh_token', refresh_token: token ?? '' })).status;
    return { clock, revocations, counting, login, refresh };
  }

  it('refuses a refresh token issued in the same millisecond before the revocation, not one just after', async () => {
    const t = await setup();
    const early = (await t.login()).body.refresh_token;
    t.clock.now += 300;
    const sameMsBefore = (await t.login()).body.refresh_token;
    // What the admin endpoint records for "now": tokens issued up to this very millisecond.
    await t.revocations.revoke('alice', t.clock.now + 1);
    const sameMsAfter = (await t.login()).body.refresh_token;
    t.clock.now += 1;
    const later = (await t.login()).body.refresh_token;
    expect(await t.refresh(early)).toBe(401);
    expect(await t.refresh(sameMsBefore)).toBe(401);
    expect(await t.refresh(sameMsAfter)).toBe(200);
    expect(await t.refresh(later)).toBe(200);
    // Another account's tokens are untouched.
    expect(await t.refresh((await t.login('bob')).body.refresh_token)).toBe(200);
  });

  it('spares tokens issued at or after a `before` in the past', async () => {
    const t = await setup();
    const before = (await t.login()).body.refresh_token;
    t.clock.now += 1;
    const atEpoch = (await t.login()).body.refresh_token;
    await t.revocations.revoke('alice', t.clock.now);
    t.clock.now += 2000;
    expect(await t.refresh(before)).toBe(401);
    expect(await t.refresh(atEpoch)).toBe(200);
  });

  it('checks the password again for a login cached before the revocation', async () => {
    const t = await setup();
    expect((await t.login()).status).toBe(200);
    expect((await t.login()).status).toBe(200);
    expect(t.counting.checks).toBe(1);
    await t.revocations.revoke('alice', t.clock.now + 1);
    expect((await t.login()).status).toBe(200);
    expect(t.counting.checks).toBe(2);
    // Verified again after the revocation: the cache serves it once more.
    expect((await t.login()).status).toBe(200);
    expect(t.counting.checks).toBe(2);
  });

  it('does not hand out again an access token signed before the revocation', async () => {
    const t = await setup(5);
    const first = (await t.login()).body.token;
    expect((await t.login()).body.token).toBe(first);
    await t.revocations.revoke('alice', t.clock.now + 1);
    const after = (await t.login()).body.token;
    expect(after).not.toBe(first);
    expect((await t.login()).body.token).toBe(after);
  });
});
