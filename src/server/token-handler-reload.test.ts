import { afterEach, describe, expect, it } from 'vitest';
import { isRegauthError } from '../errors/regauth-error.js';
import type { Authentication, Authenticator } from './authenticator.js';
import { htpasswdLine, testKeyPair } from './testing/fixtures.js';
import { createTokenHandler, type TokenHandler, type TokenHandlerOptions } from './token-handler.js';
import type { TokenHandlerConfig } from './token-handler-config.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const alice = htpasswdLine('alice', 'alice-pw');

async function config(extra: Partial<TokenHandlerConfig> = {}): Promise<TokenHandlerConfig> {
  const pair = await testKeyPair();
  return {
    token: {
      issuer: 'unit-issuer',
      service: 'unit-registry',
      key: { pem: pair.keyPem },
      certificate: { pem: pair.certPem },
    },
    users: { entries: alice },
    acl: [{ match: { account: 'alice' }, actions: ['pull'] }],
    ...extra,
  };
}

async function handler(first: TokenHandlerConfig, options: TokenHandlerOptions = {}): Promise<TokenHandler> {
  const tokens = await createTokenHandler(first, options);
  cleanups.push(() => tokens.close());
  return tokens;
}

/** One token request through the Web handler; the status, and the `access` claim of a 200. */
async function ask(
  tokens: TokenHandler,
  user: string,
  password: string,
  scope = 'repository:alice/app:pull,push',
): Promise<{ status: number; access?: unknown; iss?: string }> {
  const res = await tokens.fetch(
    new Request(`http://t.invalid${tokens.realmPath}?service=unit-registry&scope=${scope}`, {
      headers: { authorization: basic(user, password) },
    }),
    { address: '127.0.0.1' },
  );
  if (res === undefined) throw new Error('the handler did not own the path');
  if (res.status !== 200) return { status: res.status };
  const { token } = (await res.json()) as { token: string };
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
    access: unknown;
    iss: string;
  };
  return { status: 200, access: claims.access, iss: claims.iss };
}

/** An authenticator that accepts `user` once the test releases it, and records its close. */
function heldAuthenticator(user: string) {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let started = 0;
  const state = { closed: false };
  const authenticator: Authenticator = {
    kind: 'held',
    knows: (name) => name === user,
    async authenticate(request): Promise<Authentication> {
      if (request.user !== user) return { outcome: 'unknown' };
      started++;
      await gate;
      return { outcome: 'accepted', identity: { name: user, labels: {} } };
    },
    async close() {
      state.closed = true;
    },
  };
  return { authenticator, release: () => release(), started: () => started, state };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('TokenHandler.reload', () => {
  it('applies a new ACL, users and issuer at the next request', async () => {
    const tokens = await handler(await config());
    expect(await ask(tokens, 'alice', 'alice-pw')).toMatchObject({
      status: 200,
      access: [{ type: 'repository', name: 'alice/app', actions: ['pull'] }],
    });
    await tokens.reload({
      ...(await config()),
      token: { ...(await config()).token, issuer: 'new-issuer' },
      users: { entries: `${alice}\n${htpasswdLine('bob', 'bob-pw')}` },
      acl: [{ match: { account: '*' }, actions: ['pull', 'push'] }],
    });
    expect(await ask(tokens, 'alice', 'alice-pw')).toEqual({
      status: 200,
      access: [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }],
      iss: 'new-issuer',
    });
    expect((await ask(tokens, 'bob', 'bob-pw')).status).toBe(200);
  });

  it('rejects a bad config with a RegauthError naming the key, and the old config keeps serving', async () => {
    const tokens = await handler(await config());
    const bad: TokenHandlerConfig[] = [
      { ...(await config()), acl: [{ match: { account: 'alice' }, actions: ['pul' as 'pull'] }] },
      {
        ...(await config()),
        token: {
          issuer: 'x',
          service: 'unit-registry',
          key: { file: '/nonexistent/k.pem' },
          certificate: { file: '/nonexistent/c.pem' },
        },
      },
      { ...(await config()), users: { entries: 'alice:not-a-hash' } },
      { ...(await config()), limits: { loginFailures: -1 } },
    ];
    for (const next of bad) {
      const err = await tokens.reload(next).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isRegauthError(err)).toBe(true);
      expect(await ask(tokens, 'alice', 'alice-pw')).toEqual({
        status: 200,
        access: [{ type: 'repository', name: 'alice/app', actions: ['pull'] }],
        iss: 'unit-issuer',
      });
    }
    const missingKey = await tokens.reload(bad[1] as TokenHandlerConfig).catch((e: unknown) => e);
    expect((missingKey as Error).message).toContain('token.key');
  });

  it('keeps failed-login counts and back-offs: a lock-out outlives the reload', async () => {
    const limits = { loginFailures: 1, loginBackoffMax: 300, addressFailures: 0 };
    // The clock stands still: the 1 s back-off cannot run out between the steps.
    const at = Date.now();
    const tokens = await handler(await config({ limits }), { now: () => at });
    expect((await ask(tokens, 'alice', 'wrong-1')).status).toBe(401);
    expect((await ask(tokens, 'alice', 'wrong-2')).status).toBe(401);
    expect((await ask(tokens, 'alice', 'wrong-3')).status).toBe(429);
    await tokens.reload(await config({ limits, acl: [{ match: { account: '*' }, actions: ['*'] }] }));
    expect((await ask(tokens, 'alice', 'wrong-4')).status).toBe(429);
    expect(tokens.stats().backoffUsers).toBe(1);
    // New numbers apply to the kept table: no back-off at all lets the user try again.
    await tokens.reload(await config({ limits: { ...limits, loginFailures: 0 } }));
    expect((await ask(tokens, 'alice', 'alice-pw')).status).toBe(200);
  });

  it('a request runs on the generation it began with; the old authenticators close once it is done', async () => {
    const held = heldAuthenticator('robot');
    const tokens = await handler(
      await config({
        authenticators: [held.authenticator],
        acl: [{ match: { account: 'robot' }, actions: ['pull'] }],
      }),
    );
    const pending = ask(tokens, 'robot', 'robot-pw', 'repository:robot/app:pull,push');
    for (let i = 0; i < 200 && held.started() === 0; i++) await tick();
    expect(held.started()).toBe(1);
    await tokens.reload(await config({ acl: [{ match: { account: '*' }, actions: ['pull', 'push'] }] }));
    await tick();
    expect(held.state.closed).toBe(false);
    held.release();
    expect(await pending).toMatchObject({
      status: 200,
      access: [{ type: 'repository', name: 'robot/app', actions: ['pull'] }],
    });
    for (let i = 0; i < 200 && !held.state.closed; i++) await tick();
    expect(held.state.closed).toBe(true);
    // The new generation has no such user.
    expect((await ask(tokens, 'robot', 'robot-pw')).status).toBe(401);
  });

  it('does not close an authenticator the new config still lists', async () => {
    const held = heldAuthenticator('robot');
    held.release();
    const tokens = await handler(await config({ authenticators: [held.authenticator] }));
    await tokens.reload(await config({ authenticators: [held.authenticator] }));
    for (let i = 0; i < 20; i++) await tick();
    expect(held.state.closed).toBe(false);
    expect((await ask(tokens, 'robot', 'x', 'repository:robot/app:pull')).status).toBe(200);
  });

  it('moves to a new base path', async () => {
    const tokens = await handler(await config());
    expect(tokens.realmPath).toBe('/token');
    await tokens.reload(await config({ basePath: '/auth' }));
    expect(tokens.realmPath).toBe('/auth/token');
    expect((await ask(tokens, 'alice', 'alice-pw')).status).toBe(200);
    expect(await tokens.fetch(new Request('http://t.invalid/token'))).toBeUndefined();
  });

  it('a user removed from the users while a reload builds stays removed once it is swapped in', async () => {
    const bob = htpasswdLine('bob', 'bob-pw');
    // The users as they are on disk now; both configs read them, as two reads of one file would.
    let users = `${alice}\n${bob}\n`;
    const tokens = await handler(await config({ users: { entries: () => users } }));
    expect((await ask(tokens, 'bob', 'bob-pw', 'repository:bob/app:pull')).status).toBe(200);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reads = 0;
    // The new generation reads the users, then takes its time (keys, directory connections).
    const next = await config({
      users: {
        entries: async () => {
          const read = users;
          if (reads++ === 0) await gate;
          return read;
        },
      },
      acl: [{ match: { account: '/.+/' }, actions: ['pull'] }],
    });
    const reloading = tokens.reload(next);
    for (let i = 0; i < 20 && reads === 0; i++) await tick();
    expect(reads).toBe(1);
    // bob leaves the file; the watcher's users reload comes while the build is still running.
    users = `${alice}\n`;
    const usersReloaded = tokens.reloadUsers();
    release();
    await reloading;
    await usersReloaded;
    expect((await ask(tokens, 'bob', 'bob-pw', 'repository:bob/app:pull')).status).toBe(401);
    expect((await ask(tokens, 'alice', 'alice-pw', 'repository:alice/app:pull')).status).toBe(200);
  });
});
