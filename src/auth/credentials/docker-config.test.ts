import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dockerConfig } from './docker-config.js';
import {
  b64,
  type Sandbox,
  sandbox,
  writeHelper,
  writeJson,
  writeStoringHelper,
} from './testing/fixtures.js';

describe('dockerConfig', () => {
  let box: Sandbox;
  let path: string;
  beforeEach(async () => {
    box = await sandbox();
    path = join(box.dir, 'config.json');
  });
  afterEach(() => box.cleanup());

  const source = (timeoutMs?: number) =>
    dockerConfig({ path, env: box.env, ...(timeoutMs === undefined ? {} : { helperTimeoutMs: timeoutMs }) });

  it('finds nothing when the file does not exist', async () => {
    expect(await source().find('ghcr.io')).toBeUndefined();
  });

  it('finds an inline auth entry and names the file as its source', async () => {
    await writeJson(path, { auths: { '127.0.0.1:5000': { auth: b64('alice:pw:x') } } });
    expect(await source().find('127.0.0.1:5000')).toEqual({
      credential: { username: 'alice', password: 'pw:x' },
      source: `docker config ${path}`,
    });
  });

  it('uses the label it is given in the source', async () => {
    await writeJson(path, { auths: { 'ghcr.io': { auth: b64('a:b') } } });
    const found = await dockerConfig({ path, label: 'podman auth file' }).find('ghcr.io');
    expect(found?.source).toBe(`podman auth file ${path}`);
  });

  it.each([
    'ghcr.io',
    'https://ghcr.io',
    'https://ghcr.io/',
    'https://ghcr.io/v1/',
    'http://ghcr.io',
    'GHCR.IO',
  ])('matches the key %s to the registry ghcr.io', async (key) => {
    await writeJson(path, { auths: { [key]: { auth: b64('alice:pw') } } });
    expect((await source().find('ghcr.io'))?.credential).toEqual({ username: 'alice', password: 'pw' });
  });

  it('compares hosts exactly: example.com is not registry.example.com nor example.com:5000', async () => {
    await writeJson(path, { auths: { 'example.com': { auth: b64('alice:pw') } } });
    expect(await source().find('registry.example.com')).toBeUndefined();
    expect(await source().find('example.com:5000')).toBeUndefined();
    expect(await source().find('ample.com')).toBeUndefined();
    expect(await source().find('example.co')).toBeUndefined();
    expect((await source().find('example.com'))?.credential.username).toBe('alice');
  });

  it('does not give a host:port entry to the bare host', async () => {
    await writeJson(path, { auths: { 'https://example.com:5000/v1/': { auth: b64('alice:pw') } } });
    expect(await source().find('example.com')).toBeUndefined();
    expect((await source().find('example.com:5000'))?.credential.username).toBe('alice');
  });

  it('does not read a podman namespace key (quay.io/org) as the whole registry', async () => {
    await writeJson(path, { auths: { 'quay.io/org': { auth: b64('alice:pw') } } });
    expect(await source().find('quay.io')).toBeUndefined();
  });

  it.each(['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'])(
    'matches the Docker Hub key %s to docker.io',
    async (key) => {
      await writeJson(path, { auths: { [key]: { auth: b64('hubuser:pw') } } });
      expect((await source().find('docker.io'))?.credential).toEqual({ username: 'hubuser', password: 'pw' });
    },
  );

  it("prefers docker's own key over other spellings of the same host", async () => {
    await writeJson(path, {
      auths: {
        'https://ghcr.io/v1/': { auth: b64('old:pw') },
        'ghcr.io': { auth: b64('new:pw') },
        'docker.io': { auth: b64('alias:pw') },
        'https://index.docker.io/v1/': { auth: b64('hub:pw') },
      },
    });
    expect((await source().find('ghcr.io'))?.credential.username).toBe('new');
    expect((await source().find('docker.io'))?.credential.username).toBe('hub');
  });

  it('reads identity and registry tokens', async () => {
    await writeJson(path, {
      auths: {
        'a.example': { auth: b64('alice:'), identitytoken: 'refresh' },
        'b.example': { registrytoken: 'bearer' },
        'c.example': { username: '<token>', password: 'refresh-c' },
      },
    });
    expect((await source().find('a.example'))?.credential).toEqual({
      username: 'alice',
      identityToken: 'refresh',
    });
    expect((await source().find('b.example'))?.credential).toEqual({ registryToken: 'bearer' });
    expect((await source().find('c.example'))?.credential).toEqual({ identityToken: 'refresh-c' });
  });

  it('finds nothing in an entry without a secret', async () => {
    await writeJson(path, { auths: { 'ghcr.io': {} } });
    expect(await source().find('ghcr.io')).toBeUndefined();
  });

  it('rejects a broken file when asked, naming it', async () => {
    await writeJson(path, { auths: { 'ghcr.io': { auth: 'not base64!' } } });
    await expect(source().find('other.example')).rejects.toMatchObject({
      code: 'ERR_INVALID_DOCKER_CONFIG',
      message: `${path}: "auths"["ghcr.io"].auth must be the base64 encoding of "user:password"; log in again to rewrite it`,
    });
  });

  describe('with credential helpers', () => {
    it('asks credHelpers[host] with the host on stdin, and names the helper as the source', async () => {
      const helper = await writeStoringHelper(box.bin, 'test', {
        'ghcr.io': { Username: 'alice', Secret: 's' },
      });
      await writeJson(path, { credHelpers: { 'ghcr.io': 'test' } });
      expect(await source().find('ghcr.io')).toEqual({
        credential: { username: 'alice', password: 's' },
        source: 'credential helper docker-credential-test',
      });
      expect(await helper.log()).toEqual(['get ghcr.io']);
    });

    it("hands Docker Hub's helper docker's server URL https://index.docker.io/v1/", async () => {
      const helper = await writeStoringHelper(box.bin, 'test', {
        'https://index.docker.io/v1/': { Username: '<token>', Secret: 'hub-refresh' },
      });
      await writeJson(path, { credsStore: 'test' });
      expect((await source().find('docker.io'))?.credential).toEqual({ identityToken: 'hub-refresh' });
      expect(await helper.log()).toEqual(['get https://index.docker.io/v1/']);
    });

    it('uses credsStore before an inline entry, as docker does', async () => {
      await writeStoringHelper(box.bin, 'store', { 'ghcr.io': { Username: 'from-helper', Secret: 's' } });
      await writeJson(path, { credsStore: 'store', auths: { 'ghcr.io': { auth: b64('inline:pw') } } });
      expect(await source().find('ghcr.io')).toEqual({
        credential: { username: 'from-helper', password: 's' },
        source: 'credential helper docker-credential-store',
      });
    });

    it('falls back to the inline entry when the helper has nothing', async () => {
      const helper = await writeStoringHelper(box.bin, 'store');
      await writeJson(path, { credsStore: 'store', auths: { 'ghcr.io': { auth: b64('inline:pw') } } });
      expect(await source().find('ghcr.io')).toEqual({
        credential: { username: 'inline', password: 'pw' },
        source: `docker config ${path}`,
      });
      expect(await helper.log()).toEqual(['get ghcr.io']);
    });

    it('prefers credHelpers[host] over credsStore', async () => {
      const store = await writeStoringHelper(box.bin, 'store', {
        'gcr.io': { Username: 'store', Secret: 's' },
      });
      await writeStoringHelper(box.bin, 'gcloud', {
        'gcr.io': { Username: 'oauth2accesstoken', Secret: 'tok' },
      });
      await writeJson(path, { credsStore: 'store', credHelpers: { 'gcr.io': 'gcloud' } });
      expect(await source().find('gcr.io')).toEqual({
        credential: { username: 'oauth2accesstoken', password: 'tok' },
        source: 'credential helper docker-credential-gcloud',
      });
      expect(await store.log()).toEqual([]);
    });

    it('reads credHelpers[host] = "" as "no helper for this host", skipping credsStore like docker', async () => {
      const store = await writeStoringHelper(box.bin, 'store', { 'ghcr.io': { Username: 'x', Secret: 'y' } });
      await writeJson(path, {
        credsStore: 'store',
        credHelpers: { 'ghcr.io': '' },
        auths: { 'ghcr.io': { auth: b64('inline:pw') } },
      });
      expect((await source().find('ghcr.io'))?.source).toBe(`docker config ${path}`);
      expect(await store.log()).toEqual([]);
    });

    it('never runs a helper when the source is created or the file read, only in find()', async () => {
      const helper = await writeStoringHelper(box.bin, 'lazy', { 'ghcr.io': { Username: 'a', Secret: 'b' } });
      await writeJson(path, {
        credHelpers: { 'ghcr.io': 'lazy' },
        auths: { 'quay.io': { auth: b64('q:pw') } },
      });
      const lazy = source();
      expect((await lazy.find('quay.io'))?.credential.username).toBe('q');
      expect(await helper.log()).toEqual([]);
      await lazy.find('ghcr.io');
      expect(await helper.log()).toEqual(['get ghcr.io']);
    });

    it('reports a failing helper with its stderr, not falling back to the inline entry', async () => {
      await writeHelper(box.bin, 'broken', '#!/bin/sh\necho "pass: gpg failed" >&2\nexit 1\n');
      await writeJson(path, { credsStore: 'broken', auths: { 'ghcr.io': { auth: b64('inline:pw') } } });
      await expect(source().find('ghcr.io')).rejects.toMatchObject({
        code: 'ERR_CREDENTIAL_HELPER',
        message: expect.stringContaining(
          'docker-credential-broken failed to get credentials for ghcr.io (exit code 1): pass: gpg failed;',
        ),
      });
    });

    it('times out a helper that hangs', async () => {
      await writeHelper(box.bin, 'hang', '#!/bin/sh\nexec sleep 5\n');
      await writeJson(path, { credHelpers: { 'ghcr.io': 'hang' } });
      await expect(source(150).find('ghcr.io')).rejects.toMatchObject({
        code: 'ERR_CREDENTIAL_HELPER',
        message: expect.stringContaining(
          'docker-credential-hang timed out: no answer to "get" for ghcr.io within 0.15 s',
        ),
      });
    });
  });
});
