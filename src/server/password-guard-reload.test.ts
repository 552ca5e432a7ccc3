import { describe, expect, it } from 'vitest';
import type { Authentication, Authenticator } from './authenticator.js';
import { PasswordGuard, type PasswordGuardOptions } from './password-guard.js';

/** An authenticator that accepts `user` with `password` once released, counting its checks. */
function gated(user: string, password: string) {
  const gates: (() => void)[] = [];
  let checks = 0;
  const authenticator: Authenticator = {
    kind: 'gated',
    knows: (name) => name === user,
    async authenticate(request): Promise<Authentication> {
      checks++;
      await new Promise<void>((resolve) => gates.push(resolve));
      return request.user === user && request.password === password
        ? { outcome: 'accepted', identity: { name: user, labels: {} } }
        : { outcome: 'refused' };
    },
  };
  const open = () => {
    for (const go of gates.splice(0)) go();
  };
  return { authenticator, open, checks: () => checks };
}

const limits = {
  cacheSeconds: 60,
  loginFailures: 2,
  loginWindow: 300,
  backoffMaxSeconds: 300,
  addressFailures: 100,
  passwordChecks: 4,
  passwordQueue: 8,
  checksPerAddress: 4,
};

function guard(authenticators: () => readonly Authenticator[], extra: Partial<PasswordGuardOptions> = {}) {
  const clock = { now: 1_700_000_000_000 };
  return { clock, guard: new PasswordGuard({ authenticators, ...limits, now: () => clock.now, ...extra }) };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('PasswordGuard across a reload', () => {
  it('a check begun before forgetVerified neither fills the cache nor answers a request after it', async () => {
    const old = gated('alice', 'alice-pw');
    const { guard: g } = guard(() => [old.authenticator]);
    const before = g.authenticate('alice', 'alice-pw', '192.0.2.1');
    await tick();
    g.forgetVerified();
    // The same pair after the reload gets a check of its own, against the list it is given.
    const fresh = gated('alice', 'new-pw');
    const after = g.authenticate('alice', 'alice-pw', '192.0.2.1', [fresh.authenticator]);
    await tick();
    expect(fresh.checks()).toBe(1);
    old.open();
    fresh.open();
    expect((await before).ok).toBe(true);
    expect(await after).toEqual({ ok: false, reason: 'invalid' });
    // Nothing remembered from the old check.
    expect(g.stats().verifiedLogins).toBe(0);
  });

  it('setLimits judges the kept back-off by the new numbers and lets waiting checks run', async () => {
    const auth = gated('alice', 'alice-pw');
    const { guard: g } = guard(() => [auth.authenticator], { passwordChecks: 1 });
    const fails = [1, 2, 3].map((i) => g.authenticate('alice', `wrong-${i}`, `198.51.100.${i}`));
    await tick();
    expect(g.stats().checks).toMatchObject({ running: 1, waiting: 2 });
    g.setLimits({ ...limits, passwordChecks: 3 });
    expect(g.stats().checks).toMatchObject({ running: 3, waiting: 0 });
    await tick();
    auth.open();
    await Promise.all(fails);
    expect(await g.authenticate('alice', 'x', '203.0.113.9')).toMatchObject({ reason: 'backoff' });
    g.setLimits({ ...limits, loginFailures: 10 });
    expect(g.stats().backoffUsers).toBe(1);
    const again = g.authenticate('alice', 'alice-pw', '203.0.113.9');
    await tick();
    auth.open();
    expect((await again).ok).toBe(true);
  });
});
