import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { generateSigningKey } from './generate-signing-key.js';
import { loadServerConfig } from './server-config.js';
import { testKeyPair, testServerFiles } from './testing/fixtures.js';
import { createTokenServer, type ServerLogEntry, type TokenServer } from './token-server.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

let running: { server: TokenServer; dir: string } | undefined;
afterEach(async () => {
  if (running) {
    await running.server.close();
    await rm(running.dir, { recursive: true, force: true });
    running = undefined;
  }
});

/** A running server on loopback, started from a serve.yml the test then rewrites. */
async function start() {
  const files = await testServerFiles({ alice: 'alice-pw' });
  const configFile = join(files.dir, 'serve.yml');
  await writeFile(configFile, stringify(files.raw));
  const logs: ServerLogEntry[] = [];
  const server = await createTokenServer(await loadServerConfig(configFile), { log: (e) => logs.push(e) });
  running = { server, dir: files.dir };
  const url = await server.listen();
  const status = () =>
    fetch(`${url}/token?scope=repository:alice/app:pull`, {
      headers: { authorization: basic('alice', 'alice-pw') },
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as { token?: string } }));
  return { ...files, configFile, logs, server, status };
}

describe('a reload checks restart-only sections as a start would', () => {
  it.each([
    [
      'metrics bearer token with a space',
      async (dir: string) => {
        await writeFile(join(dir, 'metrics.token'), 'two words\n');
        return { metrics: { enabled: true, bearer_token_file: 'metrics.token' } };
      },
      'metrics.bearer_token_file',
    ],
    [
      'TLS turned on with a key that is not the certificate’s',
      async (dir: string) => {
        const [first, second] = [await testKeyPair(), await generateSigningKey({ algorithm: 'ES256' })];
        await writeFile(join(dir, 'tls.crt'), first.certPem);
        await writeFile(join(dir, 'tls.key'), second.keyPem);
        return { tls: { cert: 'tls.crt', key: 'tls.key' } };
      },
      'tls: the key',
    ],
    [
      'admin secret too short',
      async (dir: string) => {
        await writeFile(join(dir, 'admin.token'), 'short\n');
        return { admin: { enabled: true, bearer_token_file: 'admin.token' } };
      },
      'admin.bearer_token_file',
    ],
    [
      'store password file missing',
      async () => ({ store: { url: 'redis://127.0.0.1:1', password_file: 'no-such-password' } }),
      'store.password_file',
    ],
  ])(
    '%s: the reload fails with the start-up message and changes nothing',
    async (_what, section, keyPath) => {
      const { dir, raw, configFile, logs, status } = await start();
      const before = await status();
      expect(before.status).toBe(200);
      // The same edit also widens the ACL: none of it may be applied.
      const edited = {
        ...raw,
        ...(await section(dir)),
        acl: [{ match: { account: 'alice' }, actions: ['pull', 'push'] }],
      };
      await writeFile(configFile, stringify(edited));
      const startError = await createTokenServer(await loadServerConfig(configFile)).then(
        async (server) => {
          await server.close();
          return undefined;
        },
        (err: unknown) => (err as Error).message,
      );
      expect(startError).toContain(keyPath);
      await running?.server.reload();
      const outcome = logs.find((e) => e.msg === 'config reload failed' || e.msg === 'config reloaded');
      expect(outcome).toMatchObject({ msg: 'config reload failed', level: 'error', error: startError });
      const after = await status();
      expect(after.status).toBe(200);
      const claims = JSON.parse(
        Buffer.from(after.body.token?.split('.')[1] ?? '', 'base64url').toString(),
      ) as {
        access: { actions: string[] }[];
      };
      expect(claims.access[0]?.actions).toEqual(['pull']);
      expect(JSON.stringify(logs)).not.toContain('two words');
    },
  );
});

describe('revocations across a reload', () => {
  it('keeps a revocation as long as the refresh tokens a reload let live longer', async () => {
    const files = await testServerFiles({ alice: 'alice-pw' });
    const configFile = join(files.dir, 'serve.yml');
    const secret = 'r'.repeat(40);
    await writeFile(join(files.dir, 'admin.token'), `${secret}\n`);
    const raw = files.raw as { token: Record<string, unknown> };
    const withLifetime = (seconds: number) => ({
      ...files.raw,
      token: { ...raw.token, refresh_expiration: seconds },
      admin: { enabled: true, bearer_token_file: 'admin.token' },
    });
    await writeFile(configFile, stringify(withLifetime(3600)));
    let clock = Date.now() + 60_000;
    const logs: ServerLogEntry[] = [];
    const server = await createTokenServer(await loadServerConfig(configFile), {
      log: (e) => logs.push(e),
      now: () => clock,
    });
    running = { server, dir: files.dir };
    const url = await server.listen();

    await writeFile(configFile, stringify(withLifetime(86_400)));
    await server.reload();
    expect(logs.find((e) => e.msg === 'config reloaded')).toBeDefined();
    const login = (await (
      await fetch(`${url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=password&username=alice&password=alice-pw&service=unit-registry&client_id=t&access_type=offline&scope=repository:alice/app:pull',
      })
    ).json()) as { refresh_token: string };
    const refresh = () =>
      fetch(`${url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `grant_type=refresh_token&refresh_token=${login.refresh_token}&service=unit-registry&client_id=t&scope=repository:alice/app:pull`,
      }).then((r) => r.status);
    expect(await refresh()).toBe(200);

    clock += 1000;
    const revoked = await fetch(`${url}/admin/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: '{"account":"alice"}',
    });
    expect(revoked.status).toBe(200);
    expect(await refresh()).toBe(401);
    // Past the lifetime the server started with, well within the one the token was issued with.
    clock += 2 * 3600 * 1000;
    expect(await refresh()).toBe(401);
  });
});
