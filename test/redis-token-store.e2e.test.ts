import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SCOPE_NAMES_PER_ORIGIN } from '../src/auth/challenge-cache.js';
import { pushImage } from '../src/image/push-image.js';
import {
  createRegistry,
  createRegistryClients,
  type RedisStoreClient,
  RedisTokenStore,
  type RedisTokenStoreOptions,
  type StoreOperation,
  staticCredentials,
  type TraceEvent,
} from '../src/index.js';
import { type BuiltImage, buildOciLayout } from './harness/oci-layout.js';
import { type RedisHandle, startRedis } from './harness/redis.js';
import { EXAMPLE_ACL, startTokenStack, type TokenStack } from './harness/token-server.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const USERS = { alice: 'alice-redis-pw-2291', bob: 'bob-redis-pw-8830' };
const ALICE = staticCredentials({ username: 'alice', password: USERS.alice });

// The type of the store's client accepts an ioredis client as it is (checked by tsc).
const _ioredisFits = (client: Redis): RedisStoreClient => client;
void _ioredisFits;

let stack: TokenStack;
let redis: RedisHandle;
let host: string;
let work: string;
let image: BuiltImage;
const clients: Redis[] = [];

/** An ioredis connection the test closes at the end; errors are the store's to report. */
function connect(): Redis {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  clients.push(client);
  return client;
}

/** A prefix of its own per test: tests do not see each other's tokens or salt. */
const freshPrefix = () => `regauth-test-${randomBytes(4).toString('hex')}:`;

/** A "CI worker" in this process: a Registry on a RedisTokenStore of its own connection. */
function worker(prefix: string, options: Partial<RedisTokenStoreOptions> = {}) {
  const store = new RedisTokenStore({ client: connect(), prefix, ...options });
  const events: TraceEvent[] = [];
  const storeErrors: { error: unknown; operation: StoreOperation }[] = [];
  const registry = createRegistry({
    credentials: { username: 'alice', password: USERS.alice },
    env: {},
    store,
    onStoreError: (error, operation) => storeErrors.push({ error, operation }),
    trace: (e) => events.push(e),
  });
  const tokenRequests = () =>
    events.filter((e) => e.kind === 'request' && new URL(e.url).pathname === '/token').length;
  return { store, registry, events, storeErrors, tokenRequests };
}

/** Token requests by alice the real token server logged (it logs each issued token). */
const issuedToAlice = () =>
  stack.tokenServer.logEntries().filter((e) => e.msg === 'token' && e.account === 'alice').length;

/** The raw token values kept under a prefix (for checks that none leaks anywhere). */
async function storedTokens(prefix: string): Promise<string[]> {
  const admin = connect();
  const keys = await admin.keys(`${prefix}token:*`);
  const values = await Promise.all(keys.map((k) => admin.get(k)));
  return values.flatMap((v) => (v === null ? [] : [(JSON.parse(v) as { token: string }).token]));
}

beforeAll(async () => {
  [stack, redis] = await Promise.all([
    startTokenStack({ users: USERS, acl: EXAMPLE_ACL }),
    startRedis({ requirePassword: false }),
  ]);
  host = stack.registry.host;
  work = await mkdtemp(join(tmpdir(), 'regauth-redis-store-'));
  image = await buildOciLayout(join(work, 'image'), { tag: 'v1' });
  const seed = createRegistryClients({ credentials: ALICE, env: {} });
  await pushImage(join(work, 'image'), seed.forRegistry(host), 'alice/app', 'v1');
});

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await Promise.all([stack?.stop(), redis?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('RedisTokenStore shared by CI workers (real redis-server and regauth serve)', () => {
  it('two worker processes: the second uses the first one’s token and makes no token request', async () => {
    const prefix = freshPrefix();
    const runWorker = async () => {
      const { stdout } = await run(
        resolve(ROOT, 'node_modules/.bin/tsx'),
        [resolve(ROOT, 'test/harness/redis-token-worker.ts'), redis.url, prefix, `${host}/alice/app:v1`],
        {
          cwd: ROOT,
          env: { ...process.env, REGISTRY_USER: 'alice', REGISTRY_PASSWORD: USERS.alice },
          timeout: 45_000,
        },
      );
      return JSON.parse(stdout) as { digest: string; tokenRequests: number; storeErrors: unknown[] };
    };
    const before = issuedToAlice();
    const first = await runWorker();
    expect(first).toEqual({ digest: image.manifestDigest, tokenRequests: 1, storeErrors: [] });
    await stack.tokenServer.waitForLog(() => issuedToAlice() === before + 1);

    const second = await runWorker();
    expect(second).toEqual({ digest: image.manifestDigest, tokenRequests: 0, storeErrors: [] });
    // The server agrees: a token request it did log after the second worker (bob's) comes
    // after alice's count, which is still one.
    await createRegistry({ credentials: { username: 'bob', password: USERS.bob }, env: {} })
      .digest(`${host}/alice/app:v1`)
      .catch(() => {});
    await stack.tokenServer.waitForLog((e) => e.msg === 'token' && e.account === 'bob');
    expect(issuedToAlice()).toBe(before + 1);
  });

  it('shares one salt between workers, written once however many start together', async () => {
    const prefix = freshPrefix();
    const salts = await Promise.all(
      Array.from({ length: 8 }, () => new RedisTokenStore({ client: connect(), prefix }).keySalt()),
    );
    expect(salts[0]).toHaveLength(16);
    expect(new Set(salts.map((s) => Buffer.from(s).toString('hex'))).size).toBe(1);
    expect(
      Buffer.from((await connect().get(`${prefix}salt`)) ?? '', 'base64').equals(
        Buffer.from(salts[0] as Uint8Array),
      ),
    ).toBe(true);
  });

  it('keeps a token in Redis no longer than it lives (PX), and never one that has expired', async () => {
    const prefix = freshPrefix();
    const store = new RedisTokenStore({ client: connect(), prefix });
    const admin = connect();
    await store.saveToken('lives-90s', host, { token: 'a', expiresAt: Date.now() + 90_000 });
    await store.saveToken('lives-300ms', host, { token: 'b', expiresAt: Date.now() + 300 });
    await store.saveToken('expired', host, { token: 'c', expiresAt: Date.now() - 1 });
    const keys = await admin.keys(`${prefix}token:*`);
    expect(keys).toHaveLength(2);
    const ttls = (await Promise.all(keys.map((k) => admin.pttl(k)))).sort((x, y) => x - y);
    expect(ttls[0]).toBeGreaterThan(0);
    expect(ttls[0]).toBeLessThanOrEqual(300);
    expect(ttls[1]).toBeGreaterThan(300);
    expect(ttls[1]).toBeLessThanOrEqual(90_000);
    // Redis itself drops the short one once it expired.
    const deadline = Date.now() + 15_000;
    while ((await admin.keys(`${prefix}token:*`)).length > 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await admin.keys(`${prefix}token:*`)).toHaveLength(1);
    expect(await store.loadToken('lives-300ms')).toBeUndefined();
    expect((await store.loadToken('lives-90s'))?.token).toBe('a');
  });

  it('keeps challenges and scope names a day at most, and at most MAX_SCOPE_NAMES_PER_ORIGIN per origin', async () => {
    const prefix = freshPrefix();
    const store = new RedisTokenStore({ client: connect(), prefix });
    const other = new RedisTokenStore({ client: connect(), prefix });
    const admin = connect();
    const origin = 'https://registry.example';
    await store.saveChallenge(origin, { scheme: 'bearer', params: { realm: 'https://auth.example/token' } });
    await store.saveScopeNames(origin, 'repository:virtual/alpine:pull', ['repository:alpine:pull']);
    expect(await other.loadChallenge(origin)).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token' },
    });
    expect(await other.loadScopeNames(origin, 'repository:virtual/alpine:pull')).toEqual([
      'repository:alpine:pull',
    ]);
    expect(await other.loadScopeNames(origin, 'repository:virtual/other:pull')).toBeUndefined();
    const day = 24 * 60 * 60 * 1000;
    for (const key of await admin.keys(`${prefix}*`)) {
      if (key === `${prefix}salt`) continue;
      const ttl = await admin.pttl(key);
      expect(ttl).toBeGreaterThan(day - 60_000);
      expect(ttl).toBeLessThanOrEqual(day);
    }
    // A registry naming a new scope per request does not grow the hash without bound.
    for (let i = 0; i < MAX_SCOPE_NAMES_PER_ORIGIN + 5; i++) {
      await store.saveScopeNames(origin, `repository:r${i}:pull`, [`repository:n${i}:pull`]);
    }
    const [scopesKey] = await admin.keys(`${prefix}scopes:*`);
    expect(await admin.hlen(scopesKey as string)).toBeLessThanOrEqual(MAX_SCOPE_NAMES_PER_ORIGIN);
    expect(await other.loadScopeNames(origin, `repository:r${MAX_SCOPE_NAMES_PER_ORIGIN + 4}:pull`)).toEqual([
      `repository:n${MAX_SCOPE_NAMES_PER_ORIGIN + 4}:pull`,
    ]);
    await other.forgetChallenge(origin);
    expect(await admin.keys(`${prefix}*`)).toEqual([]);
  });

  it('takes damaged values for misses: the next worker fetches a token and goes on', async () => {
    const prefix = freshPrefix();
    const first = worker(prefix);
    expect(await first.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
    const admin = connect();
    const keys = [...(await admin.keys(`${prefix}token:*`)), ...(await admin.keys(`${prefix}challenge:*`))];
    expect(keys.length).toBeGreaterThanOrEqual(2);
    const junk = ['not json', '{"v":1,"token":null}', '{"v":1,"scheme":"bearer","params":{"realm":5}}'];
    for (const [i, key] of keys.entries()) await admin.set(key, junk[i % junk.length] as string);

    const second = worker(prefix);
    expect(await second.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
    expect(second.tokenRequests()).toBe(1);
    expect(second.storeErrors).toEqual([]);
    // It replaced the damaged token: a third worker uses it.
    const third = worker(prefix);
    expect(await third.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
    expect(third.tokenRequests()).toBe(0);
  });

  it('forgetRegistry drops that registry’s tokens and challenges, not another registry’s', async () => {
    const prefix = freshPrefix();
    const first = worker(prefix);
    expect(await first.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
    await first.store.saveToken('elsewhere', 'other.example', { token: 'o', expiresAt: Date.now() + 60_000 });
    const admin = connect();
    expect(await admin.keys(`${prefix}challenge:*`)).toHaveLength(1);
    const tokensBefore = (await admin.keys(`${prefix}token:*`)).length;

    const dropped = await first.store.forgetRegistry(host, [`http://${host}`]);
    expect(dropped).toBe(tokensBefore - 1);
    expect(dropped).toBeGreaterThanOrEqual(1);
    expect(await admin.keys(`${prefix}token:*`)).toHaveLength(1);
    expect(await admin.keys(`${prefix}challenge:*`)).toHaveLength(0);
    expect((await first.store.loadToken('elsewhere'))?.token).toBe('o');

    const next = worker(prefix);
    expect(await next.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
    expect(next.tokenRequests()).toBe(1);
  });

  it('with encryptionKey: no token readable in Redis, shared by workers with the key, a miss for others', async () => {
    const prefix = freshPrefix();
    const encryptionKey = randomBytes(32);
    const first = worker(prefix, { encryptionKey });
    expect(await first.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
    const admin = connect();
    const raw = (await Promise.all((await admin.keys(`${prefix}*`)).map((k) => admin.get(k)))).join('\n');
    expect(raw).not.toMatch(/eyJ/); // no JWT in the clear
    expect(raw).not.toContain(host);

    const sameKey = worker(prefix, { encryptionKey });
    expect(await sameKey.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
    expect(sameKey.tokenRequests()).toBe(0);
    const noKey = worker(prefix);
    expect(await noKey.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
    expect(noKey.tokenRequests()).toBe(1);
    expect(noKey.storeErrors).toEqual([]);
  });

  it('Redis killed or hung mid-run: pulls go on, store errors are reported without a token in them', async () => {
    const prefix = freshPrefix();
    const first = worker(prefix, { timeoutMs: 300 });
    expect(await first.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
    const tokens = await storedTokens(prefix);
    expect(tokens.length).toBeGreaterThanOrEqual(1);

    const secrets = [...tokens, USERS.alice];
    const checkErrors = (errors: { error: unknown }[]) => {
      for (const { error } of errors) {
        const text = `${String(error)} ${JSON.stringify(error)} ${(error as Error).stack ?? ''}`;
        for (const secret of secrets) expect(text).not.toContain(secret);
        expect((error as Error).cause).toBeUndefined();
      }
    };

    // Hung: SIGSTOP keeps the socket open and answers nothing; each store call times out.
    redis.pause();
    try {
      const hung = worker(prefix, { timeoutMs: 300 });
      expect(await hung.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
      expect(hung.tokenRequests()).toBe(1);
      expect(hung.storeErrors.map((e) => e.operation)).toEqual(
        expect.arrayContaining(['loadChallenge', 'keySalt', 'saveToken']),
      );
      expect(String(hung.storeErrors[0]?.error)).toMatch(/did not answer \w+ within 300 ms/);
      checkErrors(hung.storeErrors);
      // A worker that had the store working keeps its token in memory and goes on too.
      expect(await first.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
    } finally {
      redis.resume();
    }

    // Killed: the connection is refused; the same.
    await redis.kill();
    const down = worker(prefix, { timeoutMs: 300 });
    expect(await down.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
    expect(down.tokenRequests()).toBe(1);
    expect(down.storeErrors.length).toBeGreaterThanOrEqual(3);
    checkErrors(down.storeErrors);
    // A worker that saves while Redis is gone reports saveToken, and its message names no value.
    await down.store
      .saveToken('k', host, { token: tokens[0] as string, expiresAt: Date.now() + 60_000 })
      .then(
        () => expect.unreachable('saveToken went through with Redis killed'),
        (error: unknown) => checkErrors([{ error }]),
      );

    // Back (empty): the store works again without a restart of the workers.
    await redis.restart();
    const deadline = Date.now() + 15_000;
    let again = worker(prefix, { timeoutMs: 1_000 });
    while (Date.now() < deadline) {
      again = worker(prefix, { timeoutMs: 1_000 });
      await again.registry.digest(`${host}/alice/app:v1`);
      if (again.storeErrors.length === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(again.storeErrors).toEqual([]);
    const after = worker(prefix);
    expect(await after.registry.digest(`${host}/alice/app:v1`)).toBe(image.manifestDigest);
    expect(after.tokenRequests()).toBe(0);
  });
});
