import { connect, createServer, type Server, type Socket } from 'node:net';
import { Client } from 'ldapts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RegauthError } from '../src/errors/regauth-error.js';
import type { Authenticator } from '../src/server/authenticator.js';
import {
  createLdapAuthenticator,
  type LdapAuthenticatorConfig,
  type LdapLogEntry,
} from '../src/server/ldap-authenticator.js';
import { freePort } from './harness/processes.js';
import { SLAPD_GROUPS, SLAPD_PEOPLE, type SlapdHandle, startSlapd } from './harness/slapd.js';
import { makeLoopbackTls } from './harness/tls.js';

/**
 * The LDAP authenticator against a real OpenLDAP slapd on loopback (test/harness/slapd.ts),
 * reached with StartTLS or LDAPS under a throwaway CA. slapd here accepts unauthenticated binds
 * (a DN with an empty password, RFC 4513 §5.1.2), as many servers do, so a client that sent
 * one would log anyone in.
 */

const ALICE = { uid: 'alice', password: 'alice-Pa55word', groups: ['dev', 'ops'] };
const BOB = {
  uid: 'bob',
  password: 'bob-Pa55word',
  groups: ['dev'],
  attributes: { mail: 'team@example.org' },
};
const CAROL = { uid: 'carol', password: 'carol-Pa55word', attributes: { mail: 'team@example.org' } };
const JUERGEN = { uid: 'jürgen', password: 'jürgen-Pa55wört', groups: ['ops'] };
const ZOE = { uid: 'zoe', password: 'zoe-Pa55word', groups: ['dev'] };

let slapd: SlapdHandle;
const opened: Authenticator[] = [];
const logs: LdapLogEntry[] = [];

beforeAll(async () => {
  slapd = await startSlapd({
    tls: true,
    allowUnauthenticatedBind: true,
    users: [ALICE, BOB, CAROL, JUERGEN, ZOE],
  });
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close?.()));
});

afterAll(async () => {
  await slapd?.stop();
});

function base(): LdapAuthenticatorConfig {
  return {
    url: slapd.url,
    startTls: true,
    ca: { pem: slapd.caPem as string },
    bindDn: slapd.serviceDn,
    bindPassword: slapd.servicePassword,
    baseDn: SLAPD_PEOPLE,
    labels: {
      group: { attribute: 'memberOf', cnOnly: true },
      searched: {
        search: {
          baseDn: SLAPD_GROUPS,
          filter: '(&(objectClass=groupOfNames)(member=${dn}))',
          attribute: 'cn',
        },
      },
    },
    timeoutSeconds: 5,
    log: (entry) => logs.push(entry),
  };
}

async function ldap(overrides: Partial<LdapAuthenticatorConfig> = {}): Promise<Authenticator> {
  const authenticator = await createLdapAuthenticator({ ...base(), ...overrides });
  opened.push(authenticator);
  return authenticator;
}

const check = (a: Authenticator, user: string, password: string) =>
  a.authenticate({ user, password, address: '127.0.0.1' });

async function failure(promise: Promise<unknown>): Promise<RegauthError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RegauthError);
  return err as RegauthError;
}

describe('createLdapAuthenticator against slapd', () => {
  it('accepts a user with the right password and reads their groups into labels (memberOf and a group search)', async () => {
    const a = await ldap();
    expect(await check(a, 'alice', ALICE.password)).toEqual({
      outcome: 'accepted',
      identity: { name: 'alice', labels: { group: ['dev', 'ops'], searched: ['dev', 'ops'] } },
    });
    expect(await check(a, 'bob', BOB.password)).toEqual({
      outcome: 'accepted',
      identity: { name: 'bob', labels: { group: ['dev'], searched: ['dev'] } },
    });
    expect(await check(a, 'carol', CAROL.password)).toEqual({
      outcome: 'accepted',
      identity: { name: 'carol', labels: { group: [], searched: [] } },
    });
  });

  it('refuses a wrong password and hands an unknown user to the next authenticator', async () => {
    const a = await ldap();
    expect(await check(a, 'alice', BOB.password)).toEqual({ outcome: 'refused' });
    expect(await check(a, 'alice', `${ALICE.password} `)).toEqual({ outcome: 'refused' });
    expect(await check(a, 'mallory', ALICE.password)).toEqual({ outcome: 'unknown' });
    expect(await check(a, '', ALICE.password)).toEqual({ outcome: 'unknown' });
    // The connections survive a refusal: the right password still works afterwards.
    expect((await check(a, 'alice', ALICE.password)).outcome).toBe('accepted');
  });

  it('logs in only the exact spelling of a name: the directory ignores case and spaces, the ACL and lock-outs do not', async () => {
    const a = await ldap();
    // slapd finds alice for each of these (uid is caseIgnoreMatch); none may log in as someone
    // an ACL rule or a back-off for "alice" would not recognise.
    for (const spelling of ['ALICE', 'Alice', ' alice', 'alice ', 'alice  ']) {
      expect(await check(a, spelling, ALICE.password)).toEqual({ outcome: 'unknown' });
    }
    expect(await check(a, 'alice', ALICE.password)).toMatchObject({ outcome: 'accepted' });
  });

  it('matches UTF-8 names exactly as they are', async () => {
    const a = await ldap();
    expect(await check(a, 'jürgen', JUERGEN.password)).toMatchObject({
      outcome: 'accepted',
      identity: { name: 'jürgen', labels: { group: ['ops'] } },
    });
    expect(await check(a, 'jurgen', JUERGEN.password)).toEqual({ outcome: 'unknown' });
  });

  it('escapes filter syntax in the login name: no injected name reaches another user (RFC 4515)', async () => {
    const a = await ldap();
    const hostile = [
      '*',
      'a*',
      '*e',
      'al*ce',
      'alice)(uid=*',
      '*)(uid=*',
      ')(|(uid=*',
      'alice)(|(objectClass=*)',
      'alice\\2a',
      'al\\69ce',
      'alice\u0000',
      'alice\\00',
      '\\',
      '(',
      'ali\u00adce',
    ];
    for (const user of hostile) {
      expect({ user, result: await check(a, user, ALICE.password) }).toEqual({
        user,
        result: { outcome: 'unknown' },
      });
    }
    expect(logs.filter((l) => l.msg === 'ldap user filter matched several entries')).toEqual([]);
  });

  it('refuses an empty password without binding: slapd would take it as an anonymous bind', async () => {
    // The attack is real: this slapd accepts alice's DN with an empty password.
    const raw = new Client({ url: slapd.url, timeout: 5000, connectTimeout: 5000 });
    try {
      await expect(raw.bind(`uid=alice,${SLAPD_PEOPLE}`, '')).resolves.toBeUndefined();
    } finally {
      await raw.unbind();
    }
    const a = await ldap();
    expect(await check(a, 'alice', '')).toEqual({ outcome: 'refused' });
    expect(await check(a, 'carol', '')).toEqual({ outcome: 'refused' });
  });

  it('refuses a login whose filter matches several entries, and logs it without the password', async () => {
    const a = await ldap({ userFilter: '(mail=${user})' });
    logs.length = 0;
    expect(await check(a, 'team@example.org', BOB.password)).toEqual({ outcome: 'refused' });
    expect(logs).toEqual([
      {
        msg: 'ldap user filter matched several entries',
        level: 'warn',
        user: 'team@example.org',
        entries: 2,
      },
    ]);
    expect(JSON.stringify(logs)).not.toContain(BOB.password);
  });

  it('names the identity by name_attribute, and still logs in only the exact spelling', async () => {
    // slapd matches uid case-insensitively and after Unicode compatibility folding: these all
    // find alice's entry, and none of them is alice's login name.
    const named = await ldap({ nameAttribute: 'uid' });
    for (const user of ['ALICE', 'Alice', '\uff41\uff4c\uff49\uff43\uff45']) {
      expect(await check(named, user, ALICE.password)).toEqual({ outcome: 'unknown' });
    }
    expect(await check(named, 'alice', ALICE.password)).toMatchObject({
      outcome: 'accepted',
      identity: { name: 'alice' },
    });
  });

  it('looks a user up without a password for a refresh token: current groups, the exact spelling only, escaped', async () => {
    const a = await ldap();
    expect(await a.lookup?.('alice')).toEqual({
      name: 'alice',
      labels: { group: ['dev', 'ops'], searched: ['dev', 'ops'] },
    });
    expect(await a.lookup?.('jürgen')).toEqual({
      name: 'jürgen',
      labels: { group: ['ops'], searched: ['ops'] },
    });
    for (const name of ['mallory', '', 'ALICE', ' alice', 'a*', '*', 'alice)(uid=*']) {
      expect(await a.lookup?.(name), name).toBeUndefined();
    }
    // By name_attribute when the identity is named by it: mail is shared by bob and carol.
    const byMail = await ldap({ nameAttribute: 'mail' });
    expect(await byMail.lookup?.('team@example.org')).toBeUndefined();
    const byCn = await ldap({ nameAttribute: 'cn' });
    expect(await byCn.lookup?.('zoe')).toEqual({
      name: 'zoe',
      labels: { group: ['dev'], searched: ['dev'] },
    });
    // The id names the directory: the same settings give the same id, another base DN another.
    expect(a.id).toMatch(/^ldap:[0-9a-f]{16}$/);
    expect((await ldap()).id).toBe(a.id);
    expect((await ldap({ baseDn: SLAPD_GROUPS })).id).not.toBe(a.id);
  });

  it('serves parallel logins over reused connections', async () => {
    const a = await ldap({ idleConnections: 2 });
    const users = [ALICE, BOB, CAROL, ZOE, JUERGEN];
    const rounds = 4;
    const results = await Promise.all(
      Array.from({ length: rounds * users.length }, (_, i) => {
        const u = users[i % users.length] as (typeof users)[number];
        return check(a, u.uid, i % 3 === 0 ? 'wrong' : u.password);
      }),
    );
    expect(results.map((r) => r.outcome)).toEqual(
      Array.from({ length: rounds * users.length }, (_, i) => (i % 3 === 0 ? 'refused' : 'accepted')),
    );
  });

  it('reuses its connections, and replaces them when the server drops them', async () => {
    const target = Number(new URL(slapd.url).port);
    const open = new Set<Socket>();
    let connections = 0;
    const sent: Buffer[] = [];
    // A TCP relay in front of slapd that counts connections and can cut them all.
    const relay = createServer((client) => {
      connections++;
      const upstream = connect(target, '127.0.0.1');
      client.on('data', (chunk: Buffer) => sent.push(chunk));
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
        a.pipe(b);
      }
      open.add(client);
      client.on('close', () => open.delete(client));
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    try {
      const address = relay.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const a = await ldap({ url: `ldap://127.0.0.1:${port}` });
      for (let i = 0; i < 10; i++) {
        const user = i % 2 === 0 ? ALICE : BOB;
        expect((await check(a, user.uid, i === 5 ? 'wrong' : user.password)).outcome).toBe(
          i === 5 ? 'refused' : 'accepted',
        );
      }
      // One connection for searches as the service account, one for user binds, both reused.
      expect(connections).toBe(2);

      for (const socket of open) socket.destroy();
      const deadline = Date.now() + 5000;
      while (open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(open.size).toBe(0);
      expect((await check(a, 'alice', ALICE.password)).outcome).toBe('accepted');
      expect(connections).toBe(4);
      // StartTLS held throughout: no password crossed the relay readable.
      const wire = Buffer.concat(sent);
      expect(wire.length).toBeGreaterThan(0);
      expect(wire.includes(ALICE.password)).toBe(false);
      expect(wire.includes(slapd.servicePassword)).toBe(false);

      // close() (shutdown, or a reload replacing it) leaves no connection behind.
      expect(open.size).toBe(2);
      await a.close?.();
      const closeDeadline = Date.now() + 5000;
      while (open.size > 0 && Date.now() < closeDeadline) await new Promise((r) => setTimeout(r, 10));
      expect(open.size).toBe(0);
    } finally {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
  });

  it('works over ldaps:// with the CA', async () => {
    const a = await ldap({ url: slapd.ldapsUrl as string, startTls: false });
    expect((await check(a, 'alice', ALICE.password)).outcome).toBe('accepted');
  });

  it('fails with a clear error when the server certificate is not from the configured CA', async () => {
    const other = await makeLoopbackTls();
    for (const config of [
      { ca: { pem: other.caPem } },
      { ca: { pem: other.caPem }, url: slapd.ldapsUrl as string, startTls: false },
    ]) {
      const a = await ldap(config);
      const err = await failure(check(a, 'alice', ALICE.password));
      expect(err.code).toBe('ERR_NETWORK');
      expect(err.message).toMatch(/certificate/i);
      expect(err.message).not.toContain(slapd.servicePassword);
      expect(err.message).not.toContain(ALICE.password);
    }
  });

  it('names the service account when the directory refuses it, never its password', async () => {
    const wrong = `${slapd.servicePassword}-wrong`;
    const a = await ldap({ bindPassword: wrong });
    const err = await failure(check(a, 'alice', ALICE.password));
    expect(err.code).toBe('ERR_INVALID_CONFIG');
    expect(err.message).toContain(slapd.serviceDn);
    expect(err.message).not.toContain(wrong);
    expect(err.message).not.toContain(ALICE.password);
    expect(String(err.stack)).not.toContain(wrong);
  });

  it('fails, not hangs, when nothing listens', async () => {
    const port = await freePort();
    const a = await ldap({ url: `ldap://127.0.0.1:${port}`, startTls: false, ca: undefined as never });
    const err = await failure(check(a, 'alice', ALICE.password));
    expect(err.code).toBe('ERR_NETWORK');
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(err.message).not.toContain(slapd.servicePassword);
  });

  describe('a server that accepts connections and never answers', () => {
    let silent: Server;
    const sockets: Socket[] = [];
    beforeAll(async () => {
      silent = createServer((s) => {
        sockets.push(s);
        s.on('error', () => {});
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });

    it('times out with a clear error, for StartTLS and for a plain connection', async () => {
      const address = silent.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      for (const config of [
        { url: `ldap://127.0.0.1:${port}`, timeoutSeconds: 0.5 },
        { url: `ldap://127.0.0.1:${port}`, timeoutSeconds: 0.5, startTls: false, ca: undefined as never },
      ]) {
        const a = await ldap(config);
        const err = await failure(check(a, 'alice', ALICE.password));
        expect(err.code).toBe('ERR_NETWORK');
        expect(err.message).toMatch(/timed out|timeout/i);
        expect(err.message).not.toContain(slapd.servicePassword);
      }
      expect(sockets.length).toBeGreaterThan(0);
    });
  });
});
