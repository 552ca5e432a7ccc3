import { describe, expect, it, vi } from 'vitest';
import type { Authentication, Authenticator } from './authenticator.js';
import { UserStore } from './htpasswd.js';
import { createHtpasswdAuthenticator } from './htpasswd-authenticator.js';
import { KeyedDigest } from './keyed-digest.js';
import { PasswordGuard, type PasswordGuardOptions } from './password-guard.js';
import { htpasswdLine } from './testing/fixtures.js';

async function setup(options: Partial<PasswordGuardOptions> = {}) {
  const clock = { now: 1_700_000_000_000 };
  const users = await UserStore.fromText(
    [htpasswdLine('alice', 'alice-pw'), htpasswdLine('bob', 'bob-pw')].join('\n'),
    'users.htpasswd',
  );
  const verify = vi.spyOn(users, 'verify');
  const guard = new PasswordGuard({
    authenticators: () => [createHtpasswdAuthenticator(users)],
    cacheSeconds: 60,
    loginFailures: 2,
    loginWindow: 300,
    backoffMaxSeconds: 300,
    addressFailures: 5,
    passwordChecks: 4,
    passwordQueue: 8,
    checksPerAddress: 4,
    now: () => clock.now,
    ...options,
  });
  return { clock, guard, verify };
}

describe('PasswordGuard', () => {
  it('accepts a right password and refuses a wrong one or an unknown name alike', async () => {
    const { guard } = await setup();
    expect(await guard.authenticate('alice', 'alice-pw', '192.0.2.1')).toMatchObject({ ok: true });
    expect(await guard.authenticate('alice', 'nope', '192.0.2.1')).toEqual({ ok: false, reason: 'invalid' });
    expect(await guard.authenticate('mallory', 'nope', '192.0.2.1')).toEqual({
      ok: false,
      reason: 'invalid',
    });
  });

  it('keeps the table key of a user it holds, never a name it does not (a password typed as the name)', async () => {
    const digest = new KeyedDigest(Buffer.alloc(32, 5));
    const { guard } = await setup({ digest });
    expect(await guard.authenticate('correct horse battery', 'x', '192.0.2.1')).toEqual({
      ok: false,
      reason: 'invalid',
    });
    expect(digest.remembered).toBe(0);
    for (let i = 0; i < 3; i++)
      expect((await guard.authenticate('alice', 'alice-pw', '192.0.2.1')).ok).toBe(true);
    expect(digest.remembered).toBe(1);
    // The kept key is the one the counters and the cache were keyed by: a wrong password still counts.
    expect(await guard.authenticate('alice', 'wrong', '192.0.2.1')).toEqual({ ok: false, reason: 'invalid' });
    expect((await guard.authenticate('alice', 'alice-pw', '192.0.2.1')).ok).toBe(true);
  });

  it("accepts bob's cached login while others hold him in back-off, and refuses their guesses", async () => {
    const { guard, verify } = await setup({ addressFailures: 100 });
    expect((await guard.authenticate('bob', 'bob-pw', '192.0.2.10')).ok).toBe(true);
    for (let i = 0; i < 3; i++) await guard.authenticate('bob', `guess-${i}`, `198.51.100.${i}`);
    const guess = await guard.authenticate('bob', 'guess-x', '198.51.100.99');
    expect(guess).toEqual({ ok: false, reason: 'backoff', retryAfter: 1 });
    const checks = verify.mock.calls.length;
    // From anywhere, the cached pair gets in without a check.
    expect((await guard.authenticate('bob', 'bob-pw', '203.0.113.5')).ok).toBe(true);
    expect(verify.mock.calls.length).toBe(checks);
  });

  it("checks bob's password during a back-off when it comes from an address bob logged in from", async () => {
    const { guard, clock } = await setup({ addressFailures: 100 });
    expect((await guard.authenticate('bob', 'bob-pw', '192.0.2.10')).ok).toBe(true);
    clock.now += 61_000; // the login cache has forgotten the pair
    for (let i = 0; i < 3; i++) await guard.authenticate('bob', `guess-${i}`, `198.51.100.${i}`);
    expect((await guard.authenticate('bob', 'bob-pw', '203.0.113.5')).ok).toBe(false);
    expect((await guard.authenticate('bob', 'bob-pw', '192.0.2.10')).ok).toBe(true);
  });

  it('refuses an address that spent its budget before looking at the login cache', async () => {
    const { guard, verify } = await setup({ loginFailures: 100 });
    expect((await guard.authenticate('alice', 'alice-pw', '192.0.2.1')).ok).toBe(true);
    for (let i = 0; i < 5; i++) await guard.authenticate(`name-${i}`, 'x', '192.0.2.1');
    const checks = verify.mock.calls.length;
    expect(await guard.authenticate('alice', 'alice-pw', '192.0.2.1')).toEqual({
      ok: false,
      reason: 'address',
      retryAfter: 60,
    });
    expect(verify.mock.calls.length).toBe(checks);
    expect((await guard.authenticate('alice', 'alice-pw', '192.0.2.2')).ok).toBe(true);
  });

  it('counts the IPv6 addresses of one /64 as one address', async () => {
    const { guard } = await setup({ loginFailures: 100 });
    for (let i = 1; i <= 5; i++) await guard.authenticate(`name-${i}`, 'x', `2001:db8:1:2::${i}`);
    expect(await guard.authenticate('name-9', 'x', '2001:db8:1:2:ffff::9')).toMatchObject({
      reason: 'address',
    });
    expect(await guard.authenticate('name-9', 'x', '2001:db8:1:3::9')).toEqual({
      ok: false,
      reason: 'invalid',
    });
  });

  it('makes one check for identical requests in flight, and counts one failure', async () => {
    const { guard, verify } = await setup({ loginFailures: 1, addressFailures: 100 });
    const results = await Promise.all(
      Array.from({ length: 8 }, () => guard.authenticate('alice', 'wrong', '192.0.2.1')),
    );
    expect(results.every((r) => !r.ok && r.reason === 'invalid')).toBe(true);
    expect(verify).toHaveBeenCalledTimes(1);
    // One failure: still within the one free failure.
    expect(await guard.authenticate('alice', 'wrong-2', '192.0.2.1')).toEqual({
      ok: false,
      reason: 'invalid',
    });
  });

  it('answers busy when the check queue is full, without a check', async () => {
    const { guard, verify } = await setup({ passwordChecks: 1, passwordQueue: 1, addressFailures: 0 });
    const flood = Array.from({ length: 6 }, (_, i) => guard.authenticate(`name-${i}`, 'x', `192.0.2.${i}`));
    const results = await Promise.all(flood);
    expect(results.map((r) => (r.ok ? 'ok' : r.reason))).toEqual([
      'invalid',
      'invalid',
      'busy',
      'busy',
      'busy',
      'busy',
    ]);
    expect(verify).toHaveBeenCalledTimes(2);
    expect(guard.stats().checks.refusedBusy).toBe(4);
  });

  it('names a user of the file in logs, and anyone else by a keyed hash', async () => {
    const { guard } = await setup();
    expect(guard.accountLabel('alice')).toBe('alice');
    expect(guard.accountLabel('s3cret-typed-as-user')).toMatch(/^unknown:[0-9a-f]{16}$/);
  });

  it('keeps its tables within their cap under a flood of names, and sweeps them empty', async () => {
    const { guard, clock } = await setup({
      maxTrackedEntries: 50,
      addressFailures: 1000,
      passwordQueue: 1000,
    });
    await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        guard.authenticate(`flood-${i}`, 'x', `10.0.${i >> 8}.${i & 255}`),
      ),
    );
    const stats = guard.stats();
    expect(stats.backoffUsers).toBe(50);
    expect(stats.addressBudgets).toBe(50);
    clock.now += 3600_000;
    guard.sweep();
    expect(guard.stats()).toMatchObject({
      backoffUsers: 0,
      addressBudgets: 0,
      recentLogins: 0,
      verifiedLogins: 0,
    });
  });
});

describe('PasswordGuard in front of any authenticator', () => {
  function program(answer: (user: string, password: string) => Authentication) {
    const calls: string[] = [];
    const authenticator: Authenticator = {
      kind: 'ext_auth',
      async authenticate({ user, password }) {
        calls.push(user);
        return answer(user, password);
      },
    };
    const clock = { now: 1_700_000_000_000 };
    const guard = new PasswordGuard({
      authenticators: () => [authenticator],
      cacheSeconds: 60,
      loginFailures: 2,
      loginWindow: 300,
      backoffMaxSeconds: 300,
      addressFailures: 100,
      passwordChecks: 4,
      passwordQueue: 8,
      checksPerAddress: 4,
      now: () => clock.now,
    });
    return { guard, calls, clock };
  }

  const decide = (user: string, password: string): Authentication => {
    if (user === 'carol' && password === 'carol-pw') {
      return { outcome: 'accepted', identity: { name: 'carol', labels: { group: ['ci'] } } };
    }
    if (user === 'carol') return { outcome: 'refused' };
    return { outcome: 'unknown' };
  };

  it('backs a user off after failed logins, whether refused or unknown, without asking the backend', async () => {
    const { guard, calls } = program(decide);
    for (let i = 0; i < 3; i++) await guard.authenticate('carol', `guess-${i}`, `198.51.100.${i}`);
    for (let i = 0; i < 3; i++) await guard.authenticate('nobody', `guess-${i}`, `198.51.100.${i}`);
    const asked = calls.length;
    expect(await guard.authenticate('carol', 'guess-x', '198.51.100.99')).toMatchObject({
      reason: 'backoff',
    });
    expect(await guard.authenticate('nobody', 'guess-x', '198.51.100.99')).toMatchObject({
      reason: 'backoff',
    });
    expect(calls.length).toBe(asked);
  });

  it('remembers a verified login with its labels, and asks the backend once for a burst', async () => {
    const { guard, calls, clock } = program(decide);
    const burst = await Promise.all(
      Array.from({ length: 5 }, () => guard.authenticate('carol', 'carol-pw', '192.0.2.1')),
    );
    expect(burst[0]).toEqual({
      ok: true,
      identity: { name: 'carol', labels: { group: ['ci'] } },
      by: 'ext_auth',
    });
    expect(await guard.authenticate('carol', 'carol-pw', '192.0.2.1')).toMatchObject({ ok: true });
    expect(calls).toEqual(['carol']);
    clock.now += 61_000;
    expect(await guard.authenticate('carol', 'carol-pw', '192.0.2.1')).toMatchObject({ ok: true });
    expect(calls).toEqual(['carol', 'carol']);
  });

  it('answers a failing backend as unavailable and counts no failed login for it', async () => {
    const { guard } = program(() => {
      throw new Error('ext_auth program /bin/x: exited with code 3');
    });
    for (let i = 0; i < 5; i++) {
      expect(await guard.authenticate('carol', 'carol-pw', '192.0.2.1')).toEqual({
        ok: false,
        reason: 'unavailable',
        retryAfter: 5,
        error: 'ext_auth program /bin/x: exited with code 3',
      });
    }
    expect(guard.stats()).toMatchObject({ backoffUsers: 0, addressBudgets: 0, verifiedLogins: 0 });
  });

  it('names in logs only users an authenticator says it holds', () => {
    const { guard } = program(decide);
    expect(guard.accountLabel('carol')).toMatch(/^unknown:[0-9a-f]{16}$/);
  });
});
