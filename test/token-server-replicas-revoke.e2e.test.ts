import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type RoundRobinBalancer, startRoundRobinBalancer } from '../bench/round-robin-balancer.js';
import { buildOciLayout } from './harness/oci-layout.js';
import { freePort } from './harness/processes.js';
import { type RedisHandle, startRedis } from './harness/redis.js';
import { createCliHome } from './harness/regauth-cli.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';
import { createSkopeo, type Skopeo, type SkopeoResult } from './harness/skopeo.js';
import { startTokenServer, type TokenServerHandle } from './harness/token-server.js';

/**
 * Three `regauth serve` replicas sharing one redis-server, behind a round-robin TCP balancer
 * that is the registry's token realm, in front of the real docker-registry. A revocation made
 * anywhere must hold everywhere, and skopeo keeps pushing and pulling through the balancer all
 * along. Every loop is bounded in count and time.
 */

const USERS = {
  alice: 'alice-secret-1',
  bob: 'bob-secret-2',
  carol: 'carol-secret-3',
  dave: 'dave-secret-4',
  erin: 'erin-secret-5',
};
type User = keyof typeof USERS;
const ADMIN_SECRET = '9c1f3e5a7b2d4c6e8f0a1b3c5d7e9f2a4b6c8d0e1f3a5b7c';
/** The issue's promise: a revocation made at one replica is honoured by the others within this. */
const PROPAGATION_MS = 1_000;
/** Bounds of the skopeo loop: it runs while the tests below run, and stops at whichever comes first. */
const SKOPEO_MAX_OPERATIONS = 60;
const SKOPEO_MAX_MS = 240_000;

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${what} within ${timeoutMs} ms`);
}

/** One GET on a connection of its own, so a balancer in front hands each to the next replica. */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, agent: false, timeout: 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.once('error', reject);
    req.end();
  });
}

/** docker login at `base` (a replica or the balancer): Basic credentials, and a refresh token asked for. */
async function login(
  base: string,
  service: string,
  user: User,
): Promise<{ status: number; refreshToken: string }> {
  const url = new URL(`${base}/token`);
  url.searchParams.set('service', service);
  url.searchParams.set('scope', `repository:${user}/app:pull`);
  url.searchParams.set('offline_token', 'true');
  url.searchParams.set('client_id', 'docker');
  const { status, body } = await get(url.href, { authorization: basic(user, USERS[user]) });
  const parsed = status === 200 ? (JSON.parse(body) as { refresh_token?: string }) : {};
  return { status, refreshToken: parsed.refresh_token ?? '' };
}

/** The refresh grant docker and containers/image send on the next pull. */
async function refresh(base: string, service: string, user: User, refreshToken: string): Promise<number> {
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      service,
      client_id: 'docker',
      scope: `repository:${user}/app:pull`,
    }),
  });
  await res.arrayBuffer();
  return res.status;
}

async function adminRevoke(base: string, account: string) {
  const res = await fetch(`${base}/admin/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_SECRET}` },
    body: JSON.stringify({ account }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

/** `regauth serve revoke`, as an operator runs it. */
async function revokeCli(args: readonly string[]) {
  const cli = await createCliHome();
  try {
    const result = await cli.run(['serve', 'revoke', ...args]);
    return { code: result.code, stdout: result.stdout.toString(), stderr: result.stderr };
  } finally {
    await cli.dispose();
  }
}

/**
 * skopeo pushing and pulling bob's image through the registry (whose realm is the balancer)
 * until `stop`, at most SKOPEO_MAX_OPERATIONS operations and SKOPEO_MAX_MS.
 */
function skopeoLoop(skopeo: Skopeo, registry: RegistryHandle, layout: string) {
  const results: { what: string; result: SkopeoResult }[] = [];
  let stopped = false;
  const started = Date.now();
  const done = (async () => {
    for (let i = 0; i < SKOPEO_MAX_OPERATIONS && !stopped && Date.now() - started < SKOPEO_MAX_MS; i++) {
      const tag = `v${Math.floor(i / 2)}`;
      const creds = `bob:${USERS.bob}`;
      const args =
        i % 2 === 0
          ? ['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:v1`]
          : ['inspect', '--raw', '--tls-verify=false', '--creds', creds];
      const what = `${args[0]} bob/app:${tag}`;
      results.push({ what, result: await skopeo.run([...args, `docker://${registry.host}/bob/app:${tag}`]) });
    }
  })();
  return {
    /** Operations over so far. */
    count: () => results.length,
    stop: async () => {
      stopped = true;
      await done;
      return results;
    },
  };
}

describe('token server replicas sharing revocations through Redis', () => {
  let redis: RedisHandle;
  let work: string;
  let adminFile: string;
  const replicas: TokenServerHandle[] = [];
  let balancer: RoundRobinBalancer;
  let registry: RegistryHandle;
  let skopeo: Skopeo;
  let loop: ReturnType<typeof skopeoLoop> | undefined;
  /** carol's refresh token, revoked by the second test. */
  let carolToken = '';

  const startReplica = (primary?: TokenServerHandle, port?: number) =>
    startTokenServer({
      users: USERS,
      ...(primary === undefined ? {} : { replicaOf: primary }),
      ...(port === undefined ? {} : { port }),
      extra: {
        store: { url: redis.url, prefix: 'revoke:', timeout: 0.25 },
        users: { cache_seconds: 600 },
        admin: { enabled: true, bearer_token_file: adminFile },
      },
    });
  const port = (replica: TokenServerHandle) => Number(new URL(replica.url).port);
  const service = () => (replicas[0] as TokenServerHandle).service;

  beforeAll(async () => {
    redis = await startRedis();
    work = await mkdtemp(join(tmpdir(), 'regauth-replicas-revoke-'));
    adminFile = join(work, 'admin.token');
    await writeFile(adminFile, `${ADMIN_SECRET}\n`);
    const primary = await startReplica();
    replicas.push(primary, await startReplica(primary), await startReplica(primary));
    balancer = await startRoundRobinBalancer(replicas.map((r) => ({ host: '127.0.0.1', port: port(r) })));
    registry = await startRegistry({
      auth: {
        token: {
          realm: `http://${balancer.host}/token`,
          service: primary.service,
          issuer: primary.issuer,
          rootcertbundle: primary.certFile,
        },
      },
    });
    skopeo = await createSkopeo();
    await buildOciLayout(join(work, 'src'), { tag: 'v1' });
    loop = skopeoLoop(skopeo, registry, join(work, 'src'));
  });

  afterAll(async () => {
    await loop?.stop();
    await registry?.stop();
    await balancer?.close();
    // Replicas first: they share the primary's key and htpasswd file.
    for (const replica of replicas.slice().reverse()) await replica.stop();
    await redis?.stop();
    await skopeo?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('honours a revocation made through one replica on the other two within a second', async () => {
    const [a, b, c] = replicas as [TokenServerHandle, TokenServerHandle, TokenServerHandle];
    const first = await login(a.url, service(), 'alice');
    expect(first.status).toBe(200);
    for (const replica of replicas)
      expect(await refresh(replica.url, service(), 'alice', first.refreshToken)).toBe(200);

    const revoked = await adminRevoke(a.url, 'alice');
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    const since = Date.now();
    // Each replica addressed directly: the others learn of it by the published message.
    for (const replica of [b, c, a]) {
      await until(
        async () => (await refresh(replica.url, service(), 'alice', first.refreshToken)) === 401,
        `${replica.url} did not refuse alice's refresh token`,
        Math.max(0, since + PROPAGATION_MS - Date.now()),
      );
    }
    // A new login after the revocation works anywhere, and its refresh token everywhere.
    const again = await login(c.url, service(), 'alice');
    expect(again.status).toBe(200);
    for (const replica of replicas)
      expect(await refresh(replica.url, service(), 'alice', again.refreshToken)).toBe(200);
    // Every replica lists it.
    const listed = await fetch(`${b.url}/admin/revocations`, {
      headers: { authorization: `Bearer ${ADMIN_SECRET}` },
    });
    const { revocations } = (await listed.json()) as { revocations: { account: string }[] };
    expect(revocations.map((r) => r.account)).toContain('alice');
  });

  it('takes a revocation from regauth serve revoke straight into Redis, with no server reachable, on every replica', async () => {
    const carol = await login(`http://${balancer.host}`, service(), 'carol');
    expect(carol.status).toBe(200);
    carolToken = carol.refreshToken;
    // The replicas' config, with the admin endpoint off and a port nothing listens on: the
    // command can only have written to Redis.
    const config = parse(await readFile(join((replicas[0] as TokenServerHandle).dir, 'serve.yml'), 'utf8'));
    const offline = join(work, 'offline.yml');
    await writeFile(
      offline,
      stringify({ ...config, listen: `127.0.0.1:${await freePort()}`, admin: { enabled: false } }),
    );
    const result = await revokeCli(['--config', offline, '--account', 'carol']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(`^revoked carol in redis://127\\.0\\.0\\.1:${redis.port}/0: .* refused by every replica`),
    );
    for (const replica of replicas) {
      await until(
        async () => (await refresh(replica.url, service(), 'carol', carol.refreshToken)) === 401,
        `${replica.url} did not refuse carol's refresh token`,
        5_000,
      );
    }
  });

  it('keeps a revocation across a replica restart: the new process reads it from Redis at start-up', async () => {
    const dave = await login(`http://${balancer.host}`, service(), 'dave');
    expect(dave.status).toBe(200);
    expect((await adminRevoke((replicas[1] as TokenServerHandle).url, 'dave')).status).toBe(200);
    const old = replicas[2] as TokenServerHandle;
    const oldPort = port(old);
    await old.stop();
    const restarted = await startReplica(replicas[0], oldPort);
    replicas[2] = restarted;
    // Refused from its first request on.
    expect(await refresh(restarted.url, service(), 'dave', dave.refreshToken)).toBe(401);
  });

  it('answers 503 to a revocation while Redis is down, keeps refusing what it knew, and keeps issuing tokens; skopeo never failed', async () => {
    const [a, b] = replicas as [TokenServerHandle, TokenServerHandle, TokenServerHandle];
    const erin = await login(`http://${balancer.host}`, service(), 'erin');
    expect(erin.status).toBe(200);
    const alice = await login(b.url, service(), 'alice');
    await redis.kill();
    try {
      const refused = await adminRevoke(a.url, 'erin');
      expect(refused.status).toBe(503);
      expect(refused.body.error).toMatch(
        /erin was not recorded: Redis \(redis:\/\/127\.0\.0\.1:\d+\/0\) did not answer/,
      );
      // Never pretended: erin's refresh token still works, on every replica.
      for (const replica of replicas)
        expect(await refresh(replica.url, service(), 'erin', erin.refreshToken)).toBe(200);
      // Logins keep working through the balancer, on every replica in turn.
      for (let i = 0; i < 6; i++)
        expect((await login(`http://${balancer.host}`, service(), 'bob')).status).toBe(200);
      // A login of alice after her revocation stays good; carol's revocation, known before Redis
      // died, stays in force on every replica.
      for (const replica of replicas) {
        expect(await refresh(replica.url, service(), 'alice', alice.refreshToken)).toBe(200);
        expect(await refresh(replica.url, service(), 'carol', carolToken)).toBe(401);
      }
      // skopeo goes on through the balancer while Redis is down.
      const before = loop?.count() ?? 0;
      await until(
        async () => (loop?.count() ?? 0) >= before + 2,
        'skopeo made no progress while Redis was down',
        120_000,
      );
    } finally {
      await redis.restart();
    }
    const results = (await loop?.stop()) ?? [];
    loop = undefined;
    // Pushes and pulls went through the balancer all along, and every one of them worked.
    expect(results.length).toBeGreaterThanOrEqual(4);
    const failed = results.filter((r) => r.result.code !== 0);
    expect(failed.map((r) => `${r.what}: ${r.result.stderr}`)).toEqual([]);
    expect(balancer.connectionsPerBackend().every((n) => n > 0)).toBe(true);
  });
});

describe('regauth serve revoke against a Redis store it cannot use', () => {
  it('says in one line that Redis is unreachable, or refused the password, and never shows the password', async () => {
    const redis = await startRedis({ requirePassword: true });
    const server = await startTokenServer({ users: { alice: USERS.alice } });
    try {
      const password = redis.password as string;
      const wrongFile = join(redis.dir, 'wrong.password');
      await writeFile(wrongFile, `${password}-not\n`);
      const config = parse(await readFile(join(server.dir, 'serve.yml'), 'utf8'));
      const wrong = join(redis.dir, 'wrong.yml');
      await writeFile(wrong, stringify({ ...config, store: { url: redis.url, password_file: wrongFile } }));
      const refused = await revokeCli(['--config', wrong, '--account', 'alice']);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(refused.stderr).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+\/0 refused the password/);
      expect(refused.stderr).not.toContain(password);

      const inUrl = join(redis.dir, 'in-url.yml');
      const away = await freePort();
      await writeFile(inUrl, stringify({ ...config, store: `redis://:${password}@127.0.0.1:${away}/0` }));
      const unreachable = await revokeCli(['--config', inUrl, '--account', 'alice']);
      expect(unreachable.code).not.toBe(0);
      expect(unreachable.stderr.trim().split('\n')).toHaveLength(1);
      expect(unreachable.stderr).toMatch(
        new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${away}/0`),
      );
      expect(unreachable.stderr).not.toContain(password);
    } finally {
      await server.stop();
      await redis.stop();
    }
  });
});
