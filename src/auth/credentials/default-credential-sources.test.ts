import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachedCredentialSource } from './cached-credential-source.js';
import { chainCredentials } from './chain-credentials.js';
import type { CredentialEnv } from './credential.js';
import {
  type DefaultCredentialSourcesOptions,
  defaultCredentialSources,
  loginAuthFile,
} from './default-credential-sources.js';
import { b64, type Sandbox, sandbox, writeJson, writeStoringHelper } from './testing/fixtures.js';

describe('defaultCredentialSources', () => {
  let box: Sandbox;
  let home: string;
  let runtimeDir: string;
  let dockerPath: string;
  let podmanPath: string;
  let authfile: string;
  beforeEach(async () => {
    box = await sandbox();
    home = join(box.dir, 'home');
    runtimeDir = join(box.dir, 'run');
    dockerPath = join(home, '.docker', 'config.json');
    podmanPath = join(runtimeDir, 'containers', 'auth.json');
    authfile = join(box.dir, 'explicit.json');
    await mkdir(join(home, '.docker'), { recursive: true });
    await mkdir(join(runtimeDir, 'containers'), { recursive: true });
  });
  afterEach(() => box.cleanup());

  const entry = (user: string) => ({ auths: { 'ghcr.io': { auth: b64(`${user}:pw`) } } });
  const chain = (options: Partial<DefaultCredentialSourcesOptions> = {}, env: CredentialEnv = {}) =>
    chainCredentials(
      defaultCredentialSources({
        env: { ...box.env, XDG_RUNTIME_DIR: runtimeDir, ...env },
        homedir: home,
        ...options,
      }),
    );
  const sourceOf = async (options: Partial<DefaultCredentialSourcesOptions> = {}, env: CredentialEnv = {}) =>
    (await chain(options, env).find('ghcr.io'))?.source;

  it('asks flags, then env, then docker config, then podman auth.json', async () => {
    await writeJson(dockerPath, entry('docker'));
    await writeJson(podmanPath, {
      auths: { 'ghcr.io': { auth: b64('podman:pw') }, 'quay.io': { auth: b64('q:pw') } },
    });
    const env = { REGAUTH_USERNAME: 'env', REGAUTH_PASSWORD: 'pw' };

    expect(await sourceOf({ username: 'flag', password: 'pw' }, env)).toBe(
      'the user name and password given',
    );
    expect(await sourceOf({}, env)).toBe('REGAUTH_USERNAME/REGAUTH_PASSWORD');
    expect(await sourceOf()).toBe(`docker config ${dockerPath}`);
    expect((await chain().find('quay.io'))?.source).toBe(`podman auth file ${podmanPath}`);
    expect(await chain().find('example.com')).toBeUndefined();
  });

  it('reads DOCKER_CONFIG for the docker config folder', async () => {
    const other = join(box.dir, 'ci-docker');
    await mkdir(other);
    await writeJson(join(other, 'config.json'), entry('ci'));
    await writeJson(dockerPath, entry('home'));
    const found = await chain({}, { DOCKER_CONFIG: other }).find('ghcr.io');
    expect(found).toEqual({
      credential: { username: 'ci', password: 'pw' },
      source: `docker config ${join(other, 'config.json')}`,
    });
  });

  it('reads only the explicit auth file when one is given, not docker or podman files', async () => {
    await writeJson(dockerPath, entry('docker'));
    await writeJson(podmanPath, entry('podman'));
    await writeJson(authfile, { auths: { 'quay.io': { auth: b64('explicit:pw') } } });

    expect(await sourceOf({ authfile })).toBeUndefined();
    expect((await chain({ authfile }).find('quay.io'))?.source).toBe(`the auth file given ${authfile}`);
    expect(await sourceOf({}, { REGISTRY_AUTH_FILE: authfile })).toBeUndefined();
    expect((await chain({}, { REGISTRY_AUTH_FILE: authfile }).find('quay.io'))?.source).toBe(
      `REGISTRY_AUTH_FILE ${authfile}`,
    );
  });

  it('refuses an explicit auth file that does not exist, naming it, as skopeo does', () => {
    const missing = join(box.dir, 'typo.json');
    expect(() => chain({ authfile: missing })).toThrow(
      expect.objectContaining({
        code: 'ERR_USAGE',
        message: expect.stringContaining(`the auth file given ${missing} does not exist`),
      }),
    );
    expect(() => chain({}, { REGISTRY_AUTH_FILE: missing })).toThrow(
      `REGISTRY_AUTH_FILE ${missing} does not exist`,
    );
    expect(() => chain({ authfile: box.dir })).toThrow(`the auth file given ${box.dir} is not a file`);
    // docker's and podman's own files are optional: a user without a login has none.
    expect(() => chain()).not.toThrow();
  });

  it('lets --authfile win over REGISTRY_AUTH_FILE, and flags and env still win over both', async () => {
    const envFile = join(box.dir, 'env.json');
    await writeJson(envFile, entry('from-env-file'));
    await writeJson(authfile, entry('from-flag-file'));
    const found = await chain({ authfile }, { REGISTRY_AUTH_FILE: envFile }).find('ghcr.io');
    expect(found?.credential.username).toBe('from-flag-file');
    expect(await sourceOf({ authfile }, { REGAUTH_USERNAME: 'env', REGAUTH_PASSWORD: 'pw' })).toBe(
      'REGAUTH_USERNAME/REGAUTH_PASSWORD',
    );
  });

  it('offers the flags only to the registry they are for, when it is named', async () => {
    await writeJson(dockerPath, { auths: { 'quay.io': { auth: b64('docker:pw') } } });
    const sources = chain({ username: 'flag', password: 'pw', registry: 'ghcr.io' });
    expect((await sources.find('ghcr.io'))?.source).toBe('the user name and password given');
    expect((await sources.find('quay.io'))?.source).toBe(`docker config ${dockerPath}`);
  });

  it('refuses one flag without the other', () => {
    expect(() => chain({ username: 'alice' })).toThrow(
      expect.objectContaining({
        code: 'ERR_USAGE',
        message: 'a user name was given without a password; give both',
        hint: { kind: 'credential-pair', missing: 'password' },
      }),
    );
    expect(() => chain({ password: 'pw' })).toThrow(
      expect.objectContaining({
        code: 'ERR_USAGE',
        message: 'a password was given without a user name; give both',
        hint: { kind: 'credential-pair', missing: 'username' },
      }),
    );
    expect(() => chain({}, { REGAUTH_PASSWORD: 'pw' })).toThrow(
      expect.objectContaining({ code: 'ERR_USAGE' }),
    );
  });

  it('runs no helper until a registry is asked for, and each at most once when cached', async () => {
    const helper = await writeStoringHelper(box.bin, 'test', {
      'ghcr.io': { Username: 'alice', Secret: 's' },
    });
    await writeJson(dockerPath, { credsStore: 'test' });
    await writeJson(podmanPath, { credsStore: 'test' });
    const cached = cachedCredentialSource(chain());
    expect(await helper.log()).toEqual([]);

    expect((await cached.find('ghcr.io'))?.source).toBe('credential helper docker-credential-test');
    expect((await cached.find('ghcr.io'))?.credential).toEqual({ username: 'alice', password: 's' });
    expect(await helper.log()).toEqual(['get ghcr.io']);
  });

  it('passes the helper timeout on', async () => {
    const { writeHelper } = await import('./testing/fixtures.js');
    await writeHelper(box.bin, 'hang', '#!/bin/sh\nexec sleep 5\n');
    await writeJson(dockerPath, { credsStore: 'hang' });
    await expect(chain({ helperTimeoutMs: 120 }).find('ghcr.io')).rejects.toMatchObject({
      code: 'ERR_CREDENTIAL_HELPER',
      message: expect.stringContaining('within 0.12 s'),
    });
  });
});

describe('loginAuthFile', () => {
  it('writes where the explicit auth file is, else to docker config', () => {
    expect(loginAuthFile({ env: {}, homedir: '/home/u' })).toEqual({
      path: '/home/u/.docker/config.json',
      label: 'docker config',
    });
    expect(loginAuthFile({ env: { REGISTRY_AUTH_FILE: '/a.json' }, homedir: '/home/u' })).toEqual({
      path: '/a.json',
      label: 'REGISTRY_AUTH_FILE',
    });
    expect(
      loginAuthFile({ env: { REGISTRY_AUTH_FILE: '/a.json' }, homedir: '/h', authfile: '/b.json' }),
    ).toEqual({
      path: '/b.json',
      label: 'the auth file given',
    });
  });
});
