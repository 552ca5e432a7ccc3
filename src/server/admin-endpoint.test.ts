import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isRegauthError, RegauthError } from '../errors/regauth-error.js';
import { ADMIN_FAILURES, createAdminEndpoint } from './admin-endpoint.js';
import { createMemoryRevocationStore, type RevocationStore } from './revocation-store.js';
import type { ServerLogEntry } from './server-log-entry.js';

const SECRET = '0123456789abcdef0123456789abcdef';
const NOW = Date.UTC(2026, 10, 30, 15, 0, 0, 0);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function start(
  revocations: RevocationStore = createMemoryRevocationStore({ keepMs: 24 * 3_600_000, now: () => NOW }),
) {
  const logs: ServerLogEntry[] = [];
  const handle = createAdminEndpoint({
    path: '/admin',
    bearerToken: SECRET,
    revocations,
    accessExpiration: 300,
    clientAddress: (peer) => peer,
    log: (entry) => logs.push(entry),
    now: () => NOW,
  });
  const server: Server = createServer((req, res) => {
    if (handle(req, res)) return;
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  /** `secret` '': no Authorization header at all. */
  const post = async (body: string, secret = SECRET) => {
    const res = await fetch(`${url}/admin/revoke`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(secret === '' ? {} : { authorization: `Bearer ${secret}` }),
      },
      body,
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, string> };
  };
  return { url, post, revocations, logs };
}

describe('createAdminEndpoint', () => {
  it('records a revocation, says what it covers, and logs the account but never the secret', async () => {
    const t = await start();
    const now = await t.post('{"account":"alice"}');
    expect(now.status).toBe(200);
    expect(now.body.account).toBe('alice');
    expect(now.body.before).toBe('2026-11-30T15:00:00.001Z');
    expect(now.body.note).toMatch(
      /access tokens already issued stay valid until they expire \(at most 300 s/,
    );
    expect(t.revocations.revokedBefore('alice')).toBe(NOW + 1);
    const past = await t.post('{"account":"bob","before":"2026-11-30T14:00:00+00:00"}');
    expect(past.body.before).toBe('2026-11-30T14:00:00.000Z');
    expect(t.revocations.revokedBefore('bob')).toBe(NOW - 3_600_000);
    // Before anything still alive: said so, and nothing is kept.
    const ancient = await t.post('{"account":"carol","before":"2020-01-01T00:00:00Z"}');
    expect(ancient.status).toBe(200);
    expect(ancient.body.refused).toMatch(
      /^nothing: whatever was issued to carol before 2020-01-01T00:00:00\.000Z has expired already/,
    );
    expect(t.revocations.revokedBefore('carol')).toBeUndefined();
    const list = await fetch(`${t.url}/admin/revocations`, {
      headers: { authorization: `Bearer ${SECRET}` },
    });
    const listed = (await list.json()) as { revocations: { account: string }[] };
    expect(listed.revocations.map((r) => r.account)).toEqual(['alice', 'bob']);
    expect(t.logs).toContainEqual(
      expect.objectContaining({
        msg: 'revocation recorded',
        account: 'alice',
        before: '2026-11-30T15:00:00.001Z',
      }),
    );
    expect(JSON.stringify(t.logs)).not.toContain(SECRET);
  });

  it('answers bad bodies with 400 and a message that says what to send', async () => {
    const t = await start();
    const cases: [string, RegExp][] = [
      ['not json', /not JSON/],
      ['["alice"]', /JSON object/],
      ['{}', /account must be/],
      ['{"account":""}', /account must be/],
      ['{"account":42}', /account must be/],
      [JSON.stringify({ account: 'a'.repeat(300) }), /longer than 256 bytes/],
      [JSON.stringify({ account: 'ali\nce' }), /control characters/],
      [JSON.stringify({ account: ' alice' }), /spaces/],
      ['{"account":"alice","user":"x"}', /unknown field "user"/],
      ['{"account":"alice","before":"yesterday"}', /RFC 3339/],
      ['{"account":"alice","before":1764514800}', /RFC 3339/],
      ['{"account":"alice","before":"2026-11-30T15:05:00Z"}', /in the future/],
    ];
    for (const [body, message] of cases) {
      const res = await t.post(body);
      expect(res.status, body).toBe(400);
      expect(res.body.error, body).toMatch(message);
    }
    expect(t.revocations.list()).toEqual([]);
    // Within the clock skew, a time ahead counts as now.
    expect((await t.post('{"account":"alice","before":"2026-11-30T15:00:30Z"}')).body.before).toBe(
      '2026-11-30T15:00:00.001Z',
    );
    const huge = await t.post(JSON.stringify({ account: 'alice', pad: 'x'.repeat(10_000) }));
    expect(huge.status).toBe(413);
  });

  it('refuses a wrong secret with 401 and a Bearer challenge, until the address has spent its budget', async () => {
    const t = await start();
    const missing = await t.post('{"account":"alice"}', '');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer /);
    const statuses: number[] = [];
    for (let i = 0; i < ADMIN_FAILURES + 2; i++)
      statuses.push((await t.post('{"account":"alice"}', `wrong-${i}`)).status);
    expect(statuses.slice(0, ADMIN_FAILURES - 1).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(ADMIN_FAILURES - 1)).toEqual([429, 429, 429]);
    expect(t.revocations.list()).toEqual([]);
  });

  it('lets the right secret through from an address whose budget strangers spent', async () => {
    // Behind a TCP balancer every admin shares one address: wrong secrets from anyone there
    // must not lock the admins out (the secret is 32+ random characters, compared in constant
    // time; the budget only slows guessing it).
    const t = await start();
    for (let i = 0; i < ADMIN_FAILURES + 2; i++) await t.post('{"account":"alice"}', `wrong-${i}`);
    const wrong = await t.post('{"account":"alice"}', 'wrong-again');
    expect(wrong.status).toBe(429);
    expect(Number(wrong.headers.get('retry-after'))).toBeGreaterThan(0);
    const right = await t.post('{"account":"alice"}');
    expect(right.status).toBe(200);
    expect(t.revocations.revokedBefore('alice')).toBeDefined();
    // The budget stays spent for wrong secrets.
    expect((await t.post('{"account":"bob"}', 'wrong-after')).status).toBe(429);
    expect(t.revocations.revokedBefore('bob')).toBeUndefined();
  });

  it('refuses a short secret when it is created', () => {
    let error: unknown;
    try {
      createAdminEndpoint({
        path: '/admin',
        bearerToken: 'short-secret',
        revocations: createMemoryRevocationStore({ keepMs: 1000 }),
        accessExpiration: 300,
        clientAddress: (peer) => peer,
        log: () => {},
      });
    } catch (err) {
      error = err;
    }
    expect(isRegauthError(error, 'ERR_INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toMatch(/at least 32 random ones/);
    expect((error as Error).message).not.toContain('short-secret');
  });

  it('answers 503 when the store could not record the revocation, and 500 for anything else', async () => {
    const memory = createMemoryRevocationStore({ keepMs: 24 * 3_600_000, now: () => NOW });
    let failure: Error = new RegauthError(
      'ERR_NETWORK',
      'the revocation of alice was not recorded: Redis (redis://127.0.0.1:6379/0) did not answer',
    );
    const t = await start({
      ...memory,
      revoke: async () => {
        throw failure;
      },
    });
    const down = await t.post('{"account":"alice"}');
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    expect(down.body.error).toMatch(
      /alice was not recorded: Redis \(redis:\/\/127\.0\.0\.1:6379\/0\) did not answer/,
    );
    expect(t.logs).not.toContainEqual(expect.objectContaining({ msg: 'revocation recorded' }));
    failure = new Error('something else');
    const broken = await t.post('{"account":"alice"}');
    expect(broken.status).toBe(500);
    expect(broken.body.error).toBe('the admin endpoint failed; see the server log');
  });
});
