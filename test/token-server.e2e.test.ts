import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOciLayout } from './harness/oci-layout.js';
import { getWithToken } from './harness/seed-flow.js';
import { createSkopeo, type Skopeo } from './harness/skopeo.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

const USERS = { admin: 'admin-secret-1', alice: 'alice-secret-2', bob: 'bob-secret-3' };

describe.each(['ES256', 'RS256'] as const)('regauth serve (%s) behind the real registry', (algorithm) => {
  let stack: TokenStack;
  let skopeo: Skopeo;
  let work: string;
  let host: string;

  beforeAll(async () => {
    stack = await startTokenStack({ users: USERS, algorithm });
    skopeo = await createSkopeo();
    work = await mkdtemp(join(tmpdir(), 'regauth-e2e-'));
    host = stack.registry.host;
  });

  afterAll(async () => {
    await stack?.stop();
    await skopeo?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('lets a user with push rights push an image with skopeo and pull it back unchanged', async () => {
    const image = await buildOciLayout(join(work, 'src-alice'), { tag: 'v1' });
    const push = await skopeo.run([
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `alice:${USERS.alice}`,
      `oci:${join(work, 'src-alice')}:v1`,
      `docker://${host}/alice/app:v1`,
    ]);
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);

    const raw = await skopeo.run([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `alice:${USERS.alice}`,
      `docker://${host}/alice/app:v1`,
    ]);
    expect(raw.code).toBe(0);
    expect(raw.stdout).toBe(image.manifest);

    const pull = await skopeo.run([
      'copy',
      '--src-tls-verify=false',
      '--src-creds',
      `alice:${USERS.alice}`,
      `docker://${host}/alice/app:v1`,
      `oci:${join(work, 'pulled')}:v1`,
    ]);
    expect(pull.code).toBe(0);
    const index = JSON.parse(await readFile(join(work, 'pulled', 'index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(image.manifestDigest);

    const issued = (
      await stack.tokenServer.waitForLog((e) => e.msg === 'token' && e.account === 'alice')
    ).filter((e) => e.msg === 'token' && e.account === 'alice');
    expect(issued.some((e) => (e.granted as string[]).includes('repository:alice/app:pull,push'))).toBe(true);
  });

  it("refuses a user without rights: bob can neither push to nor read alice's repository", async () => {
    await buildOciLayout(join(work, 'src-bob'), { tag: 'v1', layers: [{ 'bob.txt': 'bob\n' }] });
    const push = await skopeo.run([
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `bob:${USERS.bob}`,
      `oci:${join(work, 'src-bob')}:v1`,
      `docker://${host}/alice/app:bob`,
    ]);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/denied|unauthorized/i);

    const read = await skopeo.run([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `bob:${USERS.bob}`,
      `docker://${host}/alice/app:v1`,
    ]);
    expect(read.code).not.toBe(0);
    const bobLines = (
      await stack.tokenServer.waitForLog((e) => e.msg === 'token' && e.account === 'bob')
    ).filter((e) => e.msg === 'token' && e.account === 'bob');
    expect(bobLines.length).toBeGreaterThan(0);
    // bob authenticated fine; he was simply granted nothing on alice/app.
    for (const line of bobLines) {
      expect(line.status).toBe(200);
      expect(line.granted).toEqual([]);
    }
  });

  it('refuses a wrong password with 401 instead of issuing an anonymous token', async () => {
    const res = await skopeo.run([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      'alice:not-her-password',
      `docker://${host}/alice/app:v1`,
    ]);
    expect(res.code).not.toBe(0);
    const isFailure = (e: Record<string, unknown>) =>
      e.msg === 'token' && e.account === 'alice' && e.outcome === 'unauthorized';
    const failures = (await stack.tokenServer.waitForLog(isFailure)).filter(isFailure);
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((e) => e.status === 401)).toBe(true);
  });

  it('serves anonymous pulls for public/** only', async () => {
    const image = await buildOciLayout(join(work, 'src-public'), {
      tag: 'v1',
      layers: [{ 'p.txt': 'public\n' }],
    });
    const push = await skopeo.run([
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `admin:${USERS.admin}`,
      `oci:${join(work, 'src-public')}:v1`,
      `docker://${host}/public/base:v1`,
    ]);
    expect(push.code).toBe(0);

    const anonymous = await skopeo.run([
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${host}/public/base:v1`,
    ]);
    expect(anonymous.code).toBe(0);
    expect(anonymous.stdout).toBe(image.manifest);

    const anonymousPrivate = await skopeo.run([
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${host}/alice/app:v1`,
    ]);
    expect(anonymousPrivate.code).not.toBe(0);
    expect(anonymousPrivate.stderr).toMatch(/denied|unauthorized|authentication required/i);

    const anonymousPush = await skopeo.run([
      'copy',
      '--dest-tls-verify=false',
      `oci:${join(work, 'src-public')}:v1`,
      `docker://${host}/public/base:anon`,
    ]);
    expect(anonymousPush.code).not.toBe(0);
  });

  it('lets skopeo login succeed with the right password and fail with a wrong one', async () => {
    const bad = await skopeo.run(
      ['login', '--tls-verify=false', '--authfile', skopeo.authfile, '-u', 'alice', '--password-stdin', host],
      'wrong-password\n',
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/401|unauthorized|invalid/i);

    const good = await skopeo.run(
      ['login', '--tls-verify=false', '--authfile', skopeo.authfile, '-u', 'alice', '--password-stdin', host],
      `${USERS.alice}\n`,
    );
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/Login Succeeded/);
    const auth = JSON.parse(await readFile(skopeo.authfile, 'utf8'));
    expect(Buffer.from(auth.auths[host].auth, 'base64').toString()).toBe(`alice:${USERS.alice}`);

    // The stored login is what later commands use.
    const read = await skopeo.run([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--authfile',
      skopeo.authfile,
      `docker://${host}/alice/app:v1`,
    ]);
    expect(read.code).toBe(0);
  });

  it('lists the catalog for the account that may, and nothing for others', async () => {
    const url = `${stack.registry.url}/v2/_catalog`;
    const admin = await getWithToken(url, { user: 'admin', password: USERS.admin });
    expect(admin.challenge.scope).toBe('registry:catalog:*');
    expect(admin.status).toBe(200);
    expect(JSON.parse(admin.body).repositories).toEqual(expect.arrayContaining(['alice/app', 'public/base']));

    const alice = await getWithToken(url, { user: 'alice', password: USERS.alice });
    expect(alice.tokenStatus).toBe(200);
    expect(alice.status).toBe(401);
  });

  it('never writes a password into its log', () => {
    const output = stack.tokenServer.output();
    expect(output).toContain('"msg":"token"');
    for (const password of Object.values(USERS)) expect(output).not.toContain(password);
    expect(output).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
  });
});
