import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from './harness/processes.js';
import { startTokenServer, type TokenServerHandle } from './harness/token-server.js';

const USERS = { alice: 'alice-secret-1', bob: 'bob-secret-2' };
const METRICS_TOKEN = 'c2f1e0d9b8a7968574635241302f1e0d';
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** The value of one sample of the exposition text, such as `regauth_token_requests_total{outcome="issued"}`. */
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

describe('regauth serve metrics', () => {
  it('counts issued, denied, wrong-password and locked-out requests, behind a bearer token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regauth-metrics-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const tokenFile = join(dir, 'metrics.token');
    await writeFile(tokenFile, `${METRICS_TOKEN}\n`);
    const server = await startTokenServer({
      users: USERS,
      extra: {
        limits: { address_failures: 2 },
        metrics: { enabled: true, bearer_token_file: tokenFile },
      },
    });
    servers.push(server);
    const ask = async (scope: string | undefined, authorization?: string): Promise<number> => {
      const url = new URL(`${server.url}/token`);
      url.searchParams.set('service', server.service);
      if (scope !== undefined) url.searchParams.set('scope', scope);
      const res = await fetch(url, authorization === undefined ? {} : { headers: { authorization } });
      await res.arrayBuffer();
      return res.status;
    };
    expect(await ask('repository:alice/app:pull', basic('alice', USERS.alice))).toBe(200);
    expect(await ask('repository:bob/app:push', basic('alice', USERS.alice))).toBe(200); // nothing granted
    expect(await ask(undefined)).toBe(401); // a login probe without credentials
    expect(await ask('repository:bob/app:pull', basic('bob', 'wrong-1'))).toBe(401);
    expect(await ask('repository:bob/app:pull', basic('bob', 'wrong-2'))).toBe(401);
    // The address spent its budget of 2 failures: even the right password waits now.
    expect(await ask('repository:bob/app:pull', basic('bob', USERS.bob))).toBe(429);

    const scrape = async (authorization?: string) => {
      const res = await fetch(
        `${server.url}/metrics`,
        authorization === undefined ? {} : { headers: { authorization } },
      );
      return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
    };
    expect((await scrape()).status).toBe(401);
    expect((await scrape('Bearer wrong-token-of-the-same-size-00')).status).toBe(401);
    expect((await scrape(basic('alice', USERS.alice))).status).toBe(401);
    const { status, body, type } = await scrape(`Bearer ${METRICS_TOKEN}`);
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect({
      issued: sample(body, 'regauth_token_requests_total{outcome="issued"}'),
      unauthorized: sample(body, 'regauth_token_requests_total{outcome="unauthorized"}'),
      throttled: sample(body, 'regauth_token_requests_total{outcome="throttled"}'),
      badRequest: sample(body, 'regauth_token_requests_total{outcome="bad_request"}'),
      granted: sample(body, 'regauth_token_grants_total{result="granted"}'),
      denied: sample(body, 'regauth_token_grants_total{result="denied"}'),
      partial: sample(body, 'regauth_token_grants_total{result="partial"}'),
      wrongCredentials: sample(body, 'regauth_token_refusals_total{reason="wrong_credentials"}'),
      credentialsRequired: sample(body, 'regauth_token_refusals_total{reason="credentials_required"}'),
      lockedOut: sample(body, 'regauth_token_refusals_total{reason="locked_out"}'),
      addressLockouts: sample(body, 'regauth_lockouts_total{reason="address"}'),
      userLockouts: sample(body, 'regauth_lockouts_total{reason="user_backoff"}'),
      accepted: sample(
        body,
        'regauth_authenticator_duration_seconds_count{kind="htpasswd",result="accepted"}',
      ),
      refused: sample(body, 'regauth_authenticator_duration_seconds_count{kind="htpasswd",result="refused"}'),
      signed: sample(body, 'regauth_token_issue_duration_seconds_count'),
    }).toEqual({
      issued: 2,
      unauthorized: 3,
      throttled: 1,
      badRequest: 0,
      granted: 1,
      denied: 1,
      partial: 0,
      wrongCredentials: 2,
      credentialsRequired: 1,
      lockedOut: 1,
      addressLockouts: 1,
      userLockouts: 0,
      // alice's second login comes from the verified-login cache: no authenticator is asked.
      accepted: 1,
      refused: 2,
      signed: 2,
    });
    // No user name, scope or address becomes a label value.
    for (const text of ['alice', 'bob', '127.0.0.1', 'app']) expect(body).not.toContain(text);
  }, 60_000);

  it('serves the metrics only on their own listen address when one is given', async () => {
    const port = await freePort();
    const server = await startTokenServer({
      users: USERS,
      extra: { metrics: { enabled: true, listen: `127.0.0.1:${port}`, path: '/internal/metrics' } },
    });
    servers.push(server);
    await server.waitForLog((e) => e.msg === 'metrics listening');
    const onTokenPort = await fetch(`${server.url}/internal/metrics`);
    await onTokenPort.arrayBuffer();
    expect(onTokenPort.status).toBe(404);
    const own = await fetch(`http://127.0.0.1:${port}/internal/metrics`);
    expect(own.status).toBe(200);
    expect(sample(await own.text(), 'regauth_token_requests_total{outcome="issued"}')).toBe(0);
  }, 60_000);

  it('has no metrics endpoint unless enabled', async () => {
    const server = await startTokenServer({ users: USERS });
    servers.push(server);
    const res = await fetch(`${server.url}/metrics`);
    await res.arrayBuffer();
    expect(res.status).toBe(404);
  }, 60_000);
});
