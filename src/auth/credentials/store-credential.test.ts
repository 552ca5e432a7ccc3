import { chmod, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dockerConfig } from './docker-config.js';
import { storeCredential } from './store-credential.js';
import { b64, type Sandbox, sandbox, writeJson, writeStoringHelper } from './testing/fixtures.js';

describe('storeCredential', () => {
  let box: Sandbox;
  let dir: string;
  let path: string;
  beforeEach(async () => {
    box = await sandbox();
    dir = join(box.dir, 'home', '.docker');
    path = join(dir, 'config.json');
  });
  afterEach(() => box.cleanup());

  const options = () => ({ path, env: box.env });
  const readJson = async () => JSON.parse(await readFile(path, 'utf8'));

  it('creates the file with mode 0600 in a 0700 folder, written with tabs like docker', async () => {
    const where = await storeCredential('127.0.0.1:5000', { username: 'alice', password: 'pw' }, options());
    expect(where).toBe(`docker config ${path}`);
    expect(await readFile(path, 'utf8')).toBe(
      `{\n\t"auths": {\n\t\t"127.0.0.1:5000": {\n\t\t\t"auth": "${b64('alice:pw')}"\n\t\t}\n\t}\n}\n`,
    );
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(await readdir(dir)).toEqual(['config.json']);
  });

  it('keeps every other field and entry, unknown ones included, and the file mode', async () => {
    await mkdir(dir, { recursive: true });
    await writeJson(path, {
      auths: {
        'quay.io': { auth: b64('q:pw') },
        '127.0.0.1:5000': { auth: b64('old:pw'), email: 'a@b', x: 1 },
      },
      psFormat: 'table {{.ID}}',
      futureField: { nested: [1, 2] },
      proxies: { default: { httpProxy: 'http://proxy:3128' } },
    });
    await chmod(path, 0o640);
    await storeCredential('127.0.0.1:5000', { username: 'alice', password: 'new' }, options());
    expect(await readJson()).toEqual({
      auths: {
        'quay.io': { auth: b64('q:pw') },
        '127.0.0.1:5000': { auth: b64('alice:new'), email: 'a@b', x: 1 },
      },
      psFormat: 'table {{.ID}}',
      futureField: { nested: [1, 2] },
      proxies: { default: { httpProxy: 'http://proxy:3128' } },
    });
    expect((await stat(path)).mode & 0o777).toBe(0o640);
    expect(await readdir(dir)).toEqual(['config.json']);
  });

  it('writes an identity token as docker login does: auth of "user:" and identitytoken, no password', async () => {
    await storeCredential(
      'ghcr.io',
      { username: 'alice', password: 'ignored', identityToken: 'refresh-1' },
      options(),
    );
    expect((await readJson()).auths).toEqual({
      'ghcr.io': { auth: b64('alice:'), identitytoken: 'refresh-1' },
    });
    expect((await dockerConfig({ path }).find('ghcr.io'))?.credential).toEqual({
      username: 'alice',
      identityToken: 'refresh-1',
    });
  });

  it('writes a registry token, and an identity token without a user name without auth', async () => {
    await storeCredential('a.example', { registryToken: 'bearer' }, options());
    await storeCredential('b.example', { identityToken: 'refresh' }, options());
    expect((await readJson()).auths).toEqual({
      'a.example': { registrytoken: 'bearer' },
      'b.example': { identitytoken: 'refresh' },
    });
  });

  it("stores Docker Hub under docker's key https://index.docker.io/v1/", async () => {
    await storeCredential('registry-1.docker.io', { username: 'hub', password: 'pw' }, options());
    expect(Object.keys((await readJson()).auths)).toEqual(['https://index.docker.io/v1/']);
    expect((await dockerConfig({ path }).find('docker.io'))?.credential).toEqual({
      username: 'hub',
      password: 'pw',
    });
  });

  it('replaces a symlinked config at its target and keeps the link', async () => {
    const real = join(box.dir, 'dotfiles', 'docker.json');
    await mkdir(join(box.dir, 'dotfiles'));
    await writeJson(real, { auths: {} });
    await mkdir(dir, { recursive: true });
    await symlink(real, path);
    await storeCredential('ghcr.io', { username: 'a', password: 'b' }, options());
    expect(await readlink(path)).toBe(real);
    expect(JSON.parse(await readFile(real, 'utf8')).auths).toEqual({ 'ghcr.io': { auth: b64('a:b') } });
    expect(await readdir(join(box.dir, 'dotfiles'))).toEqual(['docker.json']);
  });

  it("hands the credential to the credsStore helper and leaves docker's empty marker in the file", async () => {
    const helper = await writeStoringHelper(box.bin, 'test');
    await mkdir(dir, { recursive: true });
    await writeJson(path, {
      credsStore: 'test',
      auths: { 'ghcr.io': { auth: b64('stale:pw'), email: 'a@b' } },
    });
    const where = await storeCredential('ghcr.io', { username: 'alice', password: 'pw' }, options());
    expect(where).toBe('credential helper docker-credential-test');
    expect(await helper.state()).toEqual({ 'ghcr.io': { Username: 'alice', Secret: 'pw' } });
    expect(await readJson()).toEqual({ credsStore: 'test', auths: { 'ghcr.io': { email: 'a@b' } } });
    expect((await dockerConfig({ path, env: box.env }).find('ghcr.io'))?.source).toBe(
      'credential helper docker-credential-test',
    );
  });

  it('stores an identity token in credHelpers[host] with the user name <token>', async () => {
    const helper = await writeStoringHelper(box.bin, 'test');
    await mkdir(dir, { recursive: true });
    await writeJson(path, { credHelpers: { 'docker.io': 'test' } });
    await storeCredential('docker.io', { username: 'hub', identityToken: 'refresh' }, options());
    expect(await helper.state()).toEqual({
      'https://index.docker.io/v1/': { Username: '<token>', Secret: 'refresh' },
    });
    expect((await readJson()).auths).toEqual({ 'https://index.docker.io/v1/': {} });
  });

  it('refuses a registry token for a helper, which has nowhere to keep it', async () => {
    await writeStoringHelper(box.bin, 'test');
    await mkdir(dir, { recursive: true });
    await writeJson(path, { credsStore: 'test' });
    await expect(storeCredential('ghcr.io', { registryToken: 'bearer' }, options())).rejects.toMatchObject({
      code: 'ERR_USAGE',
      message: expect.stringContaining('cannot be kept in credential helper docker-credential-test'),
    });
  });

  it('refuses a credential without a secret, or a user name with a colon, and writes nothing', async () => {
    await expect(storeCredential('ghcr.io', { username: 'alice' }, options())).rejects.toMatchObject({
      code: 'ERR_USAGE',
    });
    await expect(
      storeCredential('ghcr.io', { username: 'a:b', password: 'pw' }, options()),
    ).rejects.toMatchObject({
      code: 'ERR_USAGE',
      message:
        'the user name for ghcr.io contains ":", which Basic authentication cannot carry; check the user name',
    });
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses to overwrite a broken file, so no login is lost', async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(path, '{"auths": {');
    await expect(
      storeCredential('ghcr.io', { username: 'a', password: 'b' }, options()),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_DOCKER_CONFIG',
    });
    expect(await readFile(path, 'utf8')).toBe('{"auths": {');
  });
});
