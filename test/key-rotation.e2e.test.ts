import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort, type Spawned, spawnLogged, waitFor } from './harness/processes.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';
import { htpasswdLine, REGAUTH_BIN } from './harness/token-server.js';

const run = promisify(execFile);
const SERVICE = 'rotation-registry';
const ISSUER = 'rotation-issuer';
const BASIC = `Basic ${Buffer.from('alice:alice-secret').toString('base64')}`;

/**
 * The README's rotation procedure with the real registry (distribution 2.8), which reads its
 * rootcertbundle only at start-up: every step restarts it with the bundle `regauth serve
 * --print-bundle` prints, as an operator would.
 */
describe('key rotation with the real registry', () => {
  let dir: string;
  let port: number;
  let server: Spawned | undefined;
  let registry: RegistryHandle | undefined;
  const pair = (n: number) => ({ key: join(dir, `k${n}.pem`), certificate: join(dir, `c${n}.pem`) });

  const writeConfig = async (keys: number[]): Promise<string> => {
    const file = join(dir, 'serve.yml');
    await writeFile(
      file,
      stringify({
        listen: `127.0.0.1:${port}`,
        token: { issuer: ISSUER, service: SERVICE, expiration: 300, keys: keys.map(pair) },
        users: { htpasswd: join(dir, 'users.htpasswd') },
        acl: [{ match: { account: 'alice' }, actions: ['pull'] }],
      }),
    );
    return file;
  };

  /** `regauth serve --print-bundle` for these keys, written where the registry reads it. */
  const publishBundle = async (keys: number[]): Promise<string> => {
    const config = await writeConfig(keys);
    const { stdout } = await run(REGAUTH_BIN, ['serve', '--print-bundle', '--config', config]);
    const file = join(dir, `bundle-${keys.join('-')}.pem`);
    await writeFile(file, stdout);
    await registry?.stop();
    registry = await startRegistry({
      auth: {
        token: {
          realm: `http://127.0.0.1:${port}/token`,
          service: SERVICE,
          issuer: ISSUER,
          rootcertbundle: file,
        },
      },
    });
    return stdout;
  };

  const restartServer = async (keys: number[]): Promise<void> => {
    const config = await writeConfig(keys);
    await server?.stop();
    const spawned = spawnLogged(REGAUTH_BIN, ['serve', '--config', config]);
    server = spawned;
    await waitFor('regauth serve', spawned, async () => spawned.output().includes('"msg":"listening"'));
  };

  const issue = async (): Promise<string> => {
    const res = await fetch(
      `http://127.0.0.1:${port}/token?service=${SERVICE}&scope=repository:alice/app:pull`,
      {
        headers: { authorization: BASIC },
      },
    );
    expect(res.status).toBe(200);
    return ((await res.json()) as { token: string }).token;
  };

  /** What the registry answers a request carrying the token: 200 accepted, 401 refused. */
  const registryStatus = async (token: string): Promise<number> => {
    const res = await fetch(`${registry?.url}/v2/`, { headers: { authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    return res.status;
  };

  const kidOf = async (n: number): Promise<string> => {
    const { stdout } = await run(REGAUTH_BIN, [
      'serve',
      '--print-bundle',
      '--config',
      await writeConfig([n]),
    ]);
    const token = await issueWith([n]);
    expect(stdout).toContain('-----BEGIN CERTIFICATE-----');
    return decodeProtectedHeader(token).kid ?? '';
  };
  const issueWith = async (keys: number[]): Promise<string> => {
    await restartServer(keys);
    return issue();
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regauth-rotation-'));
    port = await freePort();
    await writeFile(join(dir, 'users.htpasswd'), `${htpasswdLine('alice', 'alice-secret')}\n`);
    for (const n of [1, 2]) {
      const { key, certificate } = pair(n);
      await run(REGAUTH_BIN, ['keygen', '--key', key, '--cert', certificate]);
    }
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps old tokens working while both certificates are published, and only then', async () => {
    const kid1 = await kidOf(1);
    const kid2 = await kidOf(2);
    expect(kid1).not.toBe(kid2);

    // Before: key 1 alone signs and the registry trusts only its certificate.
    await publishBundle([1]);
    await restartServer([1]);
    const oldToken = await issue();
    expect(decodeProtectedHeader(oldToken).kid).toBe(kid1);
    expect(await registryStatus(oldToken)).toBe(200);

    // Step 1: the new key goes second; the bundle with both certificates goes to the registry.
    const both = await publishBundle([1, 2]);
    expect(both.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2);
    await restartServer([1, 2]);
    expect(decodeProtectedHeader(await issue()).kid).toBe(kid1);
    expect(await registryStatus(oldToken)).toBe(200);

    // Step 2: the new key moves first and signs; the old key's tokens still pass.
    await restartServer([2, 1]);
    const newToken = await issue();
    expect(decodeProtectedHeader(newToken).kid).toBe(kid2);
    expect(await registryStatus(newToken)).toBe(200);
    expect(await registryStatus(oldToken)).toBe(200);

    // Step 3: once the old tokens expired, the old key leaves and the bundle is published again.
    const onlyNew = await publishBundle([2]);
    expect(onlyNew.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(1);
    await restartServer([2]);
    expect(await registryStatus(newToken)).toBe(200);
    expect(await registryStatus(await issue())).toBe(200);
    expect(await registryStatus(oldToken)).toBe(401);

    // And a registry that still trusts only the old certificate refuses the new key's tokens:
    // they verify against the new certificate, not against whatever is in the bundle.
    await publishBundle([1]);
    expect(await registryStatus(newToken)).toBe(401);
  }, 120_000);

  it('names the key path of a pair that does not match, and prints nothing', async () => {
    const config = join(dir, 'mismatch.yml');
    await writeFile(
      config,
      stringify({
        token: {
          issuer: ISSUER,
          service: SERVICE,
          keys: [pair(2), { key: pair(1).key, certificate: pair(2).certificate }],
        },
        acl: [],
      }),
    );
    const result = await run(REGAUTH_BIN, ['serve', '--print-bundle', '--config', config]).then(
      () => undefined,
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(result?.code).not.toBe(0);
    expect(result?.stdout).toBe('');
    expect(result?.stderr).toContain(
      `token.keys[1].certificate (${pair(2).certificate}): the first certificate is not for the key in token.keys[1].key (${pair(1).key})`,
    );
  });
});
