import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import type { AclRuleConfig } from '../../src/server/acl.js';
import { htpasswdLine } from '../../src/server/testing/fixtures.js';
import { freePort, spawnLogged, waitFor } from './processes.js';
import { type RegistryHandle, startRegistry } from './registry.js';

export const REGAUTH_BIN = resolve(import.meta.dirname, '../../bin/regauth');
const run = promisify(execFile);

export { htpasswdLine };

export interface TokenServerHandle {
  readonly url: string;
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  readonly dir: string;
  readonly keyFile: string;
  readonly certFile: string;
  readonly htpasswdFile: string;
  /** The `regauth serve` process, for signals. */
  readonly process: import('node:child_process').ChildProcess;
  output(): string;
  /** The JSON log lines the server wrote so far. */
  logEntries(): Record<string, unknown>[];
  /** The log lines, once one matches `found` (the server writes its log a moment after answering). */
  waitForLog(
    found: (entry: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

export interface TokenServerSetup {
  readonly users?: Readonly<Record<string, string>>;
  readonly acl?: readonly AclRuleConfig[];
  readonly algorithm?: 'ES256' | 'RS256';
  readonly service?: string;
  readonly issuer?: string;
  /** Extra top-level config keys (limits, users.cache_seconds …), merged in. */
  readonly extra?: Record<string, unknown>;
  /**
   * An `authn:` list to serve instead of `users.htpasswd` (the htpasswd file of `users` is still
   * written, at htpasswdFile, for entries to name).
   */
  readonly authn?: readonly unknown[];
  /** Runs the server with this file-descriptor limit (`ulimit -n`), to test running out of them. */
  readonly ulimitFiles?: number;
  /**
   * A replica: signs with this server's key and serves its htpasswd file (`users` is then
   * ignored); only its own folder is removed by `stop`. Only the three files are read, so the
   * files of a deployment made elsewhere (keygen and an htpasswd file of its own) do too.
   */
  readonly replicaOf?: Pick<TokenServerHandle, 'keyFile' | 'certFile' | 'htpasswdFile'>;
  /** Listen on this loopback port (a replica started again where a balancer expects it). Left out: a free one. */
  readonly port?: number;
}

/** The ACL of the README's example: what the acceptance tests exercise. */
export const EXAMPLE_ACL: readonly AclRuleConfig[] = [
  { match: { account: 'admin' }, actions: ['*'] },
  { match: { account: '/.+/', name: '${account}/*' }, actions: ['pull', 'push', 'delete'] },
  { match: { account: '', name: 'public/**' }, actions: ['pull'] },
  { match: { account: 'admin', type: 'registry', name: 'catalog' }, actions: ['*'] },
];

/** Runs `regauth keygen` and `regauth serve` as a user would, on a free loopback port. */
export async function startTokenServer(setup: TokenServerSetup = {}): Promise<TokenServerHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-token-'));
  const service = setup.service ?? 'test-registry';
  const issuer = setup.issuer ?? 'regauth-test';
  const primary = setup.replicaOf;
  const keyFile = primary?.keyFile ?? join(dir, 'signing-key.pem');
  const certFile = primary?.certFile ?? join(dir, 'signing-cert.pem');
  const htpasswdFile = primary?.htpasswdFile ?? join(dir, 'users.htpasswd');
  if (primary === undefined) {
    await run(REGAUTH_BIN, [
      'keygen',
      '--key',
      keyFile,
      '--cert',
      certFile,
      '--algorithm',
      setup.algorithm ?? 'ES256',
    ]);
    const users = setup.users ?? {};
    await writeFile(
      htpasswdFile,
      Object.entries(users)
        .map(([u, p]) => `${htpasswdLine(u, p)}\n`)
        .join(''),
    );
  }
  const port = setup.port ?? (await freePort());
  const extra = setup.extra ?? {};
  const config: Record<string, unknown> & { tls?: unknown } = {
    listen: `127.0.0.1:${port}`,
    token: { issuer, service, expiration: 300, key: keyFile, certificate: certFile },
    ...extra,
    users: {
      ...(setup.authn === undefined ? { htpasswd: htpasswdFile } : {}),
      ...((extra.users as object | undefined) ?? {}),
    },
    ...(setup.authn === undefined ? {} : { authn: setup.authn }),
    acl: setup.acl ?? EXAMPLE_ACL,
  };
  const configFile = join(dir, 'serve.yml');
  await writeFile(configFile, stringify(config));
  const spawned =
    setup.ulimitFiles === undefined
      ? spawnLogged(REGAUTH_BIN, ['serve', '--config', configFile])
      : spawnLogged('/bin/sh', [
          '-c',
          `ulimit -n ${setup.ulimitFiles} && exec "$0" "$@"`,
          REGAUTH_BIN,
          'serve',
          '--config',
          configFile,
        ]);
  const url = `${config.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;
  const logEntries = () =>
    spawned
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  await waitFor('regauth serve', spawned, async () => spawned.output().includes('"msg":"listening"'));
  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    dir,
    keyFile,
    certFile,
    htpasswdFile,
    process: spawned.child,
    output: spawned.output,
    logEntries,
    waitForLog: async (found, timeoutMs = 5000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const entries = logEntries();
        if (entries.some(found) || Date.now() > deadline) return entries;
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: async () => {
      await spawned.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TokenStack {
  readonly tokenServer: TokenServerHandle;
  readonly registry: RegistryHandle;
  stop(): Promise<void>;
}

/** A real registry that trusts a real `regauth serve`. */
export async function startTokenStack(setup: TokenServerSetup = {}): Promise<TokenStack> {
  const tokenServer = await startTokenServer(setup);
  try {
    const registry = await startRegistry({
      auth: {
        token: {
          realm: tokenServer.realm,
          service: tokenServer.service,
          issuer: tokenServer.issuer,
          rootcertbundle: tokenServer.certFile,
        },
      },
    });
    return {
      tokenServer,
      registry,
      stop: async () => {
        await registry.stop();
        await tokenServer.stop();
      },
    };
  } catch (err) {
    await tokenServer.stop();
    throw err;
  }
}
