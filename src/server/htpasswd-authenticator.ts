import type { Authenticator } from './authenticator.js';
import type { UserStore } from './htpasswd.js';

/**
 * The users of an htpasswd file as an Authenticator. Pass a function to follow reloads: it is
 * called on every request, so a reload swaps the store for the next request.
 *
 * A name the file does not hold is `unknown`, so later authenticators of the list can answer
 * it. When this is the last authenticator, that name is first compared against a decoy of the
 * file's own costs (UserStore.verify): an unknown user costs what a wrong password costs.
 */
export function createHtpasswdAuthenticator(users: UserStore | (() => UserStore)): Authenticator {
  const current = typeof users === 'function' ? users : () => users;
  return {
    kind: 'htpasswd',
    knows: (user) => current().has(user),
    fingerprint: (user) => current().fingerprint(user),
    async authenticate({ user, password }, options) {
      const store = current();
      const known = store.has(user);
      // Not last: a later authenticator answers, and its time is what an observer sees.
      if (!known && options?.last === false) return { outcome: 'unknown' };
      const check = await store.verify(user, password);
      if (check.ok && check.hashFingerprint !== undefined) {
        return {
          outcome: 'accepted',
          identity: { name: user, labels: {} },
          fingerprint: check.hashFingerprint,
        };
      }
      return known ? { outcome: 'refused' } : { outcome: 'unknown' };
    },
  };
}
