import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCliHome } from './harness/regauth-cli.js';
import { makeLoopbackTls } from './harness/tls.js';
import { startTokenServer, type TokenServerHandle } from './harness/token-server.js';

const USERS = { alice: 'alice-secret-1', bob: 'bob-secret-2' };
const ADMIN_SECRET = '5b0f3c1e9d2a4f6b8c7e0d1a2b3c4d5e6f708192a3b4c5d6';
const METRICS_TOKEN = 'c2f1e0d9b8a7968574635241302f1e0d';
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function sample(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const servers: TokenServerHandle[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A server with the admin endpoint, metrics, and a login cache long enough to see it at work. */
async function startWithAdmin(extra: Record<string, unknown> = {}, dir?: string) {
  if (dir === undefined) {
    dir = await mkdtemp(join(tmpdir(), 'regauth-revoke-'));
    const made = dir;
    cleanups.push(() => rm(made, { recursive: true, force: true }));
  }
  const adminFile = join(dir, 'admin.token');
  await writeFile(adminFile, `${ADMIN_SECRET}\n`);
  const metricsFile = join(dir, 'metrics.token');
  await writeFile(metricsFile, `${METRICS_TOKEN}\n`);
  const server = await startTokenServer({
    users: USERS,
    extra: {
      users: { cache_seconds: 600 },
      metrics: { enabled: true, bearer_token_file: metricsFile },
      admin: { enabled: true, bearer_token_file: adminFile },
      ...extra,
    },
  });
  servers.push(server);
  return { server, adminFile, configFile: join(server.dir, 'serve.yml') };
}

/** `regauth serve revoke`, as an operator runs it next to the server. */
async function revokeCli(args: readonly string[]) {
  const cli = await createCliHome();
  try {
    const result = await cli.run(['serve', 'revoke', ...args]);
    return { code: result.code, stdout: result.stdout.toString(), stderr: result.stderr };
  } finally {
    await cli.dispose();
  }
}

function client(server: TokenServerHandle) {
  /** docker login: Basic credentials, and an offline (refresh) token asked for. */
  const login = async (user: keyof typeof USERS = 'alice') => {
    const url = new URL(`${server.url}/token`);
    url.searchParams.set('service', server.service);
    url.searchParams.set('scope', `repository:${user}/app:pull`);
    url.searchParams.set('offline_token', 'true');
    url.searchParams.set('client_id', 'docker');
    const res = await fetch(url, { headers: { authorization: basic(user, USERS[user]) } });
    const body = (await res.json()) as { refresh_token?: string };
    return { status: res.status, refreshToken: body.refresh_token ?? '' };
  };
  /** What docker and containers/image do with the identity token on the next pull. */
  const refresh = async (refreshToken: string) => {
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        service: server.service,
        client_id: 'docker',
        scope: 'repository:alice/app:pull',
      }),
    });
    await res.arrayBuffer();
    return res.status;
  };
  const revoke = async (body: unknown, secret = ADMIN_SECRET) => {
    const res = await fetch(`${server.url}/admin/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return {
      status: res.status,
      headers: res.headers,
      body: (await res.json()) as Record<string, string>,
    };
  };
  const metrics = async () => {
    const res = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    return res.text();
  };
  return { login, refresh, revoke, metrics };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('regauth serve: revoking an account', () => {
  it("refuses the account's refresh tokens and cached login after a revocation; a new login works", async () => {
    const { server } = await startWithAdmin();
    const c = client(server);
    const first = await c.login();
    expect(first.status).toBe(200);
    expect(await c.refresh(first.refreshToken)).toBe(200);
    const bobs = await c.login('bob');
    // The second login comes from the login cache: the htpasswd authenticator is asked once.
    expect((await c.login()).status).toBe(200);
    const checks = async () =>
      sample(
        await c.metrics(),
        'regauth_authenticator_duration_seconds_count{kind="htpasswd",result="accepted"}',
      );
    expect(await checks()).toBe(2); // alice once, bob once

    const revoked = await c.revoke({ account: 'alice' });
    expect(revoked.status).toBe(200);
    expect(revoked.body.account).toBe('alice');
    expect(revoked.body.note).toMatch(
      /access tokens already issued stay valid until they expire \(at most 300 s/,
    );
    expect(await c.refresh(first.refreshToken)).toBe(401);
    expect(await c.refresh(bobs.refreshToken)).toBe(200);
    const entries = await server.waitForLog((e) => e.msg === 'token' && e.reason === 'revoked');
    expect(entries).toContainEqual(
      expect.objectContaining({
        msg: 'token',
        grantType: 'refresh_token',
        account: 'alice',
        reason: 'revoked',
      }),
    );
    expect(entries).toContainEqual(
      expect.objectContaining({ msg: 'revocation recorded', account: 'alice', before: revoked.body.before }),
    );

    // The password is checked again (the cache's entry predates the revocation), then cached anew.
    const again = await c.login();
    expect(again.status).toBe(200);
    expect(await checks()).toBe(3);
    expect((await c.login()).status).toBe(200);
    expect(await checks()).toBe(3);
    expect(await c.refresh(again.refreshToken)).toBe(200);

    const body = await c.metrics();
    expect(sample(body, 'regauth_revocations_total')).toBe(1);
    expect(sample(body, 'regauth_revocation_refusals_total{what="refresh_token"}')).toBe(1);
    expect(sample(body, 'regauth_revocation_refusals_total{what="verified_login"}')).toBe(1);
    expect(server.output()).not.toContain(ADMIN_SECRET);
  }, 60_000);

  it('spares refresh tokens issued after a `before` in the past', async () => {
    const { server } = await startWithAdmin();
    const c = client(server);
    const older = await c.login();
    await sleep(30);
    const before = new Date().toISOString();
    await sleep(30);
    const newer = await c.login();
    const revoked = await c.revoke({ account: 'alice', before });
    expect(revoked.status).toBe(200);
    expect(revoked.body.before).toBe(before);
    expect(await c.refresh(older.refreshToken)).toBe(401);
    expect(await c.refresh(newer.refreshToken)).toBe(200);
  }, 60_000);

  it('answers bad requests with 400 and wrong secrets with 401, then 429 once the budget is spent, the right secret still 200', async () => {
    const { server } = await startWithAdmin();
    const c = client(server);
    const bad = await c.revoke({ account: 'alice', before: 'next tuesday' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/RFC 3339/);
    expect((await c.revoke('{"account":')).body.error).toMatch(/not JSON/);
    expect((await c.revoke({ account: 'x'.repeat(400) })).body.error).toMatch(/longer than 256 bytes/);

    const wrong = await c.revoke({ account: 'alice' }, 'f'.repeat(48));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer /);
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await c.revoke({ account: 'alice' }, `guess-${i}-${'0'.repeat(40)}`);
      statuses.push(res.status);
      if (res.status === 429) break;
    }
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.filter((s) => s === 401).length).toBeLessThan(20);
    // Wrong secrets keep waiting; the right one passes, or a stranger behind the same balancer
    // address could lock every admin out.
    expect((await c.revoke({ account: 'alice' }, `guess-again-${'0'.repeat(40)}`)).status).toBe(429);
    expect((await c.revoke({ account: 'alice' })).status).toBe(200);
    expect(server.output()).not.toMatch(/guess-\d/);
  }, 60_000);

  it('has no admin endpoint unless enabled, and refuses to start with a short secret', async () => {
    const plain = await startTokenServer({ users: USERS });
    servers.push(plain);
    const res = await fetch(`${plain.url}/admin/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_SECRET}` },
      body: '{"account":"alice"}',
    });
    await res.arrayBuffer();
    expect(res.status).toBe(404);

    const dir = await mkdtemp(join(tmpdir(), 'regauth-revoke-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const shortFile = join(dir, 'admin.token');
    await writeFile(shortFile, 'hunter2-hunter2\n');
    await expect(
      startTokenServer({ users: USERS, extra: { admin: { enabled: true, bearer_token_file: shortFile } } }),
    ).rejects.toThrow(/at least 32 random ones/);
  }, 60_000);

  it('regauth serve revoke sends the revocation to the running server and prints what it recorded', async () => {
    const { server, configFile, adminFile } = await startWithAdmin();
    const c = client(server);
    const first = await c.login();
    const done = await revokeCli(['--config', configFile, '--account', 'alice']);
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(
      /^revoked alice: refresh tokens, cached logins and reusable access tokens issued before \S+Z are refused/,
    );
    expect(done.stdout).toMatch(/note: access tokens already issued stay valid until they expire/);
    expect(await c.refresh(first.refreshToken)).toBe(401);

    const bad = await revokeCli(['--config', configFile, '--account', 'alice', '--before', 'tomorrow']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /^regauth: error: the server at http:\/\/127\.0\.0\.1:\d+ answered 400: before must be an RFC 3339 time/,
    );

    // The secret changed on disk, not in the running server: one line saying what to do.
    await writeFile(adminFile, `${'e'.repeat(48)}\n`);
    const refused = await revokeCli(['--config', configFile, '--account', 'alice']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^regauth: error: the server at \S+ refused the secret of admin\.bearer_token_file .*restart regauth serve/,
    );
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
  }, 60_000);

  it('regauth serve revoke says so when nothing listens, or the config has no admin endpoint', async () => {
    const { server, configFile } = await startWithAdmin();
    const dir = await mkdtemp(join(tmpdir(), 'regauth-revoke-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const { readFile } = await import('node:fs/promises');
    const { parse, stringify } = await import('yaml');
    const config = parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
    // The same config, pointed at a port nothing listens on.
    const port = Number(/:(\d+)$/.exec(server.url)?.[1]);
    const { freePort } = await import('./harness/processes.js');
    const unused = await freePort();
    expect(unused).not.toBe(port);
    const elsewhere = join(dir, 'elsewhere.yml');
    await writeFile(elsewhere, stringify({ ...config, listen: `127.0.0.1:${unused}` }));
    const down = await revokeCli(['--config', elsewhere, '--account', 'alice']);
    expect(down.code).toBe(1);
    expect(down.stderr).toBe(
      `regauth: error: nothing listens at http://127.0.0.1:${unused} (connection refused); start the server with regauth serve --config ${elsewhere}, or give its address with --url\n`,
    );
    const off = join(dir, 'off.yml');
    const { admin: _, ...withoutAdmin } = config;
    await writeFile(off, stringify(withoutAdmin));
    const disabled = await revokeCli(['--config', off, '--account', 'alice']);
    expect(disabled.code).toBe(1);
    expect(disabled.stderr).toMatch(
      /^regauth: error: \S+off\.yml: the admin endpoint is off; add admin: \{ enabled: true/,
    );
    // The running server has it off: 404, said in one line.
    const plain = await startTokenServer({ users: USERS });
    servers.push(plain);
    const plainConfig = parse(await readFile(join(plain.dir, 'serve.yml'), 'utf8')) as Record<
      string,
      unknown
    >;
    const mismatch = join(dir, 'mismatch.yml');
    await writeFile(mismatch, stringify({ ...plainConfig, admin: config.admin }));
    const missing = await revokeCli(['--config', mismatch, '--account', 'alice']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^regauth: error: the server at \S+ has no admin endpoint at \/admin\/revoke; enable admin/,
    );
  }, 60_000);

  it('regauth serve revoke reaches a TLS server by its pinned certificate, and sends nothing to another', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regauth-revoke-tls-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    // A certificate from a private CA the system does not trust, for 127.0.0.1.
    const tls = await makeLoopbackTls();
    await writeFile(join(dir, 'tls.crt'), tls.certPem);
    await writeFile(join(dir, 'tls.key'), tls.keyPem);
    const { server, configFile } = await startWithAdmin(
      { tls: { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') } },
      dir,
    );
    expect(server.url).toMatch(/^https:/);
    const done = await revokeCli(['--config', configFile, '--account', 'alice']);
    expect(done.stderr).toBe('');
    expect(done.stdout).toMatch(/^revoked alice/);
    const logs = await server.waitForLog((e) => e.msg === 'revocation recorded');
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'revocation recorded', account: 'alice' }));

    // Another certificate in the config than the server presents: refused before the secret goes out.
    const { readFile } = await import('node:fs/promises');
    const other = await makeLoopbackTls();
    const otherCert = join(dir, 'other.crt');
    await writeFile(otherCert, other.certPem);
    const text = (await readFile(configFile, 'utf8')).replace(join(dir, 'tls.crt'), otherCert);
    const wrongConfig = join(dir, 'wrong-cert.yml');
    await writeFile(wrongConfig, text);
    const before = server
      .logEntries()
      .filter((e) => e.msg === 'admin unauthorized' || e.msg === 'revocation recorded');
    const refused = await revokeCli(['--config', wrongConfig, '--account', 'bob']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/does not present the certificate of tls\.cert .*nothing was sent/);
    const after = server
      .logEntries()
      .filter((e) => e.msg === 'admin unauthorized' || e.msg === 'revocation recorded');
    expect(after).toHaveLength(before.length);
  }, 60_000);

  it("runs the README's admin sample and its regauth serve revoke line", async () => {
    const { readFile } = await import('node:fs/promises');
    const { parse } = await import('yaml');
    const readme = await readFile(join(import.meta.dirname, '../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf("### Revoking a user's tokens"));
    const yamlBlock = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    const shBlock = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    const sample = parse(yamlBlock) as { admin: Record<string, unknown> };
    expect(sample.admin).toEqual({ enabled: true, bearer_token_file: 'admin.token' });
    const dir = await mkdtemp(join(tmpdir(), 'regauth-revoke-readme-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'admin.token'), `${ADMIN_SECRET}\n`);
    const server = await startTokenServer({
      users: USERS,
      extra: { admin: { ...sample.admin, bearer_token_file: join(dir, 'admin.token') } },
    });
    servers.push(server);
    const line = shBlock.split('\n')[0]?.replace(/\s+#.*$/, '') ?? '';
    expect(line).toBe('regauth serve revoke --config serve.yml --account alice');
    const args = line
      .split(' ')
      .slice(3)
      .map((a) => (a === 'serve.yml' ? join(server.dir, 'serve.yml') : a));
    const done = await revokeCli(args);
    expect(done.stderr).toBe('');
    expect(done.stdout).toMatch(/^revoked alice/);
  }, 60_000);

  it('serves the admin endpoint only on its own listen address when one is given; revocations survive a reload', async () => {
    const { freePort } = await import('./harness/processes.js');
    const port = await freePort();
    const { server } = await startWithAdmin();
    const c = client(server);
    const first = await c.login();
    // The same server again, with admin on a listen address of its own.
    const dir = await mkdtemp(join(tmpdir(), 'regauth-revoke-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'admin.token'), `${ADMIN_SECRET}\n`);
    const own = await startTokenServer({
      users: USERS,
      extra: {
        admin: { enabled: true, bearer_token_file: join(dir, 'admin.token'), listen: `127.0.0.1:${port}` },
      },
    });
    servers.push(own);
    await own.waitForLog((e) => e.msg === 'admin listening');
    const onTokenPort = await client(own).revoke({ account: 'alice' });
    expect(onTokenPort.status).toBe(404);
    const res = await fetch(`http://127.0.0.1:${port}/admin/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_SECRET}` },
      body: '{"account":"alice"}',
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { account: string }).account).toBe('alice');

    // SIGHUP reloads the users; the revocation on the first server stays in force.
    expect((await c.revoke({ account: 'alice' })).status).toBe(200);
    expect(await c.refresh(first.refreshToken)).toBe(401);
    server.process.kill('SIGHUP');
    await server.waitForLog((e) => e.msg === 'users reloaded');
    expect(await c.refresh(first.refreshToken)).toBe(401);
    expect(await c.refresh((await c.login()).refreshToken)).toBe(200);
  }, 60_000);
});
