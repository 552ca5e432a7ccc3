import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './harness/processes.js';
import { type RedisHandle, startRedis } from './harness/redis.js';
import { startTokenServer, type TokenServerHandle } from './harness/token-server.js';

/**
 * Three `regauth serve` replicas with one config (one signing key, one htpasswd file, one
 * redis-server), as behind a load balancer. Guesses spread over them must count together, and
 * a Redis outage must cost nothing but the sharing. Every loop is bounded in count and time.
 */

const PASSWORD = 'right-horse-battery';
/** Failures of a user before its back-off starts: the 4th failure in total starts it. */
const LOGIN_FAILURES = 3;

interface Replica {
  readonly server: TokenServerHandle;
  readonly metricsUrl: string;
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** A token request for `user`'s own repository, from `from` (any 127.0.0.0/8 address is loopback). */
function ask(
  replica: Replica,
  user: string,
  password: string,
  from = '127.0.0.1',
): Promise<{ status: number; body: string }> {
  const url = `${replica.server.url}/token?service=${replica.server.service}&scope=repository:${user}/app:pull`;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        headers: { authorization: basic(user, password) },
        agent: false,
        localAddress: from,
        timeout: 30_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.once('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.once('error', reject);
    req.end();
  });
}

async function health(replica: Replica): Promise<unknown> {
  return (await fetch(`${replica.server.url}/healthz`)).json();
}

async function metric(replica: Replica, line: RegExp): Promise<number> {
  const text = await (await fetch(replica.metricsUrl)).text();
  const found = text.split('\n').find((l) => line.test(l));
  return found === undefined ? Number.NaN : Number(found.split(' ').pop());
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} within ${timeoutMs} ms`);
}

describe('token server replicas sharing a Redis store', () => {
  let redis: RedisHandle;
  const replicas: Replica[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const setup = async (replicaOf?: TokenServerHandle): Promise<Replica> => {
      const metricsPort = await freePort();
      const server = await startTokenServer({
        users: { alice: PASSWORD, bob: PASSWORD, dave: PASSWORD },
        ...(replicaOf === undefined ? {} : { replicaOf }),
        extra: {
          store: { url: redis.url, prefix: 'replicas:', timeout: 0.25 },
          // No login cache: every right password goes through the lock-out checks.
          users: { cache_seconds: 0 },
          limits: {
            login_failures: LOGIN_FAILURES,
            login_window: 2,
            login_backoff_max: 4,
            // A budget far above what the test spends, yet read and written on every failure.
            address_failures: 1000,
          },
          metrics: { enabled: true, listen: `127.0.0.1:${metricsPort}` },
        },
      });
      return { server, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
    };
    const primary = await setup();
    replicas.push(primary, await setup(primary.server), await setup(primary.server));
  });

  afterAll(async () => {
    // Replicas first: they share the primary's key and htpasswd file.
    for (const replica of replicas.slice().reverse()) await replica.server.stop();
    await redis?.stop();
  });

  it('counts a brute force spread over the replicas in total, refuses the right password on each during the lock-out, and lets it end', async () => {
    expect(await health(replicas[0] as Replica)).toEqual({ status: 'ok', store: 'up' });
    const statuses: number[] = [];
    // Round robin until the first 429, at most 30 guesses: each replica alone would allow
    // LOGIN_FAILURES + 1 failures, three of them 12.
    for (let i = 0; i < 30; i++) {
      const { status } = await ask(replicas[i % 3] as Replica, 'alice', `guess-${i}`);
      statuses.push(status);
      if (status === 429) break;
    }
    const failures = statuses.filter((s) => s === 401).length;
    expect(statuses).toContain(429);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    // LOGIN_FAILURES + 1 start the back-off; a loaded machine may let one more through after
    // the first second of it has run out.
    expect(failures).toBeGreaterThanOrEqual(LOGIN_FAILURES + 1);
    expect(failures).toBeLessThanOrEqual(LOGIN_FAILURES + 2);

    // Failures that get through as the back-off runs out lengthen it (1 s, 2 s, then 4 s):
    // keep guessing, bounded, until a 4 s back-off is under way.
    let counted = failures;
    for (let i = 0; i < 200 && counted < LOGIN_FAILURES + 3; i++) {
      const { status } = await ask(replicas[i % 3] as Replica, 'alice', `more-${i}`);
      if (status === 401) counted++;
      else expect(status).toBe(429);
      if (status === 429) await new Promise((r) => setTimeout(r, 100));
    }
    expect(counted).toBe(LOGIN_FAILURES + 3);
    // The right password, from an address that never logged alice in, on every replica.
    for (const replica of replicas) {
      const { status, body } = await ask(replica, 'alice', PASSWORD, '127.0.0.77');
      expect(status, body).toBe(429);
    }
    // And the lock-out ends (4 s here): the right password is accepted again.
    let accepted = 0;
    await until(async () => {
      const { status } = await ask(replicas[accepted % 3] as Replica, 'alice', PASSWORD, '127.0.0.77');
      expect([200, 429]).toContain(status);
      return status === 200;
    }, 'the lock-out did not end');
    accepted++;
    expect(accepted).toBe(1);
  });

  it('keeps issuing tokens when Redis dies, says so in /healthz and /metrics, and shares counters again once it is back', async () => {
    const [a, b] = replicas as [Replica, Replica, Replica];
    expect(await metric(a, /^regauth_store_up /)).toBe(1);
    await redis.kill();
    // Logins keep working on every replica.
    for (const replica of replicas) expect((await ask(replica, 'bob', PASSWORD)).status).toBe(200);
    // A failure now cannot reach Redis, yet is answered.
    expect((await ask(a, 'bob', 'wrong-while-down')).status).toBe(401);
    await until(
      async () =>
        JSON.stringify(await health(a)) === JSON.stringify({ status: 'degraded', store: 'unreachable' }),
      '/healthz did not say degraded',
    );
    const healthz = await fetch(`${a.server.url}/healthz`);
    expect(healthz.status).toBe(200);
    expect(await metric(a, /^regauth_store_up /)).toBe(0);
    const errors =
      (await metric(a, /^regauth_store_errors_total\{kind="error"\}/)) +
      (await metric(a, /^regauth_store_errors_total\{kind="timeout"\}/));
    expect(errors).toBeGreaterThan(0);
    await a.server.waitForLog((e) => e.msg === 'store unreachable');
    const warnings = a.server.logEntries().filter((e) => e.msg === 'store unreachable');
    // Once per interval, however many requests went without Redis.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 'warn', store: `redis://127.0.0.1:${redis.port}/0` });

    await redis.restart();
    for (const replica of [a, b]) {
      await until(
        async () => JSON.stringify(await health(replica)) === JSON.stringify({ status: 'ok', store: 'up' }),
        '/healthz did not say up again',
      );
    }
    expect(await metric(a, /^regauth_store_up /)).toBe(1);
    await a.server.waitForLog((e) => e.msg === 'store reachable again');
    // dave fails at a only; b, which never saw dave, refuses his right password: the counts are
    // on the restarted Redis again.
    for (let i = 0; i <= LOGIN_FAILURES; i++) {
      expect((await ask(a, 'dave', `guess-${i}`)).status).toBe(401);
    }
    const { status, body } = await ask(b, 'dave', PASSWORD, '127.0.0.78');
    expect(status, body).toBe(429);
  });
});

describe('a Redis store that asks for a password', () => {
  it('logs in with password_file, and never shows the password when it is wrong', async () => {
    const redis = await startRedis({ requirePassword: true });
    const servers: TokenServerHandle[] = [];
    try {
      const password = redis.password as string;
      const right = join(redis.dir, 'redis.password');
      const wrong = join(redis.dir, 'wrong.password');
      await writeFile(right, `${password}\n`);
      await writeFile(wrong, `${password}-not\n`);
      const start = async (passwordFile: string) => {
        const server = await startTokenServer({
          users: { alice: PASSWORD },
          extra: { store: { url: redis.url, password_file: passwordFile } },
        });
        servers.push(server);
        return { server, metricsUrl: '' };
      };
      const good = await start(right);
      expect(await health(good)).toEqual({ status: 'ok', store: 'up' });
      expect((await ask(good, 'alice', PASSWORD)).status).toBe(200);

      const bad = await start(wrong);
      expect(await health(bad)).toEqual({ status: 'degraded', store: 'unreachable' });
      // Logins go on without the store.
      expect((await ask(bad, 'alice', PASSWORD)).status).toBe(200);
      await bad.server.waitForLog((e) => e.msg === 'store unreachable');
      const warning = bad.server.logEntries().find((e) => e.msg === 'store unreachable');
      expect(warning).toMatchObject({ level: 'warn', store: redis.url });
      expect(String(warning?.error)).toMatch(/WRONGPASS|NOAUTH|invalid/i);
      for (const server of servers) expect(server.output()).not.toContain(password);
    } finally {
      for (const server of servers) await server.stop();
      await redis.stop();
    }
  });
});
