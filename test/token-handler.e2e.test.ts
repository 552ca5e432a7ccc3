import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../src/server/generate-signing-key.js';
import { createTokenHandler, type TokenHandler } from '../src/server/index.js';
import { htpasswdLine } from '../src/server/testing/fixtures.js';
import { buildOciLayout } from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';
import { createSkopeo, type Skopeo } from './harness/skopeo.js';

const ALICE = { user: 'alice', password: 'alice-secret-7' };

/**
 * An application server that mounts the token endpoint under /auth next to its own routes, with
 * every piece of config given as a value: key and certificate made in memory, users as text.
 * The real registry trusts it; skopeo and regauth push and read through it.
 */
describe('createTokenHandler mounted under /auth in a node:http app, behind the real registry', () => {
  let tokens: TokenHandler;
  let app: Server;
  let appUrl: string;
  let registry: RegistryHandle;
  let skopeo: Skopeo;
  let cli: CliHome;
  let work: string;
  const issued: string[] = [];

  beforeAll(async () => {
    const pair = await generateSigningKey();
    tokens = await createTokenHandler(
      {
        basePath: '/auth',
        token: {
          issuer: 'embedded-issuer',
          service: 'embedded-registry',
          key: { pem: pair.keyPem },
          certificate: { pem: async () => pair.certPem },
        },
        users: { entries: async () => `${htpasswdLine(ALICE.user, ALICE.password)}\n` },
        acl: [{ match: { account: '/.+/', name: '${account}/*' }, actions: ['pull', 'push'] }],
      },
      {
        log: (entry) => {
          if (entry.msg === 'token') issued.push(...entry.granted);
        },
      },
    );
    app = createServer((req, res) => {
      if (tokens.handle(req, res)) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ app: true, path: req.url }));
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    work = await mkdtemp(join(tmpdir(), 'regauth-embed-'));
    // The registry reads its trust from a file; the token side never touched one.
    const bundle = join(work, 'rootcert.pem');
    await writeFile(bundle, pair.certPem);
    registry = await startRegistry({
      auth: {
        token: {
          realm: `${appUrl}${tokens.realmPath}`,
          service: 'embedded-registry',
          issuer: 'embedded-issuer',
          rootcertbundle: bundle,
        },
      },
    });
    skopeo = await createSkopeo();
    cli = await createCliHome();
  }, 60_000);

  afterAll(async () => {
    await registry?.stop();
    tokens?.close();
    await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
    await skopeo?.dispose();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("serves the app's own routes next to /auth", async () => {
    const res = await fetch(`${appUrl}/api/things?x=1`);
    expect(await res.json()).toEqual({ app: true, path: '/api/things?x=1' });
    const token = await fetch(`${appUrl}/token`);
    expect(await token.json()).toEqual({ app: true, path: '/token' });
    expect(await (await fetch(`${appUrl}/auth/healthz`)).json()).toEqual({ status: 'ok' });
  });

  it('issues the tokens skopeo pushes with, and regauth manifest reads the image back', async () => {
    const image = await buildOciLayout(join(work, 'src'), { tag: 'v1' });
    const push = await skopeo.run([
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `${ALICE.user}:${ALICE.password}`,
      `oci:${join(work, 'src')}:v1`,
      `docker://${registry.host}/alice/app:v1`,
    ]);
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    expect(issued).toContain('repository:alice/app:pull,push');

    const read = await cli.run(['manifest', `${registry.host}/alice/app:v1`], {
      env: { REGAUTH_USERNAME: ALICE.user, REGAUTH_PASSWORD: ALICE.password },
    });
    expect(read.stderr).toBe('');
    expect(read.code).toBe(0);
    expect(read.stdout.toString()).toBe(image.manifest);
  });

  it('refuses a wrong password through the mounted endpoint, so the registry read fails', async () => {
    const read = await cli.run(['manifest', `${registry.host}/alice/app:v1`], {
      env: { REGAUTH_USERNAME: ALICE.user, REGAUTH_PASSWORD: 'not-alices-password-9' },
    });
    expect(read.code).not.toBe(0);
    expect(read.stdout.toString()).toBe('');
    expect(read.stderr).toMatch(/refused the credentials for alice/);
    expect(read.stderr).not.toContain('not-alices-password-9');
  });
});
