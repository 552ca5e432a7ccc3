import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOciLayout } from './harness/oci-layout.js';
import { createSkopeo, type Skopeo } from './harness/skopeo.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

/** In the htpasswd file, asked after the program: dave's entry must never be reached. */
const FILE_USERS = { dave: 'dave-file-pw', erin: 'erin-file-pw' };

/**
 * docker_auth's ext_auth contract (docs/Backend_ExtAuth.md): `user password` on stdin; exit 0
 * accepts (labels as JSON on stdout), 1 refuses, 2 hands the user to the next authenticator.
 */
const PROGRAM = `#!/bin/sh
IFS= read -r line
user=\${line%% *}
pass=\${line#* }
case "$user" in
  carol) [ "$pass" = "carol-program-pw" ] && { printf '{"group":["builders"]}'; exit 0; }; exit 1 ;;
  dave) exit 1 ;;
  *) exit 2 ;;
esac
`;

describe('regauth serve with authn: [ext_auth, htpasswd] behind the real registry', () => {
  let stack: TokenStack;
  let skopeo: Skopeo;
  let work: string;
  let host: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regauth-ext-auth-'));
    const program = join(work, 'check-login.sh');
    await writeFile(program, PROGRAM);
    await chmod(program, 0o755);
    // The harness writes the users' htpasswd file next to serve.yml: a relative path names it.
    stack = await startTokenStack({
      users: FILE_USERS,
      authn: [
        { ext_auth: { command: [program], timeout_seconds: 10 } },
        { htpasswd: { file: 'users.htpasswd' } },
      ],
    });
    skopeo = await createSkopeo();
    host = stack.registry.host;
    await buildOciLayout(join(work, 'image'), { tag: 'v1' });
  });

  afterAll(async () => {
    await stack?.stop();
    await skopeo?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const push = (user: string, password: string, repository: string) =>
    skopeo.push(join(work, 'image'), 'v1', `${host}/${repository}:v1`, `${user}:${password}`);

  it('lets a user the program accepts push, with the labels it printed in the log', async () => {
    const result = await push('carol', 'carol-program-pw', 'carol/app');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const entries = await stack.tokenServer.waitForLog(
      (e) => e.msg === 'token' && e.account === 'carol' && e.outcome === 'issued',
    );
    const issued = entries.filter(
      (e) => e.msg === 'token' && e.account === 'carol' && e.outcome === 'issued',
    );
    expect(issued.some((e) => (e.granted as string[]).includes('repository:carol/app:pull,push'))).toBe(true);
    expect(issued[0]).toMatchObject({ authn: 'ext_auth', labels: ['group'] });
  });

  it('refuses a user the program denies, though the next authenticator would accept the password', async () => {
    const result = await push('dave', FILE_USERS.dave, 'dave/app');
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/unauthorized|authentication required|denied/i);
    const wrong = await push('carol', 'not-carols-pw', 'carol/app');
    expect(wrong.code).not.toBe(0);
  });

  it('hands a user the program does not know (exit 2) to the htpasswd file', async () => {
    const result = await push('erin', FILE_USERS.erin, 'erin/app');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const entries = await stack.tokenServer.waitForLog((e) => e.msg === 'token' && e.account === 'erin');
    expect(
      entries.find((e) => e.msg === 'token' && e.account === 'erin' && e.outcome === 'issued'),
    ).toMatchObject({
      authn: 'htpasswd',
    });
  });

  it('never writes a password to its log', () => {
    const output = stack.tokenServer.output();
    for (const secret of ['carol-program-pw', 'not-carols-pw', FILE_USERS.dave, FILE_USERS.erin]) {
      expect(output).not.toContain(secret);
    }
  });
});
