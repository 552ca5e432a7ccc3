import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eraseCredential } from './erase-credential.js';
import { b64, type Sandbox, sandbox, writeJson, writeStoringHelper } from './testing/fixtures.js';

describe('eraseCredential', () => {
  let box: Sandbox;
  let path: string;
  beforeEach(async () => {
    box = await sandbox();
    await mkdir(join(box.dir, 'docker'));
    path = join(box.dir, 'docker', 'config.json');
  });
  afterEach(() => box.cleanup());

  const options = () => ({ path, env: box.env });

  it('removes every key that names the host and keeps the rest of the file', async () => {
    await writeJson(path, {
      auths: {
        'ghcr.io': { auth: b64('a:b') },
        'https://ghcr.io': { auth: b64('c:d') },
        'http://ghcr.io/v1/': { auth: b64('e:f') },
        'ghcr.io:5000': { auth: b64('g:h') },
        'registry.ghcr.io': { auth: b64('i:j') },
      },
      psFormat: 'x',
    });
    expect(await eraseCredential('ghcr.io', options())).toBe(true);
    expect(await readFile(path, 'utf8')).toBe(
      `{\n\t"auths": {\n\t\t"ghcr.io:5000": {\n\t\t\t"auth": "${b64('g:h')}"\n\t\t},\n` +
        `\t\t"registry.ghcr.io": {\n\t\t\t"auth": "${b64('i:j')}"\n\t\t}\n\t},\n\t"psFormat": "x"\n}\n`,
    );
    expect(await readdir(join(box.dir, 'docker'))).toEqual(['config.json']);
    expect(await eraseCredential('ghcr.io', options())).toBe(false);
  });

  it('removes every Docker Hub spelling for docker.io', async () => {
    await writeJson(path, {
      auths: { 'https://index.docker.io/v1/': { auth: b64('a:b') }, 'docker.io': { auth: b64('c:d') } },
    });
    expect(await eraseCredential('docker.io', options())).toBe(true);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ auths: {} });
  });

  it('erases from the helper with the same server URL that store used, and the marker entry', async () => {
    const helper = await writeStoringHelper(box.bin, 'test', {
      'https://index.docker.io/v1/': { Username: 'hub', Secret: 'pw' },
    });
    await writeJson(path, { credsStore: 'test', auths: { 'https://index.docker.io/v1/': {} } });
    expect(await eraseCredential('docker.io', options())).toBe(true);
    expect(await helper.state()).toEqual({});
    expect(await helper.log()).toEqual(['erase https://index.docker.io/v1/']);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ credsStore: 'test', auths: {} });
  });

  it('reports false when neither the helper nor the file had anything', async () => {
    await writeStoringHelper(box.bin, 'test');
    await writeJson(path, { credsStore: 'test' });
    expect(await eraseCredential('ghcr.io', options())).toBe(false);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ credsStore: 'test' });
  });

  it('leaves a missing file missing', async () => {
    expect(await eraseCredential('ghcr.io', options())).toBe(false);
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
