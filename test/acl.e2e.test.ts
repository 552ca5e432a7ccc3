import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOciLayout } from './harness/oci-layout.js';
import { getWithToken } from './harness/seed-flow.js';
import { createSkopeo, type Skopeo } from './harness/skopeo.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

const USERS = {
  admin: 'admin-secret-1',
  alice: 'alice-secret-2',
  carol: 'carol-secret-3',
  dave: 'dave-secret-4',
};

const basic = (user: keyof typeof USERS) => ({
  authorization: `Basic ${Buffer.from(`${user}:${USERS[user]}`).toString('base64')}`,
});

/** The `access` claim of a token the server issues for these scopes. */
async function access(stack: TokenStack, user: keyof typeof USERS, ...scopes: string[]): Promise<unknown> {
  const url = new URL(stack.tokenServer.realm);
  url.searchParams.set('service', stack.tokenServer.service);
  for (const scope of scopes) url.searchParams.append('scope', scope);
  const res = await fetch(url, { headers: basic(user) });
  expect(res.status).toBe(200);
  const { token } = (await res.json()) as { token: string };
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).access;
}

describe('the ACL through regauth serve, behind the real registry', () => {
  let stack: TokenStack;
  let skopeo: Skopeo;
  let work: string;

  beforeAll(async () => {
    stack = await startTokenStack({
      users: USERS,
      acl: [
        // No type: repositories and the catalog, as docker_auth reads it.
        { match: { account: 'admin' }, actions: ['*'] },
        { match: { account: 'carol', ip: '127.0.0.0/8' }, actions: ['pull'] },
        { match: { account: 'dave', ip: '10.0.0.0/8' }, actions: ['pull'] },
        { match: { account: 'dave', service: 'another-registry' }, actions: ['pull'] },
        {
          match: { account: '/.+/', name: '${account}/*', service: '${service}' },
          actions: ['pull', 'push'],
        },
      ],
    });
    skopeo = await createSkopeo();
    work = await mkdtemp(join(tmpdir(), 'regauth-acl-e2e-'));
    await buildOciLayout(join(work, 'src'), { tag: 'v1' });
    const push = await skopeo.run([
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `alice:${USERS.alice}`,
      `oci:${join(work, 'src')}:v1`,
      `docker://${stack.registry.host}/alice/app:v1`,
    ]);
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
  });

  afterAll(async () => {
    await stack?.stop();
    await skopeo?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('lets { account: admin, actions: ["*"] } list the catalog, and no one whose rules name repositories', async () => {
    const url = `${stack.registry.url}/v2/_catalog`;
    const admin = await getWithToken(url, { user: 'admin', password: USERS.admin });
    expect(admin.challenge.scope).toBe('registry:catalog:*');
    expect(admin.tokenStatus).toBe(200);
    expect(admin.status).toBe(200);
    expect(JSON.parse(admin.body).repositories).toEqual(['alice/app']);

    const alice = await getWithToken(url, { user: 'alice', password: USERS.alice });
    expect(alice.tokenStatus).toBe(200);
    expect(alice.status).toBe(401);
  });

  it('matches the ip of the client: loopback for carol, and a network she is not in for dave', async () => {
    expect(await access(stack, 'carol', 'repository:alice/app:pull,push')).toEqual([
      { type: 'repository', name: 'alice/app', actions: ['pull'] },
    ]);
    expect(await access(stack, 'dave', 'repository:alice/app:pull')).toEqual([]);
    const carol = await skopeo.run([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `carol:${USERS.carol}`,
      `docker://${stack.registry.host}/alice/app:v1`,
    ]);
    expect(carol.code).toBe(0);
    const dave = await skopeo.run([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `dave:${USERS.dave}`,
      `docker://${stack.registry.host}/alice/app:v1`,
    ]);
    expect(dave.code).not.toBe(0);
  });

  it('matches the service, and fills in ${service} and ${account}', async () => {
    expect(await access(stack, 'dave', 'repository:dave/x:pull,push')).toEqual([
      { type: 'repository', name: 'dave/x', actions: ['pull', 'push'] },
    ]);
    expect(await access(stack, 'alice', 'repository:dave/x:pull')).toEqual([]);
  });
});
