import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { htpasswdLine } from '../src/server/testing/fixtures.js';
import { freePort, type Spawned, spawnLogged, waitFor } from './harness/processes.js';

const ROOT = resolve(import.meta.dirname, '..');
const MARKER = '### Embedding the token server';

/**
 * The README's embedding example, pasted into a project that installed regauth (a symlink to
 * this package, so `regauth/server` resolves through the exports map to dist/) and run by node.
 */
describe("the README's embedding example, pasted", () => {
  let dir: string | undefined;
  let spawned: Spawned | undefined;

  afterAll(async () => {
    await spawned?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves tokens at /auth/token and leaves every other path to the app', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const at = readme.indexOf(MARKER);
    expect(at).toBeGreaterThan(0);
    const block = /^```js\n([\s\S]*?)^```$/m.exec(readme.slice(at))?.[1] ?? '';
    expect(block).toContain('server.listen(8080');
    const port = await freePort();
    dir = await mkdtemp(join(tmpdir(), 'regauth-embed-readme-'));
    await mkdir(join(dir, 'node_modules'));
    await symlink(ROOT, join(dir, 'node_modules', 'regauth'));
    await writeFile(join(dir, 'htpasswd'), `${htpasswdLine('alice', 'alice-embed-pw-3')}\n`);
    await writeFile(join(dir, 'server.mjs'), block.replace('8080', String(port)));
    spawned = spawnLogged('bash', ['-c', `cd '${dir}' && exec node server.mjs`]);
    const url = `http://127.0.0.1:${port}`;
    await waitFor('the README embedding example', spawned, async () => {
      const res = await fetch(`${url}/auth/healthz`);
      return res.status === 200;
    });
    const token = await fetch(`${url}/auth/token?service=my-registry&scope=repository:alice/app:push`, {
      headers: { authorization: `Basic ${Buffer.from('alice:alice-embed-pw-3').toString('base64')}` },
    });
    expect(token.status).toBe(200);
    const { token: jwt } = (await token.json()) as { token: string };
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >;
    expect(claims).toMatchObject({
      iss: 'my-issuer',
      aud: 'my-registry',
      access: [{ type: 'repository', name: 'alice/app', actions: ['push'] }],
    });
    for (const path of ['/', '/token', '/auth', '/auth/other']) {
      expect(await (await fetch(`${url}${path}`)).text()).toBe('the rest of the app\n');
    }
  });
});
