import { afterEach, describe, expect, it } from 'vitest';
import { isRegauthError, RegauthError } from '../errors/regauth-error.js';
import type { Authenticator } from './authenticator.js';
import { createAuthnList } from './authn-list.js';
import { htpasswdLine, testKeyPair } from './testing/fixtures.js';
import { createTokenHandler, type TokenHandler } from './token-handler.js';
import type { TokenHandlerConfig } from './token-handler-config.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const handlers: TokenHandler[] = [];
afterEach(() => {
  for (const handler of handlers.splice(0)) handler.close();
});

/** An application's own user table as an Authenticator. */
function appUsers(users: Record<string, string>, closed: string[] = []): Authenticator {
  return {
    kind: 'app',
    async authenticate({ user, password }) {
      if (!(user in users)) return { outcome: 'unknown' };
      return users[user] === password
        ? { outcome: 'accepted', identity: { name: user, labels: {} } }
        : { outcome: 'refused' };
    },
    async close() {
      closed.push(Object.keys(users).join(','));
    },
  };
}

async function handler(extra: Partial<TokenHandlerConfig>): Promise<TokenHandler> {
  const pair = await testKeyPair();
  const tokens = await createTokenHandler({
    token: { issuer: 'i', service: 's', key: { pem: pair.keyPem }, certificate: { pem: pair.certPem } },
    acl: [{ match: { account: '/.+/' }, actions: ['pull'] }],
    ...extra,
  });
  handlers.push(tokens);
  return tokens;
}

async function status(tokens: TokenHandler, user: string, password: string): Promise<number | undefined> {
  const res = await tokens.fetch(
    new Request('http://app.invalid/token?scope=repository:x:pull', {
      headers: { authorization: basic(user, password) },
    }),
    { address: '192.0.2.1' },
  );
  return res?.status;
}

describe('TokenHandlerConfig.authenticators', () => {
  it('asks the users entries first, then the given authenticators in order', async () => {
    const tokens = await handler({
      users: { entries: htpasswdLine('alice', 'alice-pw') },
      authenticators: [appUsers({ alice: 'app-pw', bob: 'bob-pw' }), appUsers({ carol: 'carol-pw' })],
    });
    expect(await status(tokens, 'alice', 'alice-pw')).toBe(200);
    // alice is the htpasswd text's user: her password there decides.
    expect(await status(tokens, 'alice', 'app-pw')).toBe(401);
    expect(await status(tokens, 'bob', 'bob-pw')).toBe(200);
    expect(await status(tokens, 'carol', 'carol-pw')).toBe(200);
    expect(await status(tokens, 'carol', 'wrong')).toBe(401);
    expect(await status(tokens, 'dave', 'x')).toBe(401);
  });

  it('calls an authenticators function again on reloadUsers(), closing what it no longer returns', async () => {
    const closed: string[] = [];
    let users: Record<string, string> = { bob: 'bob-pw' };
    const tokens = await handler({ authenticators: () => [appUsers(users, closed)] });
    expect(await status(tokens, 'bob', 'bob-pw')).toBe(200);
    users = { bob: 'new-pw' };
    await tokens.reloadUsers();
    expect(closed).toEqual(['bob']);
    expect(await status(tokens, 'bob', 'bob-pw')).toBe(401);
    expect(await status(tokens, 'bob', 'new-pw')).toBe(200);
  });

  it('refuses something that is not a list of authenticators when created', async () => {
    const error = await handler({ authenticators: [{ kind: 'x' } as never] }).catch((e: unknown) => e);
    expect(isRegauthError(error) && error.code).toBe('ERR_INVALID_CONFIG');
    expect((error as Error).message).toMatch(/authenticators: must be a list of Authenticators/);
  });
});

describe('createAuthnList on failure', () => {
  it('closes the authenticators built before the entry that failed', async () => {
    const closed: string[] = [];
    const err = await createAuthnList(
      [
        { create: () => appUsers({ first: 'pw' }, closed) },
        {
          create: () => {
            throw new RegauthError('ERR_INVALID_CONFIG', 'authn[1]: broken');
          },
        },
      ],
      undefined,
      () => {},
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe('authn[1]: broken');
    expect(closed).toEqual(['first']);
  });
});
