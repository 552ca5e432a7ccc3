import { describe, expect, it, vi } from 'vitest';
import { authenticateInOrder } from './authenticate-in-order.js';
import type { Authentication, Authenticator } from './authenticator.js';
import { UserStore } from './htpasswd.js';
import { createHtpasswdAuthenticator } from './htpasswd-authenticator.js';
import { htpasswdLine } from './testing/fixtures.js';

const request = (user: string, password: string) => ({ user, password, address: '192.0.2.1' });

async function store() {
  return UserStore.fromText(htpasswdLine('alice', 'alice-pw'), 'users.htpasswd');
}

/** An authenticator that answers from a table and counts its calls. */
function table(kind: string, answers: Record<string, Authentication>): Authenticator & { calls: string[] } {
  const calls: string[] = [];
  return {
    kind,
    calls,
    async authenticate({ user }) {
      calls.push(user);
      return answers[user] ?? { outcome: 'unknown' };
    },
  };
}

describe('createHtpasswdAuthenticator', () => {
  it('accepts the right password with the entry fingerprint, refuses a wrong one', async () => {
    const users = await store();
    const authenticator = createHtpasswdAuthenticator(users);
    expect(await authenticator.authenticate(request('alice', 'alice-pw'))).toEqual({
      outcome: 'accepted',
      identity: { name: 'alice', labels: {} },
      fingerprint: users.fingerprint('alice'),
    });
    expect(await authenticator.authenticate(request('alice', 'nope'))).toEqual({ outcome: 'refused' });
    expect(authenticator.knows?.('alice')).toBe(true);
    expect(authenticator.knows?.('mallory')).toBe(false);
  });

  it('answers an unknown name at once when others follow, and after a decoy check when last', async () => {
    const users = await store();
    const verify = vi.spyOn(users, 'verify');
    const authenticator = createHtpasswdAuthenticator(() => users);
    expect(await authenticator.authenticate(request('mallory', 'x'), { last: false })).toEqual({
      outcome: 'unknown',
    });
    expect(verify).not.toHaveBeenCalled();
    expect(await authenticator.authenticate(request('mallory', 'x'), { last: true })).toEqual({
      outcome: 'unknown',
    });
    expect(await authenticator.authenticate(request('mallory', 'x'))).toEqual({ outcome: 'unknown' });
    // The decoy: the same bcrypt work a wrong password of a real user costs.
    expect(verify).toHaveBeenCalledTimes(2);
  });
});

describe('authenticateInOrder', () => {
  it('lets the first authenticator that knows the user decide, and tells the last it is last', async () => {
    const users = await store();
    const verify = vi.spyOn(users, 'verify');
    const program = table('ext_auth', {
      bob: { outcome: 'accepted', identity: { name: 'bob', labels: { group: ['ci'] } } },
      alice: { outcome: 'refused' },
    });
    const list = [createHtpasswdAuthenticator(users), program];
    expect(await authenticateInOrder(list, request('alice', 'alice-pw'))).toMatchObject({
      outcome: 'accepted',
      by: 'htpasswd',
    });
    expect(program.calls).toEqual([]);
    expect(await authenticateInOrder(list, request('bob', 'x'))).toEqual({
      outcome: 'accepted',
      identity: { name: 'bob', labels: { group: ['ci'] } },
      by: 'ext_auth',
    });
    expect(await authenticateInOrder(list, request('carol', 'x'))).toEqual({ outcome: 'unknown' });
    // htpasswd, not last, spent no bcrypt on bob or carol.
    expect(verify).toHaveBeenCalledTimes(1);
    expect(await authenticateInOrder([], request('alice', 'alice-pw'))).toEqual({ outcome: 'unknown' });
  });

  it('stops at an authenticator that fails instead of asking the next', async () => {
    const broken: Authenticator = {
      kind: 'ext_auth',
      authenticate: async () => {
        throw new Error('program crashed');
      },
    };
    const next = table('htpasswd', {
      alice: { outcome: 'accepted', identity: { name: 'alice', labels: {} } },
    });
    await expect(authenticateInOrder([broken, next], request('alice', 'pw'))).rejects.toThrow(/crashed/);
    expect(next.calls).toEqual([]);
  });
});
