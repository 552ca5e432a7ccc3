import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOciLayout } from './harness/oci-layout.js';
import { freePort } from './harness/processes.js';
import { createSkopeo, type Skopeo } from './harness/skopeo.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

/** What the program prints: the log must never carry it (it may be what the program used to decide). */
const PROGRAM_SECRET = 'program-output-secret-7f3a';

/**
 * docker_auth's ext_authz contract (auth_server/authz/ext_authz.go): AuthRequestInfo as JSON on
 * stdin; exit 0 allows, 1 denies, anything else is an error. It records every request to the
 * file named by its first argument (its environment holds PATH only).
 */
const AUTHZ_PROGRAM = `#!/bin/sh
input=$(cat)
printf '%s\\n' "$input" >> "$1"
case "$input" in
  *'"Name":"slow/'*) sleep 30 ;;
  *'"Name":"crash/'*) echo "${PROGRAM_SECRET}"; echo "${PROGRAM_SECRET}" >&2; kill -SEGV $$ ;;
  *'"Name":"garbage/'*) echo "{ not json ${PROGRAM_SECRET}"; exit 7 ;;
  *'"Name":"allowed/'*) exit 0 ;;
  *'"Name":"builders/'*) case "$input" in *'"group":["builders"]'*) exit 0 ;; esac; exit 1 ;;
  *) exit 1 ;;
esac
`;

/** docker_auth's ext_auth: carol is accepted with a group label; everyone else goes to htpasswd. */
const AUTHN_PROGRAM = `#!/bin/sh
IFS= read -r line
user=\${line%% *}
pass=\${line#* }
case "$user" in
  carol) [ "$pass" = "carol-pw" ] && { printf '{"group":["builders"]}'; exit 0; }; exit 1 ;;
  *) exit 2 ;;
esac
`;

describe('regauth serve with acl and ext_authz behind the real registry', () => {
  let stack: TokenStack;
  let skopeo: Skopeo;
  let work: string;
  let requestsLog: string;
  let metricsPort: number;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regauth-ext-authz-'));
    const authz = join(work, 'authz.sh');
    const authn = join(work, 'authn.sh');
    requestsLog = join(work, 'requests.log');
    await writeFile(authz, AUTHZ_PROGRAM);
    await writeFile(authn, AUTHN_PROGRAM);
    await chmod(authz, 0o755);
    await chmod(authn, 0o755);
    metricsPort = await freePort();
    stack = await startTokenStack({
      users: { alice: 'alice-pw' },
      authn: [
        { ext_auth: { command: [authn], timeout_seconds: 10 } },
        { htpasswd: { file: 'users.htpasswd' } },
      ],
      // Rules first, as in docker_auth: a rule that matches decides, even one granting nothing.
      acl: [
        { match: { name: 'acl-open/*' }, actions: ['pull', 'push'] },
        { match: { name: 'allowed/frozen' }, actions: [] },
      ],
      extra: {
        ext_authz: { command: authz, args: [requestsLog], timeout_seconds: 2 },
        metrics: { enabled: true, listen: `127.0.0.1:${metricsPort}` },
      },
    });
    skopeo = await createSkopeo();
    await buildOciLayout(join(work, 'image'), { tag: 'v1' });
  });

  afterAll(async () => {
    await stack?.stop();
    await skopeo?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const token = async (user: string, password: string, ...scopes: string[]) => {
    const url = new URL(stack.tokenServer.realm);
    url.searchParams.set('service', stack.tokenServer.service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const res = await fetch(url, {
      headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
    });
    const body = (await res.json()) as { token?: string };
    const access =
      body.token === undefined
        ? undefined
        : (decodeJwt(body.token).access as { type: string; name: string; actions: string[] }[]);
    return { status: res.status, headers: res.headers, access };
  };
  const requests = async () =>
    (await readFile(requestsLog, 'utf8').catch(() => ''))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('grants and denies per repository as the program exits, after the ACL rules that match', async () => {
    const res = await token(
      'alice',
      'alice-pw',
      'repository:allowed/app:pull,push',
      'repository:other/app:pull',
      'repository:acl-open/app:pull,push,delete',
      'repository:allowed/frozen:pull',
    );
    expect(res.status).toBe(200);
    expect(res.access).toEqual([
      { type: 'repository', name: 'allowed/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'acl-open/app', actions: ['pull', 'push'] },
    ]);
    // The program was asked only about what no rule matched, in docker_auth's AuthRequestInfo.
    expect(await requests()).toEqual([
      {
        Account: 'alice',
        Type: 'repository',
        Name: 'allowed/app',
        Service: stack.tokenServer.service,
        IP: '127.0.0.1',
        Actions: ['pull', 'push'],
        Labels: {},
      },
      {
        Account: 'alice',
        Type: 'repository',
        Name: 'other/app',
        Service: stack.tokenServer.service,
        IP: '127.0.0.1',
        Actions: ['pull'],
        Labels: {},
      },
    ]);
  });

  it("hands the program the authenticator's labels", async () => {
    const carol = await token('carol', 'carol-pw', 'repository:builders/app:pull,push');
    expect(carol.access).toEqual([{ type: 'repository', name: 'builders/app', actions: ['pull', 'push'] }]);
    const alice = await token('alice', 'alice-pw', 'repository:builders/app:pull,push');
    expect(alice.status).toBe(200);
    expect(alice.access).toEqual([]);
    const seen = (await requests()).filter((r) => r.Name === 'builders/app');
    expect(seen.map((r) => [r.Account, r.Labels])).toEqual([
      ['carol', { group: ['builders'] }],
      ['alice', {}],
    ]);
  });

  it('answers 503, never a grant, when the program times out, crashes or exits with another code; its output is in no log', async () => {
    for (const repository of ['slow/app', 'crash/app', 'garbage/app']) {
      const res = await token(
        'alice',
        'alice-pw',
        'repository:allowed/app:pull',
        `repository:${repository}:pull`,
      );
      expect(res.status, repository).toBe(503);
      expect(res.access).toBeUndefined();
      expect(res.headers.get('retry-after')).toBe('5');
    }
    const entries = await stack.tokenServer.waitForLog(
      (e) => e.msg === 'token' && e.outcome === 'unavailable' && String(e.reason).includes('exited with 7'),
    );
    const failed = entries.filter((e) => e.msg === 'token' && e.outcome === 'unavailable');
    expect(failed.map((e) => e.reason)).toEqual([
      expect.stringMatching(
        /^authorizer failed: the ext_authz program .*authz\.sh took longer than 2 s; it was stopped$/,
      ),
      expect.stringMatching(/^authorizer failed: the ext_authz program .*authz\.sh was ended by SIGSEGV$/),
      expect.stringMatching(
        /^authorizer failed: the ext_authz program .*authz\.sh exited with 7; 0 grants, 1 denies$/,
      ),
    ]);
    expect(failed.every((e) => (e.granted as string[]).length === 0)).toBe(true);
    expect(stack.tokenServer.output()).not.toContain(PROGRAM_SECRET);
  });

  it('counts every authorizer decision in the metrics, as the ACL', async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    const text = await res.text();
    const count = (kind: string, result: string) =>
      Number(
        new RegExp(
          `^regauth_authorizer_duration_seconds_count\\{kind="${kind}",result="${result}"\\} (\\d+)$`,
          'm',
        ).exec(text)?.[1] ?? 0,
      );
    expect(count('acl', 'granted')).toBeGreaterThanOrEqual(1);
    expect(count('acl', 'denied')).toBeGreaterThanOrEqual(1);
    expect(count('acl', 'no_match')).toBeGreaterThanOrEqual(5);
    expect(count('ext_authz', 'granted')).toBeGreaterThanOrEqual(2);
    expect(count('ext_authz', 'denied')).toBeGreaterThanOrEqual(2);
    expect(count('ext_authz', 'error')).toBe(3);
  });

  it('lets skopeo push where the program allows and refuses it where the program denies', async () => {
    const push = (repository: string) =>
      skopeo.push(join(work, 'image'), 'v1', `${stack.registry.host}/${repository}:v1`, 'alice:alice-pw');
    const allowed = await push('allowed/pushed');
    expect(allowed.stderr).toBe('');
    expect(allowed.code).toBe(0);
    const denied = await push('denied/pushed');
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/denied|unauthorized|authentication required/i);
    const asked = (await requests()).filter((r) => r.Name === 'denied/pushed');
    expect(asked.length).toBeGreaterThanOrEqual(1);
    expect(asked.every((r) => (r.Actions as string[]).includes('push'))).toBe(true);
  });
});
