import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegauthError } from '../../errors/regauth-error.js';
import { parseDockerConfig, readDockerConfig } from './read-docker-config.js';
import { b64, type Sandbox, sandbox } from './testing/fixtures.js';

const SECRET = 'hunter2-very-secret';

function invalidMessage(text: string): string {
  try {
    parseDockerConfig(text, '/home/u/.docker/config.json');
  } catch (error) {
    expect(error).toBeInstanceOf(RegauthError);
    expect((error as RegauthError).code).toBe('ERR_INVALID_DOCKER_CONFIG');
    expect((error as RegauthError).message).not.toContain(SECRET);
    expect((error as RegauthError).cause).toBeUndefined();
    return (error as RegauthError).message;
  }
  throw new Error('expected parseDockerConfig to throw');
}

describe('readDockerConfig', () => {
  let box: Sandbox;
  beforeEach(async () => {
    box = await sandbox();
  });
  afterEach(() => box.cleanup());

  it('treats a missing file (or a missing folder) as no configuration', async () => {
    expect(await readDockerConfig(join(box.dir, 'nope.json'))).toBeUndefined();
    expect(await readDockerConfig(join(box.dir, 'nope', 'config.json'))).toBeUndefined();
  });

  it('treats an empty file as an empty configuration, as docker does', async () => {
    const path = join(box.dir, 'config.json');
    await writeFile(path, '\n');
    const config = await readDockerConfig(path);
    expect(config?.auths).toEqual([]);
    expect(config?.credsStore).toBeUndefined();
  });

  it('reports a path it cannot read as a file, naming it', async () => {
    const path = join(box.dir, 'config.json');
    await mkdir(path);
    await expect(readDockerConfig(path)).rejects.toThrow(`cannot read ${path} (EISDIR)`);
  });
});

describe('parseDockerConfig', () => {
  const parse = (doc: unknown) => parseDockerConfig(JSON.stringify(doc), '/c.json');

  it('splits auth on the first colon: passwords may hold colons', () => {
    const config = parse({ auths: { 'ghcr.io': { auth: b64('alice:pa:ss:') } } });
    expect(config.auths).toEqual([{ key: 'ghcr.io', credential: { username: 'alice', password: 'pa:ss:' } }]);
  });

  it('accepts auth without base64 padding and trims trailing NULs like docker', () => {
    const unpadded = b64('bob:pw').replace(/=+$/, '');
    expect(parse({ auths: { h: { auth: unpadded } } }).auths[0]?.credential).toEqual({
      username: 'bob',
      password: 'pw',
    });
    expect(parse({ auths: { h: { auth: b64('bob:pw\0\0') } } }).auths[0]?.credential).toEqual({
      username: 'bob',
      password: 'pw',
    });
  });

  it('reads username/password fields, identitytoken and registrytoken', () => {
    const config = parse({
      auths: {
        a: { username: 'carol', password: 'pw' },
        b: { auth: b64('dave:'), identitytoken: 'refresh' },
        c: { registrytoken: 'bearer' },
        d: { username: '<token>', password: 'refresh-2' },
      },
    });
    expect(config.auths.map((e) => e.credential)).toEqual([
      { username: 'carol', password: 'pw' },
      { username: 'dave', identityToken: 'refresh' },
      { registryToken: 'bearer' },
      { identityToken: 'refresh-2' },
    ]);
  });

  it('lets auth win over username/password fields', () => {
    const config = parse({ auths: { h: { auth: b64('erin:a'), username: 'x', password: 'y' } } });
    expect(config.auths[0]?.credential).toEqual({ username: 'erin', password: 'a' });
  });

  it('reads entries without a secret (docker leaves {} when a helper holds it) as no credential', () => {
    const config = parse({ auths: { 'ghcr.io': {}, x: { email: 'a@b' }, y: { auth: '' } } });
    expect(config.auths.map((e) => e.credential)).toEqual([undefined, undefined, undefined]);
  });

  it('reads credHelpers and credsStore, and keeps the whole document', () => {
    const doc = { credsStore: 'desktop', credHelpers: { 'gcr.io': 'gcloud', 'ghcr.io': '' }, psFormat: 'x' };
    const config = parse(doc);
    expect(config.credsStore).toBe('desktop');
    expect([...config.credHelpers]).toEqual([
      ['gcr.io', 'gcloud'],
      ['ghcr.io', ''],
    ]);
    expect(config.document).toEqual(doc);
  });

  it('says where invalid JSON is, without quoting it', () => {
    const message = invalidMessage(`{\n  "auths": {"h": {"auth": "${SECRET}"}\n`);
    expect(message).toMatch(/^\/home\/u\/\.docker\/config\.json is not valid JSON at line 3 column \d+;/);
    expect(message).toContain('move it away and log in again');
  });

  it("never passes on V8's SyntaxError, which quotes the text around the mistake", () => {
    // Node 20 says: Unexpected token 'h', "{"auths": hunter2-…" is not valid JSON
    const message = invalidMessage(`{"auths": ${SECRET}}`);
    expect(message).toBe(
      '/home/u/.docker/config.json is not valid JSON; fix it, or move it away and log in again',
    );
  });

  it.each([
    [[1], 'the document must be a JSON object'],
    [{ auths: [] }, '"auths" must be an object'],
    [{ auths: { 'ghcr.io': SECRET } }, '"auths"["ghcr.io"] must be an object'],
    [{ auths: { 'ghcr.io': { auth: 42 } } }, '"auths"["ghcr.io"].auth must be a string'],
    [{ auths: { 'ghcr.io': { password: 42 } } }, '"auths"["ghcr.io"].password must be a string'],
    [{ auths: { 'ghcr.io': { auth: `${SECRET}!` } } }, '"auths"["ghcr.io"].auth must be the base64'],
    [{ auths: { 'ghcr.io': { auth: b64(SECRET) } } }, '"auths"["ghcr.io"].auth must be the base64'],
    [{ auths: { 'ghcr.io': { auth: b64(`:${SECRET}`) } } }, '"auths"["ghcr.io"].auth must be the base64'],
    [{ credHelpers: { 'gcr.io': 7 } }, '"credHelpers"["gcr.io"] must be the name of a helper'],
    [{ credHelpers: { 'gcr.io': '../../../bin/sh' } }, '"credHelpers"["gcr.io"] must be the name'],
    [{ credHelpers: [] }, '"credHelpers" must be an object'],
    [{ credsStore: true }, '"credsStore" must be the name of a helper'],
    [{ credsStore: '/usr/bin/evil' }, '"credsStore" must be the name of a helper'],
  ])('rejects %j, naming the file and key but never the secret', (doc, expected) => {
    const message = invalidMessage(JSON.stringify(doc));
    expect(message).toContain('/home/u/.docker/config.json: ');
    expect(message).toContain(expected);
  });
});
