import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SLAPD_GROUPS, SLAPD_PEOPLE, type SlapdHandle, startSlapd } from './harness/slapd.js';
import { startTokenServer, type TokenServerHandle } from './harness/token-server.js';

/**
 * Refresh tokens (`docker login`'s identity token) of directory users, with `regauth serve` and
 * a real slapd: each refresh asks the directory again for the user and their groups.
 */
describe('regauth serve: refresh tokens of LDAP users are checked against the directory', () => {
  let slapd: SlapdHandle;
  let server: TokenServerHandle;

  beforeAll(async () => {
    slapd = await startSlapd({
      users: [
        { uid: 'alice', password: 'alice-ldap-pw', groups: ['dev', 'ops'] },
        { uid: 'bob', password: 'bob-ldap-pw', groups: ['dev'] },
        // A groupOfNames needs a member: carol keeps ops alive when alice leaves it.
        { uid: 'carol', password: 'carol-ldap-pw', groups: ['ops'] },
      ],
    });
    const bindPasswordFile = join(slapd.dir, 'bind-password');
    await writeFile(bindPasswordFile, `${slapd.servicePassword}\n`);
    server = await startTokenServer({
      authn: [
        {
          ldap: {
            url: slapd.url,
            bind_dn: slapd.serviceDn,
            bind_password_file: bindPasswordFile,
            base_dn: SLAPD_PEOPLE,
            labels: { group: { attribute: 'memberOf', cn_only: true } },
            timeout_seconds: 3,
          },
        },
      ],
      acl: [{ match: { labels: { group: '*' }, name: '${labels:group}/*' }, actions: ['pull', 'push'] }],
    });
  });

  afterAll(async () => {
    await server?.stop();
    await slapd?.stop();
  });

  const post = async (form: Record<string, string>) => {
    const res = await fetch(server.realm, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ service: server.service, client_id: 'test', ...form }).toString(),
    });
    const body = (await res.json()) as { access_token?: string; refresh_token?: string };
    const access =
      body.access_token === undefined
        ? undefined
        : (decodeJwt(body.access_token).access as { name: string; actions: string[] }[]).map(
            (a) => `${a.name}:${a.actions.join(',')}`,
          );
    return {
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      access,
      refresh: body.refresh_token,
    };
  };
  const login = async (user: string, password: string): Promise<string> => {
    const res = await post({ grant_type: 'password', username: user, password, access_type: 'offline' });
    expect(res.status).toBe(200);
    expect(res.refresh).toBeDefined();
    return res.refresh as string;
  };
  const refresh = (token: string, ...scopes: string[]) =>
    post({ grant_type: 'refresh_token', refresh_token: token, scope: scopes.join(' ') });

  it("issues with the directory's current groups: a group removal takes effect at the next refresh", async () => {
    const token = await login('alice', 'alice-ldap-pw');
    const before = await refresh(token, 'repository:ops/app:pull', 'repository:dev/app:pull');
    expect(before.status).toBe(200);
    expect(before.access).toEqual(['ops/app:pull', 'dev/app:pull']);
    await slapd.add(
      `dn: cn=ops,${SLAPD_GROUPS}\nchangetype: modify\ndelete: member\nmember: uid=alice,${SLAPD_PEOPLE}\n`,
    );
    const after = await refresh(token, 'repository:ops/app:pull', 'repository:dev/app:pull');
    expect(after.status).toBe(200);
    expect(after.access).toEqual(['dev/app:pull']);
  });

  it('refuses the refresh token of a user deleted from the directory', async () => {
    const token = await login('bob', 'bob-ldap-pw');
    expect((await refresh(token, 'repository:dev/app:pull')).access).toEqual(['dev/app:pull']);
    await slapd.add(
      `dn: cn=dev,${SLAPD_GROUPS}\nchangetype: modify\ndelete: member\nmember: uid=bob,${SLAPD_PEOPLE}\n\n` +
        `dn: uid=bob,${SLAPD_PEOPLE}\nchangetype: delete\n`,
    );
    const gone = await refresh(token, 'repository:dev/app:pull');
    expect(gone.status).toBe(401);
    expect(gone.access).toBeUndefined();
    const entries = await server.waitForLog(
      (e) => e.msg === 'token' && e.grantType === 'refresh_token' && e.status === 401,
    );
    expect(
      entries.find((e) => e.msg === 'token' && e.grantType === 'refresh_token' && e.status === 401),
    ).toMatchObject({
      account: 'bob',
      reason: 'refresh token refused: the user is gone from its authenticator',
    });
    expect(server.output()).not.toContain(token);
  });

  it('answers 503, never a grant on stale groups, while the directory is down', async () => {
    const token = await login('alice', 'alice-ldap-pw');
    await slapd.stop();
    const down = await refresh(token, 'repository:dev/app:pull');
    expect(down.status).toBe(503);
    expect(down.retryAfter).toBe('5');
    expect(down.access).toBeUndefined();
    const entries = await server.waitForLog(
      (e) => e.msg === 'token' && e.grantType === 'refresh_token' && e.status === 503,
    );
    const line = entries.find(
      (e) => e.msg === 'token' && e.grantType === 'refresh_token' && e.status === 503,
    );
    expect(line).toMatchObject({ account: 'alice', outcome: 'unavailable' });
    expect(String(line?.reason)).toMatch(/^authenticator failed: .*LDAP server 127\.0\.0\.1:\d+ failed/);
    expect(server.output()).not.toContain(token);
    expect(server.output()).not.toContain(slapd.servicePassword);
  });
});
