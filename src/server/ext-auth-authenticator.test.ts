import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRegauthError } from '../errors/regauth-error.js';
import { processEnded } from '../testing/process-ended.js';
import type { Authenticator } from './authenticator.js';
import { createExtAuthAuthenticator, EXT_AUTH_MAX_OUTPUT_BYTES } from './ext-auth-authenticator.js';

const SECRET = 'pa55-Word-never-logged';
let dir: string;

/** Writes an executable shell script the test runs as the external program. */
async function program(name: string, body: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

const ask = (authenticator: Authenticator, user: string, password = SECRET) =>
  authenticator.authenticate({ user, password, address: '127.0.0.1' });

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isRegauthError(error) && error.code).toBe('ERR_AUTHENTICATOR');
  expect((error as Error).message).not.toContain(SECRET);
  return error as Error;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regauth-ext-auth-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('createExtAuthAuthenticator (docker_auth ext_auth contract)', () => {
  it('reads "user password" on one line and maps exit 0, 1 and 2 to accepted, refused, unknown', async () => {
    const file = await program(
      'decide.sh',
      `IFS= read -r line
user=\${line%% *}
pass=\${line#* }
[ "$pass" = "${SECRET}" ] || exit 1
case "$user" in
  alice) printf '{"group":["ci-builders","admins"],"team":[]}' ; exit 0 ;;
  bob) exit 0 ;;
  carol) exit 1 ;;
  *) exit 2 ;;
esac`,
    );
    const authenticator = createExtAuthAuthenticator({ command: [file] });
    expect(authenticator.kind).toBe('ext_auth');
    expect(await ask(authenticator, 'alice')).toEqual({
      outcome: 'accepted',
      identity: { name: 'alice', labels: { group: ['ci-builders', 'admins'], team: [] } },
    });
    expect(await ask(authenticator, 'bob')).toEqual({
      outcome: 'accepted',
      identity: { name: 'bob', labels: {} },
    });
    expect(await ask(authenticator, 'alice', 'wrong')).toEqual({ outcome: 'refused' });
    expect(await ask(authenticator, 'carol')).toEqual({ outcome: 'refused' });
    expect(await ask(authenticator, 'dave')).toEqual({ outcome: 'unknown' });
  });

  it('passes arguments without a shell, and keeps a password with spaces whole', async () => {
    const file = await program(
      'args.sh',
      `IFS= read -r line
[ "$1" = '$HOME; exit 0' ] || exit 3
[ "\${line#* }" = 'a b  c' ] && exit 0
exit 1`,
    );
    const authenticator = createExtAuthAuthenticator({ command: [file, '$HOME; exit 0'] });
    expect((await ask(authenticator, 'alice', 'a b  c')).outcome).toBe('accepted');
  });

  it('gives the program only PATH and the configured env, never the server environment', async () => {
    process.env.REGAUTH_TEST_SERVER_SECRET = 'server-secret';
    try {
      const file = await program(
        'env.sh',
        `[ -z "$REGAUTH_TEST_SERVER_SECRET" ] || exit 1
[ "$REALM" = ci ] || exit 1
exit 0`,
      );
      const authenticator = createExtAuthAuthenticator({ command: [file], env: { REALM: 'ci' } });
      expect((await ask(authenticator, 'alice')).outcome).toBe('accepted');
    } finally {
      delete process.env.REGAUTH_TEST_SERVER_SECRET;
    }
  });

  it('never runs the program for a name or password its one line cannot carry', async () => {
    const marker = join(dir, 'ran');
    const file = await program('marker.sh', `touch '${marker}'; exit 0`);
    const authenticator = createExtAuthAuthenticator({ command: [file] });
    for (const [user, password] of [
      ['alice admin', SECRET],
      ['alice/x', SECRET],
      ['alice\u0007', SECRET],
      ['alice', `${SECRET}\nbob ${SECRET}`],
    ] as const) {
      expect(await ask(authenticator, user, password)).toEqual({ outcome: 'unknown' });
    }
    await expect(readFile(marker)).rejects.toThrow();
  });

  it('kills the whole process group when the program outlives its timeout', async () => {
    const pidFile = join(dir, 'child.pid');
    const file = await program('hang.sh', `sleep 60 & echo $! > '${pidFile}'\nwait`);
    const authenticator = createExtAuthAuthenticator({ command: [file], timeoutSeconds: 1 });
    const error = await failureOf(ask(authenticator, 'alice'));
    expect(error.message).toMatch(/no answer within 1 s/);
    // The background sleep was in the group: it must be gone too.
    expect(await processEnded(Number(await readFile(pidFile, 'utf8')))).toBe(true);
  });

  it('kills a program that floods its output, past the cap', async () => {
    const file = await program(
      'flood.sh',
      'while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done',
    );
    const authenticator = createExtAuthAuthenticator({ command: [file], timeoutSeconds: 20 });
    const error = await failureOf(ask(authenticator, 'alice'));
    expect(error.message).toContain(`more than ${EXT_AUTH_MAX_OUTPUT_BYTES} bytes`);
  });

  it('never puts the password into an error when the program echoes its input', async () => {
    const accepts = await program('echo-accept.sh', 'cat; exit 0');
    expect(
      (await failureOf(ask(createExtAuthAuthenticator({ command: [accepts] }), 'alice'))).message,
    ).toMatch(/not a JSON object of labels/);
    const crashes = await program('echo-crash.sh', 'cat; cat >&2 <<EOF\nstderr\nEOF\nexit 3');
    expect(
      (await failureOf(ask(createExtAuthAuthenticator({ command: [crashes] }), 'alice'))).message,
    ).toMatch(/exited with code 3/);
  });

  it.each([
    ['labels that are not string lists', `printf '{"group":"admins"}'`, /label "group"/],
    ['a JSON array', `printf '["admins"]'`, /not a JSON object/],
    ['a signal', 'kill -9 $$', /killed by SIGKILL/],
  ])('answers %s with a failure, never an acceptance', async (_name, body, message) => {
    const file = await program(`bad-${body.length}.sh`, `cat >/dev/null\n${body}`);
    expect((await failureOf(ask(createExtAuthAuthenticator({ command: [file] }), 'alice'))).message).toMatch(
      message,
    );
  });

  it('fails, naming the program, when it cannot be started', async () => {
    const error = await failureOf(
      ask(createExtAuthAuthenticator({ command: [join(dir, 'missing')] }), 'alice'),
    );
    expect(error.message).toMatch(/missing: could not be started \(ENOENT\)/);
  });
});
