import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import { afterEach, describe, expect, it } from 'vitest';
import { parseServerConfig } from '../src/server/server-config.js';
import { testKeyPair } from '../src/server/testing/fixtures.js';
import {
  createTokenServer,
  type ServerLogEntry,
  type TokenServer,
  type TokenServerOptions,
} from '../src/server/token-server.js';
import { startTokenServer, type TokenServerHandle } from './harness/token-server.js';

/**
 * The attacks of issue 8 (token server items 8–15), each mounted on loopback against a real
 * listening server, bounded in requests and time. Source addresses other than 127.0.0.1 are real:
 * Linux routes all of 127.0.0.0/8 to loopback and lets a client bind any of them.
 */

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface Send {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly from?: string;
  readonly agent?: Agent;
}

function send(url: string, options: Send = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${url}${options.path ?? '/token'}`,
      {
        method: options.method ?? 'GET',
        headers: {
          ...(options.body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
          ...options.headers,
        },
        ...(options.agent ? { agent: options.agent } : { agent: false }),
        ...(options.from ? { localAddress: options.from } : {}),
        timeout: 30_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.end(options.body);
  });
}

const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

/** A token request with Basic credentials, as docker sends it. */
const login = (url: string, user: string, password: string, more: Omit<Send, 'path'> = {}) =>
  send(url, {
    ...more,
    path: '/token?service=sec-registry&scope=repository:x/y:pull',
    headers: { ...basic(user, password), ...more.headers },
  });

const passwordGrant = (
  url: string,
  username: string,
  password: string,
  more: Omit<Send, 'method' | 'body'> = {},
) =>
  send(url, {
    ...more,
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'password',
      service: 'sec-registry',
      username,
      password,
    }).toString(),
  });

/** Runs `count` tasks, `concurrency` at a time, and stops early at `deadline` (ms since epoch). */
async function pool<T>(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<T>,
  deadline = Date.now() + 30_000,
): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count && Date.now() < deadline) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

const tally = (statuses: readonly number[]) => {
  const counts: Record<number, number> = {};
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A flood of token requests for unknown names: `node -e FLOOD_SCRIPT url addresses perAddress ms`.
 * Each address (127.0.2.N) runs `perAddress` connections that ask again as soon as they are
 * answered; one line per answer on stdout: `status epoch-ms`. Bounded by `ms` and 5,000 requests.
 */
const FLOOD_SCRIPT = `
const http = require('node:http');
const [url, addresses, perAddress, ms] = process.argv.slice(1);
const deadline = Date.now() + Number(ms);
let sent = 0;
for (let a = 1; a <= Number(addresses); a++) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number(perAddress), localAddress: '127.0.2.' + a });
  for (let w = 0; w < Number(perAddress); w++) {
    const next = () => {
      if (Date.now() > deadline || sent++ >= 5000) return;
      const auth = Buffer.from('nobody-' + a + '-' + w + '-' + sent + ':guess').toString('base64');
      const req = http.get(url + '/token?service=sec-registry&scope=repository:x/y:pull',
        { agent, headers: { authorization: 'Basic ' + auth } }, (res) => {
          res.resume();
          res.on('end', () => {
            process.stdout.write(res.statusCode + ' ' + (performance.timeOrigin + performance.now()) + '\\n');
            next();
          });
        });
      req.on('error', () => setTimeout(next, 10));
    };
    next();
  }
}
`;

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(20);
  }
}

type UserSpec = string | { readonly password: string; readonly cost: number };

interface Running {
  readonly url: string;
  readonly port: number;
  readonly server: TokenServer;
  readonly logs: ServerLogEntry[];
  readonly htpasswd: string;
  /** The htpasswd line written for each user. */
  readonly lines: Record<string, string>;
}

const running: { server: TokenServer; dir: string }[] = [];
const processes: TokenServerHandle[] = [];

afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.server.close();
    await rm(r.dir, { recursive: true, force: true });
  }
  for (const p of processes.splice(0)) await p.stop();
});

const hashes = new Map<string, string>();
function htpasswdLineAt(user: string, password: string, cost: number): string {
  const key = `${password}\u0000${cost}`;
  let hash = hashes.get(key);
  if (hash === undefined) {
    hash = bcrypt.hashSync(password, cost).replace(/^\$2b\$/, '$2y$');
    hashes.set(key, hash);
  }
  return `${user}:${hash}`;
}

/** createTokenServer on 127.0.0.1:0, configured like `regauth serve` would be. */
async function startServer(
  setup: {
    users?: Readonly<Record<string, UserSpec>>;
    config?: Record<string, unknown>;
    options?: TokenServerOptions;
  } = {},
): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-sec-'));
  const pair = await testKeyPair();
  await writeFile(join(dir, 'key.pem'), pair.keyPem);
  await writeFile(join(dir, 'cert.pem'), pair.certPem);
  const lines: Record<string, string> = {};
  for (const [user, spec] of Object.entries(setup.users ?? { alice: 'alice-pw' })) {
    const { password, cost } = typeof spec === 'string' ? { password: spec, cost: 4 } : spec;
    lines[user] = htpasswdLineAt(user, password, cost);
  }
  const htpasswd = join(dir, 'users.htpasswd');
  await writeFile(htpasswd, `${Object.values(lines).join('\n')}\n`);
  const extra = setup.config ?? {};
  const raw = {
    listen: '127.0.0.1:0',
    token: { issuer: 'sec-issuer', service: 'sec-registry', key: 'key.pem', certificate: 'cert.pem' },
    ...extra,
    users: { htpasswd: 'users.htpasswd', ...((extra.users as object | undefined) ?? {}) },
    acl: (extra.acl as unknown[] | undefined) ?? [
      { match: { account: '/.+/', name: '${account}/*' }, actions: ['pull', 'push'] },
      { match: { account: '', name: 'public/**' }, actions: ['pull'] },
    ],
  };
  const logs: ServerLogEntry[] = [];
  const server = await createTokenServer(parseServerConfig(raw, join(dir, 'serve.yml')), {
    log: (e) => logs.push(e),
    ...setup.options,
  });
  running.push({ server, dir });
  const url = await server.listen();
  return { url, port: Number(new URL(url).port), server, logs, htpasswd, lines };
}

const isError = (e: ServerLogEntry) => 'level' in e && e.level === 'error';

describe('item 8: hash flooding with long user names', () => {
  it('refuses 300 equal-length 20,000-character user names with 400 before a check or a table sees them', async () => {
    const t = await startServer();
    // V8 hashes strings over 16,383 characters by length alone: equal lengths, one bucket.
    const longName = (i: number) => `${String(i).padStart(5, '0')}${'u'.repeat(19_995)}`;
    const statuses = await pool(300, 8, async (i) => (await passwordGrant(t.url, longName(i), 'x')).status);
    expect(tally(statuses)).toEqual({ 400: 300 });
    // The same bound for Basic credentials and for the account parameter.
    expect((await login(t.url, 'b'.repeat(10_000), 'x')).status).toBe(400);
    const account = await send(t.url, {
      path: `/token?service=sec-registry&account=${'c'.repeat(2000)}`,
      headers: basic('alice', 'alice-pw'),
    });
    expect(account.status).toBe(400);
    expect(JSON.parse(account.body).errors[0].message).toMatch(/longer than 256 bytes/);
    expect(t.server.stats()).toMatchObject({
      backoffUsers: 0,
      addressBudgets: 0,
      checks: { running: 0, waiting: 0, refusedBusy: 0, refusedAddress: 0 },
    });
    expect((await login(t.url, 'alice', 'alice-pw')).status).toBe(200);
  });
});

describe('item 9: memory under a flood of distinct names', () => {
  it('keeps its tables within their caps under 2,000 distinct names from 40 addresses, and sweeps them empty on a timer', async () => {
    let offset = 0;
    const t = await startServer({
      config: {
        limits: { address_failures: 1000, password_queue: 256, password_checks_per_address: 64 },
      },
      options: { maxTrackedEntries: 300, sweepIntervalMs: 50, now: () => Date.now() + offset },
    });
    const agents = Array.from(
      { length: 40 },
      (_, i) => new Agent({ keepAlive: true, maxSockets: 2, localAddress: `127.0.1.${i + 1}` }),
    );
    let peak = 0;
    try {
      const statuses = await pool(2000, 16, async (i) => {
        const r = await passwordGrant(t.url, `flood-${i}`, 'x', {
          agent: agents[i % agents.length] as Agent,
        });
        peak = Math.max(peak, t.server.stats().backoffUsers);
        return r.status;
      });
      expect(tally(statuses)).toEqual({ 401: 2000 });
    } finally {
      for (const a of agents) a.destroy();
    }
    const after = t.server.stats();
    // 2,000 distinct names, each kept for the login window: the cap is what holds them back.
    expect(peak).toBeLessThanOrEqual(300);
    expect(after.backoffUsers).toBe(300);
    expect(after.addressBudgets).toBeLessThanOrEqual(300);
    // An hour later, with no request touching them, the timer has dropped every entry.
    offset = 3_600_000;
    await until('the sweep', () => {
      const s = t.server.stats();
      return s.backoffUsers === 0 && s.addressBudgets === 0;
    });
  });
});

describe('item 10: bcrypt CPU amplification', () => {
  it("admits a real user's login at once while a flood of unknown names is refused past the check queue's size", async () => {
    const t = await startServer({
      // Cost 8 (~15 ms) keeps checks in the queue long enough to fill it.
      users: { bob: { password: 'bob-pw', cost: 8 } },
      config: {
        users: { cache_seconds: 0 },
        limits: {
          password_checks: 1,
          password_queue: 2,
          password_checks_per_address: 2,
          address_failures: 0,
          login_failures: 0,
        },
      },
    });
    // bob has logged in from his address before: it keeps a lane when strangers fill the queue.
    expect((await login(t.url, 'bob', 'bob-pw', { from: '127.0.0.2' })).status).toBe(200);

    // The flood runs in a process of its own, as an attacker's clients would: sharing this
    // process's event loop with the server, it would delay bob's request before the server saw it.
    const flood = spawn(process.execPath, ['-e', FLOOD_SCRIPT, t.url, '6', '8', '15000'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    flood.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const exited = new Promise<void>((r) => flood.once('exit', () => r()));
    const answers = () =>
      output
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split(' ').map(Number) as [number, number]);
    try {
      await until('the flood', () => answers().length >= 100, 15_000);
      const sent = performance.timeOrigin + performance.now();
      const bob = await login(t.url, 'bob', 'bob-pw', { from: '127.0.0.2' });
      const done = performance.timeOrigin + performance.now();
      const seen = answers().length;
      await until('more flood', () => answers().length >= seen + 50, 15_000);
      flood.kill('SIGTERM');
      await exited;

      expect(bob.status).toBe(200);
      const counts = tally(answers().map(([status]) => status));
      // The queue refused the flood past its size (503) and past each address's share (429) …
      expect(counts[503] ?? 0).toBeGreaterThan(0);
      expect(counts[429] ?? 0).toBeGreaterThan(0);
      expect(t.server.stats().checks.refusedBusy).toBeGreaterThan(0);
      // … while bob's check ran next: hardly any flood check finished while he waited. Without a
      // queue, every check in flight (48 connections' worth) went before his.
      const checkedMeanwhile = answers().filter(([status, at]) => status === 401 && at > sent && at < done);
      expect(checkedMeanwhile.length).toBeLessThanOrEqual(12);
    } finally {
      flood.kill('SIGKILL');
      await exited;
    }
  });

  it('refuses an address with 429 once it has spent its failure budget, whatever names it tried', async () => {
    const t = await startServer({ users: { bob: 'bob-pw' }, config: { limits: { address_failures: 5 } } });
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++)
      statuses.push((await login(t.url, `name-${i}`, 'x', { from: '127.0.0.5' })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429, 429, 429]);
    const refused = await login(t.url, 'bob', 'bob-pw', { from: '127.0.0.5' });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Another address has its own budget.
    expect((await login(t.url, 'name-x', 'x', { from: '127.0.0.6' })).status).toBe(401);
    expect((await login(t.url, 'bob', 'bob-pw', { from: '127.0.0.6' })).status).toBe(200);
  });
});

describe('item 11: user enumeration by timing when costs differ', () => {
  it('answers an unknown name about as fast as a wrong password of a cost-4 user when one user has cost 11', async () => {
    const users: Record<string, UserSpec> = { alice: 'alice-pw', carol: { password: 'carol-pw', cost: 11 } };
    for (let i = 1; i <= 9; i++) users[`user${i}`] = `pw-${i}`;
    const t = await startServer({ users, config: { limits: { login_failures: 0, address_failures: 0 } } });
    expect(t.logs).toContainEqual(
      expect.objectContaining({ msg: 'bcrypt costs differ', level: 'warn', costs: { 4: 10, 11: 1 } }),
    );
    const timed = async (user: string) => {
      const start = performance.now();
      const r = await login(t.url, user, 'wrong');
      expect(r.status).toBe(401);
      return performance.now() - start;
    };
    await timed('alice');
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 15; i++) {
      known.push(await timed('alice'));
      unknown.push(await timed(`nobody-${i}`));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    // Before: every unknown name paid the highest cost (11), some 100 times a cost-4 check. Now
    // most unknown names draw cost 4, as 10 of the 11 users have it; a generous bound.
    expect(median(unknown) / median(known)).toBeLessThan(8);
  });
});

describe('item 12: lock-out design', () => {
  it('backs bob off after a few guesses however many source addresses they come from', async () => {
    const t = await startServer({ users: { bob: 'bob-pw' }, config: { limits: { address_failures: 1000 } } });
    // 200 guesses from 40 addresses: 5 each, the old per-(user, address) limit.
    const replies = await pool(200, 8, (i) =>
      login(t.url, 'bob', `guess-${i}`, { from: `127.0.3.${(i % 40) + 1}` }),
    );
    const counts = tally(replies.map((r) => r.status));
    expect(counts[401] ?? 0).toBeLessThanOrEqual(15);
    expect(counts[429] ?? 0).toBeGreaterThanOrEqual(185);
    for (const r of replies.filter((x) => x.status === 429)) {
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(r.headers['retry-after'])).toBeLessThanOrEqual(300);
    }
  });

  it('counts the client a trusted proxy names, not the proxy, and ignores the header from anyone else', async () => {
    const t = await startServer({
      users: { bob: 'bob-pw' },
      config: { trusted_proxies: ['127.0.0.1'], limits: { address_failures: 3 } },
    });
    const via = (forwardedFor: string, user = `name-${Math.random()}`, from = '127.0.0.1') =>
      login(t.url, user, 'x', { from, headers: { 'x-forwarded-for': forwardedFor } }).then((r) => r.status);
    // The client wrote 10.9.9.9 itself; the proxy appended what it saw: 203.0.113.1.
    const first: number[] = [];
    for (let i = 0; i < 4; i++) first.push(await via('10.9.9.9, 203.0.113.1'));
    expect(first).toEqual([401, 401, 401, 429]);
    expect(await via('203.0.113.2')).toBe(401);
    expect(t.logs).toContainEqual(expect.objectContaining({ msg: 'token', address: '203.0.113.1' }));
    // An untrusted peer's header counts for nothing: rotating it does not reset its budget.
    const untrusted: number[] = [];
    for (let i = 0; i < 4; i++) untrusted.push(await via(`198.51.100.${i}`, `other-${i}`, '127.0.0.3'));
    expect(untrusted).toEqual([401, 401, 401, 429]);
    // IPv6 clients are counted per /64.
    for (let i = 1; i <= 3; i++) expect(await via(`2001:db8:1:2::${i}`)).toBe(401);
    expect(await via('2001:db8:1:2:ffff::9')).toBe(429);
    expect(await via('2001:db8:1:3::1')).toBe(401);
  });

  it("lets bob's own logins through a back-off that others caused through the same proxy", async () => {
    const t = await startServer({
      users: { bob: 'bob-pw' },
      config: {
        trusted_proxies: ['127.0.0.1'],
        users: { cache_seconds: 1 },
        limits: { address_failures: 1000 },
      },
    });
    const bob = (at: string) =>
      login(t.url, 'bob', 'bob-pw', { headers: { 'x-forwarded-for': at } }).then((r) => r.status);
    const guess = async (i: number) =>
      login(t.url, 'bob', `guess-${i}`, { headers: { 'x-forwarded-for': `198.51.100.${i}` } });
    expect(await bob('192.0.2.10')).toBe(200);
    const guesses = [];
    for (let i = 0; i < 10; i++) guesses.push((await guess(i)).status);
    expect(guesses.slice(-3)).toEqual([429, 429, 429]);
    // bob's login is still in the cache: it gets in, during the back-off, from anywhere.
    expect(await bob('192.0.2.10')).toBe(200);
    // Once the cache forgot it, his own address still gets a real check; a new one waits.
    await sleep(1100);
    const renewed = [];
    for (let i = 10; i < 14; i++) renewed.push((await guess(i)).status);
    expect(renewed).toContain(429);
    expect(await bob('192.0.2.99')).toBe(429);
    expect(await bob('192.0.2.10')).toBe(200);
  });
});

describe('item 13: log flooding and secrets in logs', () => {
  it('never logs a password typed as a user name, and keeps every line short', async () => {
    const server = await startTokenServer({ users: { alice: 'alice-pw' }, service: 'sec-registry' });
    processes.push(server);
    const typed = 'Tr0ub4dor&3-correct-horse';
    expect((await login(server.url, typed, 'x')).status).toBe(401);
    expect((await passwordGrant(server.url, typed, 'y')).status).toBe(401);
    expect((await send(server.url, { path: `/token?service=sec-registry&account=${typed}` })).status).toBe(
      401,
    );
    expect(
      (
        await send(server.url, {
          path: `/token?service=sec-registry&client_id=${'c'.repeat(5000)}&scope=repository:alice/a:pull`,
          headers: basic('alice', 'wrong'),
        })
      ).status,
    ).toBe(401);
    expect((await passwordGrant(server.url, 'x'.repeat(30_000), 'z')).status).toBe(400);
    const tokenLines = (e: Record<string, unknown>) => e.msg === 'token';
    await server.waitForLog(() => server.logEntries().filter(tokenLines).length >= 5);
    const lines = server.output().split('\n');
    expect(lines.filter((l) => l.includes('"msg":"token"'))).toHaveLength(5);
    expect(server.output()).not.toContain(typed);
    expect(server.output()).not.toContain('xxxxxxxxxx');
    for (const line of lines) expect(Buffer.byteLength(line)).toBeLessThan(2048);
    const entries = server.logEntries().filter(tokenLines);
    expect(entries[0]?.account).toMatch(/^unknown:[0-9a-f]{16}$/);
    expect(entries[1]?.account).toBe(entries[0]?.account);
    expect(entries[3]).toMatchObject({ account: 'alice', outcome: 'unauthorized' });
    expect(entries[3]?.clientId).toBe(`${'c'.repeat(200)}…`);
  });
});

describe('item 14: connection exhaustion', () => {
  it('serves another client while one address holds 200 slow-header connections, with 160 file descriptors', async () => {
    const server = await startTokenServer({
      users: { alice: 'alice-pw' },
      service: 'sec-registry',
      ulimitFiles: 160,
      extra: { limits: { max_connections: 100, connections_per_address: 16 } },
    });
    processes.push(server);
    const port = Number(new URL(server.url).port);
    const sockets: Socket[] = [];
    let closed = 0;
    let settled = 0;
    try {
      for (let i = 0; i < 200; i++) {
        const socket = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1' });
        let connected = false;
        socket.on('error', () => {});
        socket.once('connect', () => {
          connected = true;
          settled++;
          // Headers that never end: the server must hold the socket until its headers timeout.
          socket.write('GET /token HTTP/1.1\r\nHost: token-server\r\n');
        });
        socket.once('close', () => {
          closed++;
          if (!connected) settled++;
        });
        sockets.push(socket);
      }
      await until('the slow sockets to connect', () => settled >= 200, 10_000);
      // Give the server a moment to refuse what it refuses.
      await until('the server to shed connections', () => closed >= 150, 5_000).catch(() => {});
      const other = await login(server.url, 'alice', 'alice-pw', { from: '127.0.0.2' });
      expect(other.status).toBe(200);
      // The server closed every connection past the per-address cap at once.
      expect(closed).toBeGreaterThanOrEqual(200 - 16 - 4);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});

describe('item 15: small ones', () => {
  it('answers an unparsable request target with 400 and no error-level log line', async () => {
    const t = await startServer();
    const status = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: t.port });
      let data = '';
      socket.on('data', (d) => {
        data += d.toString();
      });
      socket.on('end', () => resolve(data.split('\r\n')[0] ?? ''));
      socket.on('error', reject);
      socket.write('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    expect(status).toBe('HTTP/1.1 400 Bad Request');
    expect(t.logs.filter(isError)).toEqual([]);
    expect(t.logs).toContainEqual({ msg: 'bad request target', address: '127.0.0.1', status: 400 });
    expect((await login(t.url, 'alice', 'alice-pw')).status).toBe(200);
  });

  it('refuses a user that a broken new file removed, keeps the unchanged ones, and logs an error', async () => {
    const t = await startServer({ users: { alice: 'alice-pw', bob: 'bob-pw' } });
    expect((await login(t.url, 'bob', 'bob-pw')).status).toBe(200);
    // The operator removes bob, and writes carol with the wrong tool (htpasswd without -B).
    await writeFile(t.htpasswd, `${t.lines.alice}\ncarol:$apr1$ZvJZ5ugF$9DhbVCVdO3Ny2nN1LJ1Gq/\n`);
    await t.server.reloadUsers();
    expect(t.logs).toContainEqual(
      expect.objectContaining({
        msg: 'reload failed',
        level: 'error',
        error: expect.stringMatching(/users\.htpasswd:2: .*"carol".*MD5/),
        kept: 1,
        dropped: 1,
      }),
    );
    expect((await login(t.url, 'bob', 'bob-pw')).status).toBe(401);
    expect((await login(t.url, 'alice', 'alice-pw')).status).toBe(200);
  });

  it('warns at start-up about an ACL rule that lets anonymous users push, delete or do anything', async () => {
    const t = await startServer({
      config: {
        acl: [
          { match: { account: '', name: 'public/**' }, actions: ['pull'] },
          { match: { account: '*', name: 'scratch/*' }, actions: ['pull', 'push'] },
          { match: { name: 'trash/*' }, actions: ['*'] },
        ],
      },
    });
    const warnings = t.logs.filter((e) => e.msg === 'acl lets anonymous users write');
    expect(warnings).toEqual([
      { msg: 'acl lets anonymous users write', level: 'warn', rule: 1, actions: ['push'] },
      { msg: 'acl lets anonymous users write', level: 'warn', rule: 2, actions: ['*'] },
    ]);
  });
});
