import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResourceScope } from '../scope/parse-scope.js';
import { processEnded } from '../testing/process-ended.js';
import { createExtAuthorizer, DEFAULT_EXT_AUTHZ_TIMEOUT_S, parseExtAuthzConfig } from './ext-authorizer.js';

const CONTEXT = { service: 'my-registry', address: '192.0.2.5' };
const repo = (name: string, ...actions: string[]): ResourceScope => ({ type: 'repository', name, actions });

describe('createExtAuthorizer', () => {
  let dir: string;
  const script = async (name: string, body: string): Promise<string> => {
    const file = join(dir, name);
    await writeFile(file, `#!/bin/sh\n${body}\n`);
    await chmod(file, 0o755);
    return file;
  };
  const authorizer = (command: string, timeoutSeconds = DEFAULT_EXT_AUTHZ_TIMEOUT_S) =>
    createExtAuthorizer({ command, args: [], timeoutSeconds });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regauth-ext-authz-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("runs the program with PATH only, never the server's environment, and kills its whole group on timeout", async () => {
    const seen = join(dir, 'env.txt');
    const grandchild = join(dir, 'grandchild.pid');
    process.env.REGAUTH_EXT_AUTHZ_SECRET = 'server-secret-value';
    try {
      const program = await script('env.sh', `env > "${seen}"\nexit 0`);
      await authorizer(program).authorize(undefined, [repo('a/app', 'pull')], CONTEXT);
      const env = await readFile(seen, 'utf8');
      expect(env).toContain('PATH=');
      expect(env).not.toContain('server-secret-value');
    } finally {
      delete process.env.REGAUTH_EXT_AUTHZ_SECRET;
    }
    // A program that starts a helper and hangs: the timeout ends both.
    const hung = await script('hang.sh', `sleep 30 &\necho $! > "${grandchild}"\nwait`);
    await expect(
      authorizer(hung, 1).authorize(undefined, [repo('a/app', 'pull')], CONTEXT),
    ).rejects.toMatchObject({ code: 'ERR_AUTH_BACKEND' });
    expect(await processEnded(Number((await readFile(grandchild, 'utf8')).trim()))).toBe(true);
  });

  it("hands the program docker_auth's AuthRequestInfo on stdin, once per resource", async () => {
    const log = join(dir, 'requests.log');
    const program = await script('record.sh', `cat >> "${log}"\nexit 0`);
    const granted = await authorizer(program).authorize(
      { name: 'alice', labels: { group: ['ci'] } },
      [repo('a/app', 'pull'), repo('a/app', 'push'), { type: 'registry', name: 'catalog', actions: ['*'] }],
      CONTEXT,
    );
    expect(granted).toEqual([
      repo('a/app', 'pull', 'push'),
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      {
        Account: 'alice',
        Type: 'repository',
        Name: 'a/app',
        Service: 'my-registry',
        IP: '192.0.2.5',
        Actions: ['pull', 'push'],
        Labels: { group: ['ci'] },
      },
      {
        Account: 'alice',
        Type: 'registry',
        Name: 'catalog',
        Service: 'my-registry',
        IP: '192.0.2.5',
        Actions: ['*'],
        Labels: { group: ['ci'] },
      },
    ]);
  });

  it('grants on exit 0 and denies on exit 1, per resource, from what the program read', async () => {
    // Grants only repositories under the account's name; reads the JSON like a real program would.
    const program = await script(
      'namespace.sh',
      `read -r j\ncase "$j" in *'"Account":"alice"'*'"Name":"alice/'*) exit 0;; esac\nexit 1`,
    );
    const granted = await authorizer(program).authorize(
      { name: 'alice', labels: {} },
      [repo('alice/app', 'pull', 'push'), repo('bob/app', 'pull')],
      CONTEXT,
    );
    expect(granted).toEqual([repo('alice/app', 'pull', 'push')]);
    expect(await authorizer(program).authorize(undefined, [repo('alice/app', 'pull')], CONTEXT)).toEqual([]);
  });

  it('fails the request on any other exit code, a signal or a missing program, never granting', async () => {
    const two = await script('two.sh', 'exit 2');
    await expect(authorizer(two).authorize(undefined, [repo('x', 'pull')], CONTEXT)).rejects.toMatchObject({
      code: 'ERR_AUTH_BACKEND',
      message: `the ext_authz program ${two} exited with 2; 0 grants, 1 denies`,
    });
    const killed = await script('killed.sh', 'kill -9 $$');
    await expect(authorizer(killed).authorize(undefined, [repo('x', 'pull')], CONTEXT)).rejects.toThrow(
      /was ended by SIGKILL/,
    );
    await expect(
      authorizer(join(dir, 'missing')).authorize(undefined, [repo('x', 'pull')], CONTEXT),
    ).rejects.toThrow(/could not run: spawn .*ENOENT/);
  });

  it('kills a program that runs past the timeout and fails the request', async () => {
    const pidFile = join(dir, 'slow.pid');
    const slow = await script('slow.sh', `echo $$ > "${pidFile}"\nexec sleep 60`);
    await expect(authorizer(slow, 0.3).authorize(undefined, [repo('x', 'pull')], CONTEXT)).rejects.toThrow(
      /took longer than 0.3 s; it was stopped/,
    );
    const pid = Number(await readFile(pidFile, 'utf8'));
    // The request failed only once the program was gone: signal 0 finds no such process.
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('ignores what the program prints, however much, and a program that does not read stdin', async () => {
    const noisy = await script('noisy.sh', 'head -c 5000000 /dev/zero\nexit 0');
    expect(
      await authorizer(noisy).authorize({ name: 'a', labels: {} }, [repo('x', 'pull', 'push')], CONTEXT),
    ).toEqual([repo('x', 'pull', 'push')]);
  });
});

describe('parseExtAuthzConfig', () => {
  const fail = (path: string, why: string): never => {
    throw new Error(`${path}: ${why}`);
  };

  it('reads command, args and timeout, with the default timeout', () => {
    expect(parseExtAuthzConfig({ command: '/usr/local/bin/authz' }, 'ext_authz', fail)).toEqual({
      command: '/usr/local/bin/authz',
      args: [],
      timeoutSeconds: DEFAULT_EXT_AUTHZ_TIMEOUT_S,
    });
    expect(
      parseExtAuthzConfig({ command: 'authz', args: ['--x'], timeout_seconds: 2 }, 'ext_authz', fail),
    ).toEqual({ command: 'authz', args: ['--x'], timeoutSeconds: 2 });
  });

  it('names the key path of what is wrong', () => {
    expect(() => parseExtAuthzConfig({}, 'authz[0].ext_authz', fail)).toThrow(
      'authz[0].ext_authz.command: must be a program to run',
    );
    expect(() => parseExtAuthzConfig({ command: 'x', args: 'y' }, 'ext_authz', fail)).toThrow(
      'ext_authz.args: must be a list of strings',
    );
    expect(() => parseExtAuthzConfig({ command: 'x', timeout_seconds: 0 }, 'ext_authz', fail)).toThrow(
      'ext_authz.timeout_seconds',
    );
    expect(() => parseExtAuthzConfig({ command: 'x', cmd: 'y' }, 'ext_authz', fail)).toThrow(
      'ext_authz.cmd: unknown key',
    );
  });
});
