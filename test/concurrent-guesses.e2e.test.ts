import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './harness/processes.js';
import { type RedisHandle, startRedis } from './harness/redis.js';
import { startTokenServer, type TokenServerHandle } from './harness/token-server.js';

/**
 * A burst of concurrent wrong guesses for one user: each is charged before its password check,
 * so the back-off holds against the burst as against a sequence. At most LOGIN_FAILURES + 1
 * checks run (the failure after LOGIN_FAILURES free ones starts the back-off); the rest are 429.
 * Checks are counted by the authenticator histogram of /metrics.
 */

const LOGIN_FAILURES = 3;
const GUESSES = 40;

interface Server {
  readonly server: TokenServerHandle;
  readonly metricsUrl: string;
}

function ask(target: Server, user: string, password: string): Promise<number> {
  const url = `${target.server.url}/token?service=${target.server.service}&scope=repository:${user}/app:pull`;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
        agent: false,
        timeout: 60_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.once('timeout', () => req.destroy(new Error('no answer within 60 s')));
    req.once('error', reject);
    req.end();
  });
}

async function checks(target: Server): Promise<number> {
  const text = await (await fetch(target.metricsUrl)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('regauth_authenticator_duration_seconds_count'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

async function start(extra: Record<string, unknown>, replicaOf?: TokenServerHandle): Promise<Server> {
  const metricsPort = await freePort();
  const server = await startTokenServer({
    users: { alice: 'right-horse-battery' },
    ...(replicaOf === undefined ? {} : { replicaOf }),
    extra: {
      ...extra,
      limits: {
        login_failures: LOGIN_FAILURES,
        login_window: 300,
        login_backoff_max: 300,
        address_failures: 1000,
        // Room for the whole burst in the check queue: only the back-off may stop it.
        password_checks: 2,
        password_queue: GUESSES,
        password_checks_per_address: GUESSES,
      },
      metrics: { enabled: true, listen: `127.0.0.1:${metricsPort}` },
    },
  });
  return { server, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
}

/** GUESSES distinct wrong passwords at once, spread round robin over `targets`. */
async function burst(targets: readonly Server[]): Promise<{ statuses: number[]; checked: number }> {
  const statuses = await Promise.all(
    Array.from({ length: GUESSES }, (_, i) =>
      ask(targets[i % targets.length] as Server, 'alice', `wrong-${i}`),
    ),
  );
  let checked = 0;
  for (const target of targets) checked += await checks(target);
  return { statuses, checked };
}

describe('a burst of concurrent wrong guesses', () => {
  let redis: RedisHandle;
  const servers: Server[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const s of servers.slice().reverse()) await s.server.stop();
    await redis?.stop();
  });

  it('gets at most login_failures + 1 password checks from one server (memory store)', async () => {
    const one = await start({});
    servers.push(one);
    const { statuses, checked } = await burst([one]);
    expect(checked).toBeGreaterThanOrEqual(1);
    expect(checked).toBeLessThanOrEqual(LOGIN_FAILURES + 1);
    expect(statuses.filter((s) => s === 401)).toHaveLength(checked);
    expect(statuses.filter((s) => s === 429)).toHaveLength(GUESSES - checked);
  }, 120_000);

  it('gets at most login_failures + 1 password checks from two replicas sharing Redis', async () => {
    const store = { url: redis.url, prefix: 'burst:', timeout: 2 };
    const a = await start({ store });
    servers.push(a);
    const b = await start({ store }, a.server);
    servers.push(b);
    const { statuses, checked } = await burst([a, b]);
    expect(checked).toBeGreaterThanOrEqual(1);
    expect(checked).toBeLessThanOrEqual(LOGIN_FAILURES + 1);
    expect(statuses.filter((s) => s === 401)).toHaveLength(checked);
    expect(statuses.filter((s) => s === 429)).toHaveLength(GUESSES - checked);
  }, 120_000);
});

describe('many users behind one address logging in at once', () => {
  const USERS = 24;
  const ADDRESS_FAILURES = 4;
  let redis: RedisHandle;
  const servers: TokenServerHandle[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const s of servers.splice(0).reverse()) await s.stop();
    await redis?.stop();
  });

  // A NAT, a CI fleet or a proxy: their checks in flight must not spend the address's budget,
  // which is for failures; only a failed check charges it.
  it.each([
    ['memory', undefined],
    ['Redis', 'redis'],
  ])(
    'all get their tokens, however small address_failures is (%s store)',
    async (_name, kind) => {
      const users = Object.fromEntries(Array.from({ length: USERS }, (_, i) => [`u${i}`, `pw-${i}-horse`]));
      const server = await startTokenServer({
        users,
        extra: {
          ...(kind === undefined ? {} : { store: { url: redis.url, prefix: 'fleet:', timeout: 2 } }),
          users: { cache_seconds: 0 },
          limits: {
            address_failures: ADDRESS_FAILURES,
            password_checks: 2,
            password_queue: USERS,
            password_checks_per_address: USERS,
          },
        },
      });
      servers.push(server);
      const target: Server = { server, metricsUrl: '' };
      const statuses = await Promise.all(
        Object.entries(users).map(([user, password]) => ask(target, user, password)),
      );
      expect(statuses).toEqual(Array.from({ length: USERS }, () => 200));
      // Failures still spend it: past the budget, even a right password from here waits.
      for (let i = 0; i < ADDRESS_FAILURES; i++) expect(await ask(target, 'u0', `wrong-${i}`)).toBe(401);
      expect(await ask(target, 'u1', 'pw-1-horse')).toBe(429);
    },
    120_000,
  );
});
