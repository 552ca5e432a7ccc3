import { describe, expect, it } from 'vitest';
import type { Identity } from './authenticator.js';
import { createRefreshLookup, createRefreshTokenAuthenticator } from './refresh-token-authenticator.js';
import type { RefreshClaims } from './token-issuer.js';

/** An issuer whose refresh tokens are their claims as JSON: the signature is the issuer's test. */
const issuer = {
  verifyRefreshToken: (token: string): RefreshClaims | undefined =>
    token.startsWith('{') ? (JSON.parse(token) as RefreshClaims) : undefined,
};
const token = (claims: RefreshClaims) => JSON.stringify(claims);

describe('createRefreshTokenAuthenticator', () => {
  it('keeps the labels a token was issued with when it names no authenticator (tokens from before)', async () => {
    const refresh = createRefreshTokenAuthenticator({
      issuer,
      service: 's',
      fingerprint: () => undefined,
      lookup: async () => {
        throw new Error('never asked');
      },
    });
    expect(
      await refresh.authenticate(token({ sub: 'alice', service: 's', labels: { group: ['dev'] } })),
    ).toEqual({
      outcome: 'accepted',
      identity: { name: 'alice', labels: { group: ['dev'] } },
    });
  });

  it("asks the authenticator named in the token, and takes its answer's labels, not the token's", async () => {
    const asked: [string, string][] = [];
    const directory = new Map<string, Identity>([['alice', { name: 'alice', labels: { group: ['ops'] } }]]);
    const refresh = createRefreshTokenAuthenticator({
      issuer,
      service: 's',
      fingerprint: () => undefined,
      lookup: async (id, name) => {
        asked.push([id, name]);
        if (id !== 'ldap:1') return 'no_backend';
        if (name === 'down') throw new Error('LDAP server 127.0.0.1:1 failed');
        if (name === 'renamed') return { name: 'someone-else', labels: {} };
        return directory.get(name);
      },
    });
    const claims = { service: 's', authn: 'ldap:1', labels: { group: ['dev', 'admins'] } };
    expect(await refresh.authenticate(token({ sub: 'alice', ...claims }))).toEqual({
      outcome: 'accepted',
      identity: { name: 'alice', labels: { group: ['ops'] } },
    });
    expect(await refresh.authenticate(token({ sub: 'bob', ...claims }))).toEqual({
      outcome: 'refused',
      account: 'bob',
      reason: 'the user is gone from its authenticator',
    });
    expect(await refresh.authenticate(token({ sub: 'renamed', ...claims }))).toMatchObject({
      outcome: 'refused',
    });
    expect(await refresh.authenticate(token({ sub: 'alice', ...claims, authn: 'ldap:2' }))).toEqual({
      outcome: 'refused',
      account: 'alice',
      reason: 'its authenticator is gone',
    });
    expect(await refresh.authenticate(token({ sub: 'down', ...claims }))).toEqual({
      outcome: 'unavailable',
      account: 'down',
      error: 'LDAP server 127.0.0.1:1 failed',
    });
    expect(asked[0]).toEqual(['ldap:1', 'alice']);
    // Without a lookup nothing can check such a token again: refused.
    const blind = createRefreshTokenAuthenticator({ issuer, service: 's', fingerprint: () => undefined });
    expect((await blind.authenticate(token({ sub: 'alice', ...claims }))).outcome).toBe('refused');
  });
});

describe('createRefreshLookup', () => {
  it('asks the authenticator with that id and a lookup, and says so when there is none', async () => {
    const lookup = createRefreshLookup(() => [
      { kind: 'htpasswd', authenticate: async () => ({ outcome: 'unknown' }) },
      { kind: 'ldap', id: 'ldap:a', authenticate: async () => ({ outcome: 'unknown' }) },
      {
        kind: 'ldap',
        id: 'ldap:b',
        authenticate: async () => ({ outcome: 'unknown' }),
        lookup: async (name) => ({ name, labels: { from: ['b'] } }),
      },
    ]);
    expect(await lookup('ldap:b', 'alice')).toEqual({ name: 'alice', labels: { from: ['b'] } });
    expect(await lookup('ldap:a', 'alice')).toBe('no_backend');
    expect(await lookup('ldap:c', 'alice')).toBe('no_backend');
  });
});
