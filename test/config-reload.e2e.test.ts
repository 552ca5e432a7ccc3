import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as connectTcp, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { decodeProtectedHeader } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { freePort } from './harness/processes.js';
import { SLAPD_PEOPLE, startSlapd } from './harness/slapd.js';
import { makeLoopbackTls } from './harness/tls.js';
import {
  htpasswdLine,
  REGAUTH_BIN,
  startTokenServer,
  type TokenServerHandle,
  type TokenServerSetup,
} from './harness/token-server.js';

const run = promisify(execFile);
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const servers: TokenServerHandle[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function start(setup: TokenServerSetup): Promise<TokenServerHandle> {
  const server = await startTokenServer(setup);
  servers.push(server);
  return server;
}

type Config = Record<string, unknown> & {
  acl: unknown[];
  token: Record<string, unknown>;
  limits?: Record<string, unknown>;
};

/** Rewrites the running server's serve.yml as an operator would. */
async function editConfig(server: TokenServerHandle, change: (config: Config) => void): Promise<void> {
  const file = join(server.dir, 'serve.yml');
  const config = parse(await readFile(file, 'utf8')) as Config;
  change(config);
  await writeFile(file, stringify(config));
}

const RELOAD_OUTCOMES = ['config reloaded', 'config reload failed'];

/** Sends SIGHUP and waits for the reload's outcome; returns that log entry. */
async function hup(server: TokenServerHandle): Promise<Record<string, unknown>> {
  const outcomes = () => server.logEntries().filter((e) => RELOAD_OUTCOMES.includes(e.msg as string));
  const before = outcomes().length;
  server.process.kill('SIGHUP');
  await server.waitForLog(() => outcomes().length > before, 20_000);
  const outcome = outcomes()[before];
  if (outcome === undefined) throw new Error(`no reload outcome logged:\n${server.output()}`);
  return outcome;
}

interface Answer {
  readonly status: number;
  readonly access?: unknown;
  readonly kid?: string;
  readonly x5c?: readonly string[];
  readonly refreshToken?: string;
}

/** A token request as docker sends it; the access claim and key header of a 200. */
async function token(
  server: TokenServerHandle,
  user: string,
  password: string,
  scope: string,
  offline = false,
): Promise<Answer> {
  const query = new URLSearchParams({ service: server.service, scope });
  if (offline) query.set('offline_token', 'true');
  const res = await fetch(`${server.realm}?${query}`, { headers: { authorization: basic(user, password) } });
  if (res.status !== 200) {
    await res.arrayBuffer();
    return { status: res.status };
  }
  const body = (await res.json()) as { token: string; refresh_token?: string };
  const header = decodeProtectedHeader(body.token);
  const claims = JSON.parse(Buffer.from(body.token.split('.')[1] ?? '', 'base64url').toString()) as {
    access: unknown;
  };
  return {
    status: 200,
    access: claims.access,
    ...(header.kid === undefined ? {} : { kid: header.kid }),
    ...(header.x5c === undefined ? {} : { x5c: header.x5c }),
    ...(body.refresh_token === undefined ? {} : { refreshToken: body.refresh_token }),
  };
}

const pullOnly = [{ type: 'repository', name: 'shared/app', actions: ['pull'] }];
const pullPush = [{ type: 'repository', name: 'shared/app', actions: ['pull', 'push'] }];
const SHARED = 'repository:shared/app:pull,push';

describe('regauth serve reloads its whole config on SIGHUP', () => {
  it('applies an ACL change: a new grant, then a new denial, in real tokens', async () => {
    const server = await start({
      users: { alice: 'alice-pw' },
      acl: [{ match: { account: 'alice', name: 'shared/*' }, actions: ['pull'] }],
    });
    expect((await token(server, 'alice', 'alice-pw', SHARED)).access).toEqual(pullOnly);
    await editConfig(server, (c) => {
      c.acl = [{ match: { account: 'alice', name: 'shared/*' }, actions: ['pull', 'push'] }];
    });
    expect(await hup(server)).toMatchObject({ msg: 'config reloaded', changed: ['acl'] });
    expect((await token(server, 'alice', 'alice-pw', SHARED)).access).toEqual(pullPush);
    await editConfig(server, (c) => {
      c.acl = [{ match: { account: 'bob' }, actions: ['*'] }];
    });
    expect((await hup(server)).msg).toBe('config reloaded');
    expect(await token(server, 'alice', 'alice-pw', SHARED)).toMatchObject({ status: 200, access: [] });
  });

  it('opens an authn backend added to the list: its user logs in', async () => {
    const server = await start({
      users: { alice: 'alice-pw' },
      acl: [{ match: { account: '/.+/', name: 'shared/*' }, actions: ['pull'] }],
    });
    const second = join(server.dir, 'team.htpasswd');
    await writeFile(second, `${htpasswdLine('bob', 'bob-pw')}\n`);
    expect((await token(server, 'bob', 'bob-pw', SHARED)).status).toBe(401);
    // From the `users.htpasswd` shorthand to an `authn:` list with a second file.
    await editConfig(server, (c) => {
      c.users = {};
      c.authn = [{ htpasswd: { file: server.htpasswdFile } }, { htpasswd: { file: second } }];
    });
    expect(await hup(server)).toMatchObject({ msg: 'config reloaded', changed: ['users', 'authn'] });
    expect(await token(server, 'bob', 'bob-pw', SHARED)).toMatchObject({ status: 200, access: pullOnly });
    expect((await token(server, 'alice', 'alice-pw', SHARED)).status).toBe(200);
  });

  it('keeps serving the old config when the new one is broken, and logs why with the key path', async () => {
    const server = await start({
      users: { alice: 'alice-pw' },
      acl: [{ match: { account: 'alice', name: 'shared/*' }, actions: ['pull'] }],
    });
    const file = join(server.dir, 'serve.yml');
    const good = await readFile(file, 'utf8');
    const broken: [string, (text: string) => string, string][] = [
      ['bad YAML', (text) => `${text}\nacl: [unclosed\nldap_secret: do-not-log-me\n`, 'not valid YAML'],
      ['unknown action', (text) => text.replace('- pull', '- pul'), 'acl[0].actions[0]'],
      ['missing key file', (text) => text.replace(/signing-key\.pem/, 'no-such-key.pem'), 'token.key'],
    ];
    for (const [what, breakIt, keyPath] of broken) {
      await writeFile(file, breakIt(good));
      const outcome = await hup(server);
      expect(outcome, what).toMatchObject({ msg: 'config reload failed', level: 'error' });
      expect(outcome.error, what).toContain(keyPath);
      expect(outcome.hint, what).toContain('keeps running with the config it had');
      expect(server.process.exitCode, what).toBeNull();
      expect((await token(server, 'alice', 'alice-pw', SHARED)).access, what).toEqual(pullOnly);
    }
    expect(server.output()).not.toContain('alice-pw');
    // The YAML parser quotes the file around the error; the log keeps the position only.
    expect(server.output()).not.toContain('do-not-log-me');
  });

  it('keeps a lock-out in progress: still 429 after the reload', async () => {
    const server = await start({
      users: { alice: 'alice-pw' },
      acl: [{ match: { account: 'alice' }, actions: ['pull'] }],
      // Two failures spend the address's budget for half an hour.
      extra: { limits: { login_failures: 0, address_failures: 2, login_window: 3600 } },
    });
    expect((await token(server, 'alice', 'wrong-1', SHARED)).status).toBe(401);
    expect((await token(server, 'alice', 'wrong-2', SHARED)).status).toBe(401);
    expect((await token(server, 'alice', 'alice-pw', SHARED)).status).toBe(429);
    await editConfig(server, (c) => {
      c.acl = [{ match: { account: 'alice' }, actions: ['*'] }];
    });
    expect((await hup(server)).msg).toBe('config reloaded');
    expect((await token(server, 'alice', 'alice-pw', SHARED)).status).toBe(429);
  });

  it('rotates the signing key: new tokens carry the new key, an earlier refresh token still works', async () => {
    const server = await start({
      users: { alice: 'alice-pw' },
      acl: [{ match: { account: 'alice' }, actions: ['pull'] }],
    });
    const before = await token(server, 'alice', 'alice-pw', SHARED, true);
    expect(before.refreshToken).toBeDefined();
    const key2 = join(server.dir, 'k2.pem');
    const cert2 = join(server.dir, 'c2.pem');
    await run(REGAUTH_BIN, ['keygen', '--key', key2, '--cert', cert2]);
    await editConfig(server, (c) => {
      const { key, certificate } = c.token;
      delete c.token.key;
      delete c.token.certificate;
      c.token.keys = [
        { key: key2, certificate: cert2 },
        { key, certificate },
      ];
    });
    expect(await hup(server)).toMatchObject({ msg: 'config reloaded', changed: ['token'] });
    const after = await token(server, 'alice', 'alice-pw', SHARED);
    const newDer = new X509Certificate(await readFile(cert2)).raw.toString('base64');
    expect(after.x5c?.[0]).toBe(newDer);
    expect(after.kid).not.toBe(before.kid);
    const refreshed = await fetch(server.realm, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: before.refreshToken ?? '',
        service: server.service,
        scope: SHARED,
      }),
    });
    expect(refreshed.status).toBe(200);
    const { token: renewed } = (await refreshed.json()) as { token: string };
    expect(decodeProtectedHeader(renewed).x5c?.[0]).toBe(newDer);
  });

  it('warns about restart-only keys by name and applies the rest', async () => {
    const server = await start({
      users: { alice: 'alice-pw' },
      acl: [{ match: { account: 'alice', name: 'shared/*' }, actions: ['pull'] }],
    });
    await editConfig(server, (c) => {
      c.listen = '127.0.0.1:1';
      c.limits = { ...c.limits, max_connections: 7 };
      c.acl = [{ match: { account: 'alice', name: 'shared/*' }, actions: ['pull', 'push'] }];
    });
    expect(await hup(server)).toMatchObject({ msg: 'config reloaded', changed: ['listen', 'limits', 'acl'] });
    expect(server.logEntries()).toContainEqual(
      expect.objectContaining({
        msg: 'config change needs a restart',
        level: 'warn',
        keys: ['listen', 'limits.max_connections'],
      }),
    );
    // Still on the old address, with the new ACL.
    expect((await token(server, 'alice', 'alice-pw', SHARED)).access).toEqual(pullPush);
  });

  it('answers every request in flight with a 200 while reloading several times', async () => {
    const server = await start({
      users: { alice: 'alice-pw' },
      acl: [{ match: { account: 'alice', name: 'shared/*' }, actions: ['pull'] }],
    });
    const statuses = new Map<number, number>();
    const grants = new Set<string>();
    let stop = false;
    const deadline = Date.now() + 60_000;
    const worker = async () => {
      for (let i = 0; i < 3000 && !stop && Date.now() < deadline; i++) {
        const answer = await token(server, 'alice', 'alice-pw', SHARED);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status === 200) grants.add(JSON.stringify(answer.access));
      }
    };
    const workers = Array.from({ length: 6 }, worker);
    for (let round = 0; round < 4; round++) {
      await editConfig(server, (c) => {
        c.acl = [
          {
            match: { account: 'alice', name: 'shared/*' },
            actions: round % 2 === 0 ? ['pull', 'push'] : ['pull'],
          },
        ];
      });
      expect((await hup(server)).msg).toBe('config reloaded');
    }
    stop = true;
    await Promise.all(workers);
    expect([...statuses.keys()]).toEqual([200]);
    // Requests ran on both ACLs, and each answer is one whole ACL's, never a mix.
    expect([...grants].sort()).toEqual([JSON.stringify(pullOnly), JSON.stringify(pullPush)].sort());
    expect((await token(server, 'alice', 'alice-pw', SHARED)).access).toEqual(pullOnly);
  });

  it('loads new TLS certificate and key files into the running server, and refuses a mismatched pair', async () => {
    const work = await mkdtemp(join(tmpdir(), 'regauth-reload-tls-'));
    dirs.push(work);
    const [first, second] = await Promise.all([makeLoopbackTls(), makeLoopbackTls()]);
    const certFile = join(work, 'tls.crt');
    const keyFile = join(work, 'tls.key');
    await writeFile(certFile, first.certPem);
    await writeFile(keyFile, first.keyPem);
    const adminFile = join(work, 'admin.token');
    await writeFile(adminFile, `${'a'.repeat(40)}\n`);
    const adminPort = await freePort();
    const server = await start({
      users: { alice: 'alice-pw' },
      extra: {
        tls: { cert: certFile, key: keyFile },
        // The admin endpoint's own listener serves the same pair and must follow a reload too.
        admin: { enabled: true, bearer_token_file: adminFile, listen: `127.0.0.1:${adminPort}` },
      },
    });
    await server.waitForLog((e) => e.msg === 'admin listening');
    const port = Number(new URL(server.url).port);
    const served = (at = port) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: at, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
          socket.end();
        });
        socket.once('error', reject);
      });
    const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
    expect(await served()).toBe(fingerprint(first.certPem));
    expect(await served(adminPort)).toBe(fingerprint(first.certPem));

    // cert-manager style: the same paths, new contents.
    await writeFile(certFile, second.certPem);
    await writeFile(keyFile, second.keyPem);
    expect(await hup(server)).toMatchObject({ msg: 'config reloaded', tls: 'reloaded' });
    expect(await served()).toBe(fingerprint(second.certPem));
    expect(await served(adminPort)).toBe(fingerprint(second.certPem));

    await writeFile(keyFile, first.keyPem);
    const refused = await hup(server);
    expect(refused).toMatchObject({ msg: 'config reload failed' });
    expect(refused.error).toContain('tls');
    expect(refused.error).not.toContain('PRIVATE KEY');
    expect(await served()).toBe(fingerprint(second.certPem));
  });

  it('opens an LDAP backend added by a reload, and closes its connections when a reload removes it', async () => {
    const slapd = await startSlapd({ users: [{ uid: 'dora', password: 'dora-ldap-pw', groups: ['dev'] }] });
    const open = new Set<Socket>();
    // A TCP relay in front of slapd that counts the connections regauth holds.
    const relay = createTcpServer((client) => {
      const upstream = connectTcp(Number(new URL(slapd.url).port), '127.0.0.1');
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
      const relayUrl = `ldap://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      const server = await start({
        users: { alice: 'alice-pw' },
        acl: [{ match: { account: '/.+/', name: 'shared/*' }, actions: ['pull'] }],
      });
      const bindPasswordFile = join(server.dir, 'bind-password');
      await writeFile(bindPasswordFile, `${slapd.servicePassword}\n`);
      expect((await token(server, 'dora', 'dora-ldap-pw', SHARED)).status).toBe(401);
      await editConfig(server, (c) => {
        c.users = {};
        c.authn = [
          { htpasswd: { file: server.htpasswdFile } },
          {
            ldap: {
              url: relayUrl,
              bind_dn: slapd.serviceDn,
              bind_password_file: bindPasswordFile,
              base_dn: SLAPD_PEOPLE,
              timeout_seconds: 10,
            },
          },
        ];
      });
      expect((await hup(server)).msg).toBe('config reloaded');
      expect(await token(server, 'dora', 'dora-ldap-pw', SHARED)).toMatchObject({
        status: 200,
        access: pullOnly,
      });
      expect(open.size).toBeGreaterThan(0);
      await editConfig(server, (c) => {
        c.authn = [{ htpasswd: { file: server.htpasswdFile } }];
      });
      expect((await hup(server)).msg).toBe('config reloaded');
      expect((await token(server, 'dora', 'dora-ldap-pw', SHARED)).status).toBe(401);
      const deadline = Date.now() + 10_000;
      while (open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(open.size).toBe(0);
      expect(server.output()).not.toContain(slapd.servicePassword);
    } finally {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
      await slapd.stop();
    }
  });
});
