import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOciLayout } from './harness/oci-layout.js';
import { type OidcIssuer, startOidcIssuer } from './harness/oidc-issuer.js';
import { createPodman, type Podman, type PodmanResult, podmanSkipReason } from './harness/podman.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { SLAPD_PEOPLE, type SlapdHandle, startSlapd } from './harness/slapd.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

const run = promisify(execFile);

const AUDIENCE = 'https://registry.example.test';
const HTPASSWD_USERS = { admin: 'admin-podman-pw', alice: 'alice-podman-pw' };
const LDAP_USERS = {
  lena: { password: 'lena-ldap-pw', groups: ['dev'] },
  omar: { password: 'omar-ldap-pw', groups: ['ops'] },
};
const WRONG_PASSWORD = 'not-alices-podman-pw';
/** podman's answer to a refused push: the registry's denial, or its 401 when no token covers the scope. */
const REFUSED = /denied|unauthorized|authentication required/i;

const skipReason = podmanSkipReason();

/**
 * The real podman (Debian's, run as root with vfs storage and its own configuration: it never
 * runs a container) against the real registry trusting `regauth serve`, with htpasswd, LDAP and
 * CI (OIDC) users side by side, and the credentials files podman and regauth share.
 */
describe.skipIf(skipReason !== undefined)(
  `podman against the real registry and regauth serve${skipReason === undefined ? '' : ` (skipped: ${skipReason})`}`,
  // Several podman pulls and pushes per test, each allowed PODMAN_TIMEOUT_MS on a loaded machine.
  { timeout: 240_000 },
  () => {
    let slapd: SlapdHandle;
    let issuer: OidcIssuer;
    let stack: TokenStack;
    let podman: Podman;
    let work: string;
    let host: string;
    /** The config digest of the seeded image, which every copy of it keeps. */
    let seededConfig: string;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'regauth-podman-test-'));
      slapd = await startSlapd({
        users: Object.entries(LDAP_USERS).map(([uid, u]) => ({
          uid,
          password: u.password,
          groups: u.groups,
        })),
      });
      const bindPasswordFile = join(slapd.dir, 'bind-password');
      await writeFile(bindPasswordFile, `${slapd.servicePassword}\n`);
      issuer = await startOidcIssuer();
      stack = await startTokenStack({
        users: HTPASSWD_USERS,
        authn: [
          { htpasswd: { file: 'users.htpasswd' } },
          {
            ldap: {
              url: slapd.url,
              bind_dn: slapd.serviceDn,
              bind_password_file: bindPasswordFile,
              base_dn: SLAPD_PEOPLE,
              labels: { group: { attribute: 'memberOf', cn_only: true } },
              timeout_seconds: 10,
            },
          },
          {
            oidc: {
              issuer: issuer.url,
              audience: AUDIENCE,
              user: 'github-actions',
              name: '${repository}',
            },
          },
        ],
        acl: [
          { match: { account: 'admin' }, actions: ['*'] },
          // Anyone logged in pulls the base images; nobody anonymous does.
          { match: { account: '/.+/', name: 'public/**' }, actions: ['pull'] },
          // htpasswd users push under their own name.
          { match: { account: '/^(alice|admin)$/', name: '${account}/*' }, actions: ['pull', 'push'] },
          // Directory users push under their group's name.
          { match: { labels: { group: '*' }, name: '${labels:group}/*' }, actions: ['pull', 'push'] },
          // A CI job pushes to its own repository only.
          { match: { account: 'octo-org/*', name: '${account}' }, actions: ['pull', 'push'] },
        ],
      });
      host = stack.registry.host;
      podman = await createPodman();
      await buildOciLayout(join(work, 'image'), { tag: 'v1' });
      const policy = join(work, 'policy.json');
      await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
      await run(
        'skopeo',
        [
          '--policy',
          policy,
          'copy',
          '--dest-tls-verify=false',
          '--dest-creds',
          `admin:${HTPASSWD_USERS.admin}`,
          `oci:${join(work, 'image')}:v1`,
          `docker://${host}/public/base:v1`,
        ],
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work }, timeout: 60_000 },
      );
      seededConfig = await configDigest('public/base:v1');
    }, 120_000);

    afterAll(async () => {
      await stack?.stop();
      await podman?.dispose();
      await issuer?.close();
      await slapd?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    /** What the registry holds, read as admin with skopeo (independent of podman and regauth's CLI). */
    async function configDigest(reference: string): Promise<string> {
      const { stdout } = await run(
        'skopeo',
        [
          'inspect',
          '--raw',
          '--tls-verify=false',
          '--creds',
          `admin:${HTPASSWD_USERS.admin}`,
          `docker://${host}/${reference}`,
        ],
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work }, timeout: 60_000 },
      );
      return (JSON.parse(stdout) as { config: { digest: string } }).config.digest;
    }

    async function exists(reference: string): Promise<boolean> {
      return configDigest(reference).then(
        () => true,
        (err: { stderr?: string }) => {
          if (/manifest unknown|name unknown|not found/i.test(err.stderr ?? '')) return false;
          throw err;
        },
      );
    }

    const authfile = (name: string) => join(podman.dir, `${name}-auth.json`);

    const login = (user: string, password: string, file: string) =>
      podman.run(
        ['login', '--tls-verify=false', '--authfile', file, '--username', user, '--password-stdin', host],
        {
          stdin: `${password}\n`,
        },
      );

    /** Pulls public/base:v1, tags it as `repository:v1` and pushes that, with `file`'s login. */
    async function pullTagPush(
      file: string,
      repository: string,
    ): Promise<{ pull: PodmanResult; push: PodmanResult }> {
      const pull = await podman.run([
        'pull',
        '--quiet',
        '--tls-verify=false',
        '--signature-policy',
        podman.policy,
        '--authfile',
        file,
        `${host}/public/base:v1`,
      ]);
      const tag = await podman.run(['tag', `${host}/public/base:v1`, `${host}/${repository}:v1`]);
      expect(tag.stderr).toBe('');
      expect(tag.code).toBe(0);
      const push = await podman.run([
        'push',
        '--quiet',
        '--tls-verify=false',
        '--signature-policy',
        podman.policy,
        '--authfile',
        file,
        `${host}/${repository}:v1`,
      ]);
      return { pull, push };
    }

    const secretsIn = (result: PodmanResult, secrets: readonly string[]) =>
      secrets.filter((s) => result.stdout.includes(s) || result.stderr.includes(s));

    it('podman login: an htpasswd user through regauth serve, a wrong password refused', async () => {
      const file = authfile('alice');
      const wrong = await login('alice', WRONG_PASSWORD, file);
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toMatch(/invalid username\/password|unauthorized/i);
      expect(secretsIn(wrong, [WRONG_PASSWORD, HTPASSWD_USERS.alice])).toEqual([]);
      // Nothing stored for a refused login.
      const before = await readFile(file, 'utf8').catch(() => '{}');
      expect(before).not.toContain(host);

      const ok = await login('alice', HTPASSWD_USERS.alice, file);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/Login Succeeded/);
      expect(secretsIn(ok, [HTPASSWD_USERS.alice])).toEqual([]);
      const stored = JSON.parse(await readFile(file, 'utf8')) as { auths: Record<string, { auth: string }> };
      expect(Buffer.from(stored.auths[host]?.auth ?? '', 'base64').toString()).toBe(
        `alice:${HTPASSWD_USERS.alice}`,
      );
      await stack.tokenServer.waitForLog(
        (e) => e.msg === 'token' && e.account === 'alice' && e.outcome === 'issued',
      );
      expect(stack.tokenServer.logEntries()).toContainEqual(
        expect.objectContaining({ msg: 'token', account: 'alice', outcome: 'unauthorized', status: 401 }),
      );
    });

    it('podman pull, tag and push where the ACL allows; a push elsewhere refused', async () => {
      const file = authfile('alice');
      const own = await pullTagPush(file, 'alice/app');
      expect(own.pull.code).toBe(0);
      expect(own.push.stderr).toBe('');
      expect(own.push.code).toBe(0);
      expect(await configDigest('alice/app:v1')).toBe(seededConfig);

      const other = await pullTagPush(file, 'bob/app');
      expect(other.pull.code).toBe(0);
      expect(other.push.code).not.toBe(0);
      expect(other.push.stderr).toMatch(REFUSED);
      expect(await exists('bob/app:v1')).toBe(false);
    });

    it("an LDAP user logs in with podman and pushes to its group's repositories only", async () => {
      const file = authfile('lena');
      const ok = await login('lena', LDAP_USERS.lena.password, file);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      const own = await pullTagPush(file, 'dev/app');
      expect(own.push.stderr).toBe('');
      expect(own.push.code).toBe(0);
      expect(await configDigest('dev/app:v1')).toBe(seededConfig);

      const elsewhere = await pullTagPush(file, 'ops/app');
      expect(elsewhere.push.code).not.toBe(0);
      expect(elsewhere.push.stderr).toMatch(REFUSED);
      expect(await exists('ops/app:v1')).toBe(false);

      // omar (group ops) is a directory user too, and dev/ is not his group's.
      const omarFile = authfile('omar');
      expect((await login('omar', LDAP_USERS.omar.password, omarFile)).code).toBe(0);
      const omar = await pullTagPush(omarFile, 'dev/omar');
      expect(omar.push.code).not.toBe(0);
      expect(omar.push.stderr).toMatch(REFUSED);
      expect(await exists('dev/omar:v1')).toBe(false);

      await stack.tokenServer.waitForLog(
        (e) => e.msg === 'token' && e.account === 'lena' && e.outcome === 'issued',
      );
      const lena = stack.tokenServer.logEntries().filter((e) => e.msg === 'token' && e.account === 'lena');
      expect(
        lena.some(
          (e) => e.authn === 'ldap' && (e.granted as string[]).includes('repository:dev/app:pull,push'),
        ),
      ).toBe(true);
      expect(lena.flatMap((e) => e.granted as string[]).some((s) => s.includes('ops/app'))).toBe(false);
    });

    it('a CI token from the OIDC issuer as the password pushes to its repository only', async () => {
      const token = await issuer.sign(issuer.github({ aud: AUDIENCE, repository: 'octo-org/app' }));
      const file = authfile('ci');
      const ok = await login('github-actions', token, file);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(secretsIn(ok, [token])).toEqual([]);
      const own = await pullTagPush(file, 'octo-org/app');
      expect(own.push.stderr).toBe('');
      expect(own.push.code).toBe(0);
      expect(await configDigest('octo-org/app:v1')).toBe(seededConfig);

      const other = await pullTagPush(file, 'octo-org/other');
      expect(other.push.code).not.toBe(0);
      expect(other.push.stderr).toMatch(REFUSED);
      expect(secretsIn(other.push, [token])).toEqual([]);
      expect(await exists('octo-org/other:v1')).toBe(false);

      // A token for another audience is refused at login.
      const foreign = await issuer.sign(
        issuer.github({ aud: 'https://elsewhere.test', repository: 'octo-org/app' }),
      );
      const refused = await login('github-actions', foreign, authfile('ci-foreign'));
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/invalid username\/password|unauthorized/i);
      expect(secretsIn(refused, [foreign])).toEqual([]);
    });

    describe('credentials shared between podman and regauth', () => {
      let cli: CliHome;

      beforeAll(async () => {
        cli = await createCliHome();
      });
      afterAll(async () => {
        await cli?.dispose();
      });

      /** `regauth manifest` of public/base:v1, which nobody anonymous may pull. */
      const regauthManifest = (env: Record<string, string>) =>
        cli.run(['manifest', '--no-token-cache', `${host}/public/base:v1`], { env });

      it('regauth reads the manifest with the login podman stored in its default auth file', async () => {
        // Without credentials the registry refuses: what follows is the stored login at work.
        const anonymous = await regauthManifest({});
        expect(anonymous.code).not.toBe(0);

        const ok = await podman.run(
          ['login', '--tls-verify=false', '--username', 'alice', '--password-stdin', host],
          {
            stdin: `${HTPASSWD_USERS.alice}\n`,
          },
        );
        expect(ok.code).toBe(0);
        // podman's own default: $XDG_RUNTIME_DIR/containers/auth.json, where regauth looks for it.
        expect(await readFile(podman.defaultAuthFile, 'utf8')).toContain(host);
        const read = await regauthManifest({ XDG_RUNTIME_DIR: podman.env.XDG_RUNTIME_DIR ?? '' });
        expect(read.stderr).toBe('');
        expect(read.code).toBe(0);
        expect((JSON.parse(read.stdout.toString()) as { config: { digest: string } }).config.digest).toBe(
          seededConfig,
        );
      });

      it('regauth reads the file podman login --authfile wrote, through REGISTRY_AUTH_FILE and --authfile', async () => {
        const file = authfile('alice');
        const viaEnv = await regauthManifest({ REGISTRY_AUTH_FILE: file });
        expect(viaEnv.stderr).toBe('');
        expect(viaEnv.code).toBe(0);
        const viaFlag = await cli.run([
          'manifest',
          '--no-token-cache',
          '--authfile',
          file,
          `${host}/public/base:v1`,
        ]);
        expect(viaFlag.stderr).toBe('');
        expect(viaFlag.code).toBe(0);
      });

      it("podman pulls with the login regauth stored in docker's config.json (~/.docker or $DOCKER_CONFIG)", async () => {
        const emptyRuntime = join(work, 'empty-runtime');
        await mkdir(emptyRuntime, { recursive: true, mode: 0o700 });
        const pull = (env: Record<string, string>) =>
          podman.run(
            [
              'pull',
              '--quiet',
              '--tls-verify=false',
              '--signature-policy',
              podman.policy,
              `${host}/public/base:v1`,
            ],
            {
              env: { XDG_RUNTIME_DIR: emptyRuntime, ...env },
            },
          );
        // Without a login podman is refused: what follows is regauth's stored login at work.
        const anonymous = await pull({ HOME: join(work, 'no-home') });
        expect(anonymous.code).not.toBe(0);
        expect(anonymous.stderr).toMatch(REFUSED);

        // podman reads docker's config.json after its own auth files (containers-auth.json(5)):
        // $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
        const home = join(work, 'docker-home');
        const elsewhere = join(work, 'docker-config-elsewhere');
        for (const env of [
          { HOME: home, DOCKER_CONFIG: join(home, '.docker') },
          { HOME: join(work, 'other-home'), DOCKER_CONFIG: elsewhere },
        ]) {
          await mkdir(env.DOCKER_CONFIG, { recursive: true });
          const stored = await cli.run(['login', host, '-u', 'alice', '--password-stdin'], {
            env,
            stdin: HTPASSWD_USERS.alice,
          });
          expect(stored.stderr).toMatch(/^Login Succeeded/);
          expect(stored.stderr).toContain(join(env.DOCKER_CONFIG, 'config.json'));
          expect(stored.code).toBe(0);
          const podmanEnv: Record<string, string> = env.DOCKER_CONFIG === elsewhere ? env : { HOME: home };
          const pulled = await pull(podmanEnv);
          expect(pulled.stderr).toBe('');
          expect(pulled.code).toBe(0);
        }
      });

      it('podman pulls with the login regauth stored in REGISTRY_AUTH_FILE', async () => {
        const file = join(work, 'regauth-auth.json');
        const stored = await cli.run(['login', host, '-u', 'alice', '--password-stdin'], {
          env: { REGISTRY_AUTH_FILE: file },
          stdin: HTPASSWD_USERS.alice,
        });
        expect(stored.code).toBe(0);
        const pull = await podman.run(
          ['pull', '--tls-verify=false', '--signature-policy', podman.policy, `${host}/public/base:v1`],
          { env: { REGISTRY_AUTH_FILE: file, XDG_RUNTIME_DIR: join(work, 'empty-runtime') } },
        );
        expect(pull.stderr).not.toMatch(REFUSED);
        expect(pull.code).toBe(0);
      });
    });

    it('the token server never logged a password or token', () => {
      const output = stack.tokenServer.output();
      for (const secret of [
        ...Object.values(HTPASSWD_USERS),
        WRONG_PASSWORD,
        LDAP_USERS.lena.password,
        LDAP_USERS.omar.password,
        slapd.servicePassword,
      ]) {
        expect(output).not.toContain(secret);
      }
      expect(output).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
    });
  },
);
