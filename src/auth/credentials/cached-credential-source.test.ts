import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachedCredentialSource } from './cached-credential-source.js';
import type { CredentialSource } from './credential.js';
import { dockerConfig } from './docker-config.js';
import { type Sandbox, sandbox, writeHelper, writeJson, writeStoringHelper } from './testing/fixtures.js';

describe('cachedCredentialSource', () => {
  let box: Sandbox;
  beforeEach(async () => {
    box = await sandbox();
  });
  afterEach(() => box.cleanup());

  it('runs a credential helper once per registry however often and however concurrently it is asked', async () => {
    const helper = await writeStoringHelper(box.bin, 'test', {
      'ghcr.io': { Username: 'alice', Secret: 'pw' },
      'https://index.docker.io/v1/': { Username: 'hub', Secret: 'pw' },
    });
    const path = join(box.dir, 'config.json');
    await writeJson(path, { credsStore: 'test' });
    const source = cachedCredentialSource(dockerConfig({ path, env: box.env }));

    const first = await source.find('ghcr.io');
    const second = await source.find('ghcr.io');
    expect(second).toBe(first);
    expect(first?.credential).toEqual({ username: 'alice', password: 'pw' });
    const hub = await Promise.all([
      source.find('docker.io'),
      source.find('index.docker.io'),
      source.find('docker.io'),
    ]);
    expect(hub.map((f) => f?.credential.username)).toEqual(['hub', 'hub', 'hub']);
    expect(await helper.log()).toEqual(['get ghcr.io', 'get https://index.docker.io/v1/']);
  });

  it('runs no helper when find() is never called', async () => {
    const helper = await writeStoringHelper(box.bin, 'test', { 'ghcr.io': { Username: 'a', Secret: 'b' } });
    const path = join(box.dir, 'config.json');
    await writeJson(path, { credsStore: 'test' });
    cachedCredentialSource(dockerConfig({ path, env: box.env }));
    expect(await helper.log()).toEqual([]);
  });

  it('remembers a failure, so a helper that timed out is not asked again', async () => {
    const log = join(box.dir, 'calls.log');
    await writeHelper(box.bin, 'hang', `#!/bin/sh\necho call >> ${log}\nexec sleep 5\n`);
    const path = join(box.dir, 'config.json');
    await writeJson(path, { credsStore: 'hang' });
    const source = cachedCredentialSource(dockerConfig({ path, env: box.env, helperTimeoutMs: 100 }));
    await expect(source.find('ghcr.io')).rejects.toMatchObject({ code: 'ERR_CREDENTIAL_HELPER' });
    await expect(source.find('ghcr.io')).rejects.toMatchObject({ code: 'ERR_CREDENTIAL_HELPER' });
    expect(await readFile(log, 'utf8')).toBe('call\n');
  });

  it('asks again after forget()', async () => {
    let calls = 0;
    const counting: CredentialSource = {
      find: async () => {
        calls += 1;
        return { credential: { username: `u${calls}`, password: 'p' }, source: 'count' };
      },
    };
    const source = cachedCredentialSource(counting);
    await source.find('a.example');
    await source.find('b.example');
    source.forget('a.example');
    expect((await source.find('a.example'))?.credential.username).toBe('u3');
    expect((await source.find('b.example'))?.credential.username).toBe('u2');
    source.forget();
    expect((await source.find('b.example'))?.credential.username).toBe('u4');
  });
});
