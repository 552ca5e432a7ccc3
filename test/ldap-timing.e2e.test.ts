import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../src/server/authenticator.js';
import { createLdapAuthenticator } from '../src/server/ldap-authenticator.js';
import { SLAPD_PEOPLE, type SlapdHandle, startSlapd } from './harness/slapd.js';

/**
 * An unknown name must cost the directory what a wrong password costs — a search and a user
 * bind — or the answer comes one round trip sooner and tells who exists. Counted in slapd's own
 * log of operations (the mechanism), never by the clock.
 */
describe('the LDAP authenticator spends a user bind on names it does not hold', () => {
  let slapd: SlapdHandle;
  let ldap: Authenticator;

  beforeAll(async () => {
    slapd = await startSlapd({
      logOperations: true,
      users: [{ uid: 'alice', password: 'alice-ldap-pw', groups: ['dev'] }],
    });
    ldap = await createLdapAuthenticator({
      url: slapd.url,
      bindDn: slapd.serviceDn,
      bindPassword: slapd.servicePassword,
      baseDn: SLAPD_PEOPLE,
      timeoutSeconds: 5,
    });
  });

  afterAll(async () => {
    await ldap?.close?.();
    await slapd?.stop();
  });

  /** Binds slapd logged other than the service account's (one `method=` line per bind request). */
  const userBinds = () =>
    slapd
      .output()
      .split('\n')
      .filter((line) => / BIND dn=".*" method=/.test(line) && !line.includes(slapd.serviceDn)).length;
  /** User binds since `before`, read once `expected` more were logged (or 10 s passed), and a moment later. */
  const bindsAfter = async (before: number, expected: number): Promise<number> => {
    const deadline = Date.now() + 10_000;
    while (userBinds() - before < expected && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    return userBinds() - before;
  };
  const check = (user: string, password: string, last?: boolean) =>
    ldap.authenticate({ user, password, address: '127.0.0.1' }, last === undefined ? undefined : { last });

  it('binds once for a wrong password, and once for an unknown name or another spelling of a known one', async () => {
    for (const [user, outcome] of [
      ['alice', 'refused'],
      ['mallory', 'unknown'],
      ['ALICE', 'unknown'],
    ] as const) {
      const before = userBinds();
      expect(await check(user, 'wrong-password')).toEqual({ outcome });
      expect(await bindsAfter(before, 1), user).toBe(1);
    }
    const before = userBinds();
    expect((await check('alice', 'alice-ldap-pw')).outcome).toBe('accepted');
    expect(await bindsAfter(before, 1)).toBe(1);
  });

  it('binds for none when a later backend decides an unknown name, or when the password is empty', async () => {
    const before = userBinds();
    expect(await check('mallory', 'wrong-password', false)).toEqual({ outcome: 'unknown' });
    expect(await check('mallory', '')).toEqual({ outcome: 'unknown' });
    expect(await check('alice', '')).toEqual({ outcome: 'refused' });
    // A marker: the one bind counted must be this one.
    expect(await check('alice', 'wrong-password')).toEqual({ outcome: 'refused' });
    expect(await bindsAfter(before, 1)).toBe(1);
    expect(slapd.output()).not.toContain('wrong-password');
  });
});
