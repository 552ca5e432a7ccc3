import { rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { parseServerConfig } from './server-config.js';
import { htpasswdLine, testServerFiles } from './testing/fixtures.js';
import { createTokenServer, MAX_BODY_BYTES, type ServerLogEntry, type TokenServer } from './token-server.js';

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

async function start(options: { watchUsers?: boolean } = {}) {
  const files = await testServerFiles({ alice: 'alice-pw' });
  const config = parseServerConfig(files.raw, `${files.dir}/serve.yml`);
  const logs: ServerLogEntry[] = [];
  const server = await createTokenServer(config, { log: (e) => logs.push(e), ...options });
  const url = await server.listen();
  running = { server, dir: files.dir };
  return { url, logs, server, htpasswd: files.htpasswd };
}

async function until(check: () => Promise<boolean>, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

describe('createTokenServer start-up warnings and file errors', () => {
  it('warns when it serves plain HTTP on an address reachable from elsewhere, and not on loopback', async () => {
    const files = await testServerFiles({ alice: 'alice-pw' });
    const logs: ServerLogEntry[] = [];
    // Bound to all addresses for a moment only; nothing connects to it.
    const config = parseServerConfig({ ...files.raw, listen: '0.0.0.0:0' }, `${files.dir}/serve.yml`);
    const server = await createTokenServer(config, { log: (e) => logs.push(e) });
    running = { server, dir: files.dir };
    const url = await server.listen();
    expect(logs.find((e) => e.msg === 'plain HTTP on a network address')).toMatchObject({
      level: 'warn',
      url,
      hint: expect.stringContaining('passwords travel in Basic headers'),
    });
    await server.close();
    await rm(files.dir, { recursive: true, force: true });
    running = undefined;
    const loopback = await start();
    expect(loopback.logs.map((e) => e.msg)).toEqual(['listening']);
  });

  it('warns when the admin endpoint listens in plain HTTP on an address reachable from elsewhere', async () => {
    const files = await testServerFiles({ alice: 'alice-pw' });
    const logs: ServerLogEntry[] = [];
    await writeFile(`${files.dir}/admin.token`, `${'s'.repeat(40)}\n`);
    // Bound to all addresses for a moment only; nothing connects to it.
    const config = parseServerConfig(
      {
        ...files.raw,
        admin: { enabled: true, bearer_token_file: `${files.dir}/admin.token`, listen: '0.0.0.0:0' },
      },
      `${files.dir}/serve.yml`,
    );
    const server = await createTokenServer(config, { log: (e) => logs.push(e) });
    running = { server, dir: files.dir };
    await server.listen();
    const admin = logs.find((e) => e.msg === 'admin listening') as { url: string } | undefined;
    expect(admin?.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    expect(logs.filter((e) => e.msg === 'plain HTTP on a network address')).toEqual([
      expect.objectContaining({
        level: 'warn',
        url: admin?.url,
        hint: expect.stringContaining('admin bearer secret'),
      }),
    ]);
  });

  it.each([
    ['token', 'key', 'token.key'],
    ['token', 'certificate', 'token.certificate'],
    ['users', 'htpasswd', 'users.htpasswd'],
  ])('names a missing %s.%s file by its key path and the config file', async (section, key, path) => {
    const files = await testServerFiles({ alice: 'alice-pw' });
    const raw = files.raw as Record<string, Record<string, unknown>>;
    const missing = `${files.dir}/missing.pem`;
    const config = parseServerConfig(
      { ...raw, [section]: { ...raw[section], [key]: missing } },
      `${files.dir}/serve.yml`,
    );
    const error = await createTokenServer(config).catch((e: unknown) => e);
    await rm(files.dir, { recursive: true, force: true });
    expect(error).toMatchObject({
      code: 'ERR_INVALID_CONFIG',
      message: `${files.dir}/serve.yml: ${path}: cannot read ${missing}: no such file or folder (ENOENT); check the path; the folder it is in must exist`,
    });
  });
});

describe('createTokenServer over real HTTP', () => {
  it('answers /healthz and reports where it listens', async () => {
    const { url, logs } = await start();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(logs[0]).toEqual({ msg: 'listening', url });
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('serves tokens at /token with no-store caching headers', async () => {
    const { url } = await start();
    const res = await fetch(`${url}/token?service=unit-registry&scope=repository:alice/app:pull`, {
      headers: { authorization: basic('alice', 'alice-pw') },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { token: string };
    expect(body.token.split('.')).toHaveLength(3);
  });

  it('answers an unknown path with a JSON 404 that points at /token', async () => {
    const { url } = await start();
    const res = await fetch(`${url}/v2/`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error_description: string }).error_description).toMatch(/\/token/);
  });

  it('refuses a POST body over the cap with 413', async () => {
    const { url } = await start();
    const res = await fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=password&username=alice&password=${'x'.repeat(MAX_BODY_BYTES)}`,
    }).catch((err: unknown) => err as Error);
    // The server answers 413 and closes; fetch may see the answer or the closed socket.
    if (res instanceof Response) expect(res.status).toBe(413);
    else expect(res).toBeInstanceOf(Error);
  });

  it('refuses oversized headers with 431', async () => {
    const { url } = await start();
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${url}/token`, { headers: { 'x-padding': 'y'.repeat(20_000) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(431);
  });

  it('picks up a changed htpasswd file without a restart', async () => {
    const { url, htpasswd, logs } = await start({ watchUsers: true });
    const tokenFor = (user: string, password: string) =>
      fetch(`${url}/token?scope=repository:${user}/app:pull`, {
        headers: { authorization: basic(user, password) },
      }).then((r) => r.status);
    expect(await tokenFor('bob', 'bob-pw')).toBe(401);
    await writeFile(htpasswd, `${htpasswdLine('alice', 'alice-pw')}\n${htpasswdLine('bob', 'bob-pw')}\n`);
    // Wait for the reload itself: polling with bob's password first would count as failed logins.
    expect(await until(async () => logs.some((e) => e.msg === 'users reloaded'))).toBe(true);
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'users reloaded', users: 2 }));
    expect(await tokenFor('bob', 'bob-pw')).toBe(200);
  });

  it('keeps the users it had when the file cannot be read on reload, and says so', async () => {
    const { url, htpasswd, server, logs } = await start();
    await rm(htpasswd);
    await server.reloadUsers();
    expect(logs).toContainEqual(
      expect.objectContaining({ msg: 'reload failed', level: 'error', kept: 1, dropped: 0 }),
    );
    const res = await fetch(`${url}/token?scope=repository:alice/app:pull`, {
      headers: { authorization: basic('alice', 'alice-pw') },
    });
    expect(res.status).toBe(200);
  });

  it('warns once when requests carry X-Forwarded-For but no proxy is trusted', async () => {
    const { url, logs } = await start();
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${url}/healthz`, { headers: { 'x-forwarded-for': `198.51.100.${i}` } });
      expect(res.status).toBe(200);
    }
    const warnings = logs.filter((e) => e.msg === 'X-Forwarded-For ignored');
    expect(warnings).toEqual([
      expect.objectContaining({
        level: 'warn',
        peer: '127.0.0.1',
        hint: expect.stringMatching(/trusted_proxies/),
      }),
    ]);
  });

  it('sweeps expired entries from its tables on a timer, with no request touching them', async () => {
    const files = await testServerFiles({ alice: 'alice-pw' });
    const config = parseServerConfig(files.raw, `${files.dir}/serve.yml`);
    let offset = 0;
    const server = await createTokenServer(config, { sweepIntervalMs: 20, now: () => Date.now() + offset });
    running = { server, dir: files.dir };
    const url = await server.listen();
    const res = await fetch(`${url}/token?scope=repository:x/y:pull`, {
      headers: { authorization: basic('zed', 'x') },
    });
    expect(res.status).toBe(401);
    expect(server.stats()).toMatchObject({ backoffUsers: 1, addressBudgets: 1 });
    offset = 3_600_000;
    expect(await until(async () => server.stats().backoffUsers === 0)).toBe(true);
    expect(server.stats().addressBudgets).toBe(0);
  });

  it('finishes a request in flight when asked to close', async () => {
    const { url, server } = await start();
    const inFlight = fetch(`${url}/token?scope=repository:alice/app:pull`, {
      headers: { authorization: basic('alice', 'alice-pw') },
    });
    // Close once the server holds the connection (a fixed wait lost the race on a loaded machine).
    for (let i = 0; i < 500 && server.stats().connections === 0; i++)
      await new Promise((r) => setTimeout(r, 2));
    expect(server.stats().connections).toBeGreaterThan(0);
    const closed = server.close();
    const res = await inFlight;
    expect(res.status).toBe(200);
    await closed;
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});
