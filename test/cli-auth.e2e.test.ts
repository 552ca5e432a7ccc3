import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushImage } from '../src/image/push-image.js';
import { createRegistryClients, isRegauthError, type RegauthError, staticCredentials } from '../src/index.js';
import { type BuiltImage, buildOciLayout } from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { openTerminal, type Terminal } from './harness/terminal.js';
import { REGAUTH_BIN, startTokenStack, type TokenStack } from './harness/token-server.js';

const USERS = { admin: 'admin-pw-7713', alice: 'alice-pw-2291', bob: 'bob-pw-6604' };
/** The second registry's only account. */
const CAROL = 'carol-pw-5108';
const PASSWORDS = [...Object.values(USERS), CAROL];
const ALICE = { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: USERS.alice };

/** What a copy says when the source's account may not read it. */
const SWAPPED_MESSAGE = (host: string) =>
  new RegExp(
    `^regauth: error: bob may not pull from ${host}/alice/app \\(credentials from --src-creds; `,
    'm',
  );

/** Fails when any password shows up in what a person or a log would see. */
function expectNoPassword(...texts: readonly string[]): void {
  for (const text of texts) for (const password of PASSWORDS) expect(text).not.toContain(password);
}

/** The words of `stty -a` (`echo`, `-echo`, `icanon` …) in what a terminal printed. */
function sttyFlags(screen: string): Set<string> {
  return new Set(screen.split(/\s+/));
}

describe('regauth credentials in a person hands: prompts, auth files, two accounts, denials', () => {
  let stack: TokenStack;
  let other: TokenStack;
  let cli: CliHome;
  let work: string;
  let host: string;
  let image: BuiltImage;
  const terminals: Terminal[] = [];
  const terminal = async (...args: Parameters<typeof openTerminal>) => {
    const t = await openTerminal(...args);
    terminals.push(t);
    return t;
  };
  /**
   * regauth in a terminal, under a shell that prints its exit status when it ends (tmux's own
   * record of the status can lag the pane's end by a moment).
   */
  const regauthInTerminal = (args: readonly string[], env: Record<string, string>) =>
    terminal(['sh', '-c', '"$0" "$@"; echo "exit=$?"', REGAUTH_BIN, ...args], { env });
  const exitStatus = async (t: Terminal) => {
    await t.exit(20_000);
    return Number(/^exit=(\d+)$/m.exec(await t.screen())?.[1]);
  };

  beforeAll(async () => {
    stack = await startTokenStack({ users: USERS });
    host = stack.registry.host;
    other = await startTokenStack({ users: { carol: CAROL } });
    cli = await createCliHome();
    work = await mkdtemp(join(tmpdir(), 'regauth-cli-auth-e2e-'));
    image = await buildOciLayout(join(work, 'image'), { tag: 'v1' });
    const push = await cli.run(['push', join(work, 'image'), `${host}/alice/app:v1`, '--quiet'], {
      env: ALICE,
    });
    if (push.code !== 0) throw new Error(push.stderr);
  });

  afterAll(async () => {
    for (const t of terminals) await t.dispose();
    await stack?.stop();
    await other?.stop();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  describe('login like docker', () => {
    it('asks for the user name and the password on a terminal, never shows the password, and stores the login', async () => {
      const home = await createCliHome();
      try {
        const t = await regauthInTerminal(['login', host], home.env);
        await t.waitForScreen(/Username:/);
        await t.sendKeys('alice', { literal: true });
        await t.sendKeys('Enter');
        await t.waitForScreen(/Password:/);
        await t.sendKeys(USERS.alice, { literal: true });
        await t.sendKeys('Enter');
        expect(await exitStatus(t)).toBe(0);
        const screen = await t.screen();
        expect(screen).toMatch(/^Username: alice$/m);
        expect(screen).toMatch(/^Password: $|^Password:$/m);
        expect(screen).toMatch(/Login Succeeded/);
        expectNoPassword(screen, await t.output());

        const config = await readFile(join(home.dockerConfig, 'config.json'), 'utf8');
        expect(JSON.parse(config).auths[host].identitytoken).toMatch(/^rt1\./);
        expectNoPassword(config);
        const manifest = await home.run(['manifest', `${host}/alice/app:v1`]);
        expect(manifest.stdout.toString()).toBe(image.manifest);
      } finally {
        await home.dispose();
      }
    });

    it('a wrong password typed at the prompt is refused, naming where it came from, and nothing is stored', async () => {
      const home = await createCliHome();
      const wrong = 'not-alices-password-4417';
      try {
        const t = await regauthInTerminal(['login', host, '-u', 'alice'], home.env);
        await t.waitForScreen(/Password:/);
        await t.sendKeys(wrong, { literal: true });
        await t.sendKeys('Enter');
        expect(await exitStatus(t)).toBe(1);
        // The message wraps at the terminal's width: compared without the line breaks' spaces.
        const screen = (await t.screen()).replace(/\s+/g, '');
        expect(screen).toContain(
          'refusedthecredentialsforalice(credentialsfromregauthlogin(thepasswordtypedattheprompt))',
        );
        expect(screen).toMatch(/Password:regauth:error:thetokenserverat/);
        expect(await t.output()).not.toContain(wrong);
        await expect(readFile(join(home.dockerConfig, 'config.json'))).rejects.toThrow();
      } finally {
        await home.dispose();
      }
    });

    it('exits 130 on Ctrl-C at the password prompt and leaves the terminal echoing', async () => {
      const home = await createCliHome();
      try {
        // After regauth: its exit status, the terminal's flags, then a line read by the shell
        // with the terminal as regauth left it: with echo on, what is typed shows.
        const script = '"$0" login "$1" -u alice; echo "exit=$?"; stty -a; read -r line; echo "read=$line"';
        const t = await terminal(['sh', '-c', script, REGAUTH_BIN, host], { env: home.env });
        await t.waitForScreen(/Password:/);
        await t.sendKeys(USERS.alice.slice(0, 6), { literal: true });
        await t.sendKeys('C-c');
        await t.waitForScreen(/exit=\d+[\s\S]*echo/);
        await t.sendKeys('typed-after', { literal: true });
        await t.sendKeys('Enter');
        const screen = await t.waitForScreen(/read=typed-after/);
        expect(screen).toMatch(/^exit=130$/m);
        const flags = sttyFlags(screen);
        expect(flags.has('echo')).toBe(true);
        expect(flags.has('-echo')).toBe(false);
        expect(flags.has('icanon')).toBe(true);
        // The shell's read echoed the line (the terminal's echo is back), then printed it.
        expect(screen.match(/typed-after/g)).toHaveLength(2);
        expect(await t.output()).not.toContain(USERS.alice.slice(0, 6));
        await expect(readFile(join(home.dockerConfig, 'config.json'))).rejects.toThrow();
      } finally {
        await home.dispose();
      }
    });

    it('reads --password-stdin on a terminal without echoing it', async () => {
      const home = await createCliHome();
      try {
        const t = await regauthInTerminal(['login', host, '-u', 'alice', '--password-stdin'], home.env);
        await t.waitForScreen(/Password:/, 5_000);
        await t.sendKeys(USERS.alice, { literal: true });
        await t.sendKeys('Enter');
        expect(await exitStatus(t)).toBe(0);
        expect(await t.screen()).toMatch(/Login Succeeded/);
        expectNoPassword(await t.screen(), await t.output());
      } finally {
        await home.dispose();
      }
    });

    it("takes -p/--password with docker's warning", async () => {
      const home = await createCliHome();
      try {
        const res = await home.run(['login', host, '-u', 'bob', '-p', USERS.bob]);
        expect(res.stderr).toMatch(
          /^WARNING! Using --password via the CLI is insecure\. Use --password-stdin\.$/m,
        );
        expect(res.stderr).toMatch(/Login Succeeded/);
        expect(res.code).toBe(0);
        expectNoPassword(res.stderr, await readFile(join(home.dockerConfig, 'config.json'), 'utf8'));
      } finally {
        await home.dispose();
      }
    });

    it('without a terminal and without a password, is a usage error that says how to pass one', async () => {
      const res = await cli.run(['login', host, '-u', 'alice']);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/standard input is not a terminal/);
      expect(res.stderr).toMatch(/--password-stdin/);
      const noUser = await cli.run(['login', host]);
      expect(noUser.code).toBe(2);
      expect(noUser.stderr).toMatch(/needs --username \(-u\)/);
    });
  });

  describe('an auth file named explicitly', () => {
    it('that does not exist is an error naming it, before any request; login creates it', async () => {
      const missing = join(work, 'no-such-auth.json');
      const flag = await cli.run(['manifest', `${host}/alice/app:v1`, '--authfile', missing, '--trace']);
      expect(flag.code).toBe(2);
      expect(flag.stderr).toMatch(new RegExp(`--authfile ${missing} does not exist`));
      expect(flag.requests).toBe(0);
      const env = await cli.run(['tags', `${host}/alice/app`], { env: { REGISTRY_AUTH_FILE: missing } });
      expect(env.code).toBe(2);
      expect(env.stderr).toMatch(new RegExp(`REGISTRY_AUTH_FILE ${missing} does not exist`));
      const side = await cli.run([
        'copy',
        `${host}/alice/app:v1`,
        `${host}/alice/x:v1`,
        '--src-authfile',
        missing,
      ]);
      expect(side.code).toBe(2);
      expect(side.stderr).toMatch(new RegExp(`--src-authfile ${missing} does not exist`));

      const login = await cli.run(['login', host, '-u', 'alice', '--password-stdin', '--authfile', missing], {
        stdin: `${USERS.alice}\n`,
      });
      expect(login.code).toBe(0);
      expect(login.stderr).toContain(missing);
      const manifest = await cli.run(['manifest', `${host}/alice/app:v1`, '--authfile', missing]);
      expect(manifest.stdout.toString()).toBe(image.manifest);
      expectNoPassword(
        flag.stderr,
        env.stderr,
        login.stderr,
        manifest.stderr,
        await readFile(missing, 'utf8'),
      );
    });
  });

  describe('copy between two accounts', () => {
    it('reads with --src-creds and writes with --dest-creds in one registry, and names the account when swapped', async () => {
      const res = await cli.run([
        'copy',
        `${host}/alice/app:v1`,
        `${host}/bob/app:v1`,
        '--src-creds',
        `alice:${USERS.alice}`,
        '--dest-creds',
        `bob:${USERS.bob}`,
        '--quiet',
        '--trace',
      ]);
      expect(res.code).toBe(0);
      // A password in the arguments gets docker's kind of warning, once per side.
      expect(res.stderr).toContain(
        'WARNING! Using a password in --src-creds is insecure: others on this machine can see it. Give --src-creds alice to be asked for it.',
      );
      expect(res.stderr).toContain('WARNING! Using a password in --dest-creds is insecure');
      const asBob = await cli.run(['manifest', `${host}/bob/app:v1`], {
        env: { REGAUTH_USERNAME: 'bob', REGAUTH_PASSWORD: USERS.bob },
      });
      expect(asBob.stdout.toString()).toBe(image.manifest);
      // Each account has only its own repository: nothing can be mounted across them.
      expect(res.stderr).not.toMatch(/[?&]mount=/);
      expectNoPassword(res.stderr, res.stdout.toString());

      const swapped = await cli.run([
        'copy',
        `${host}/alice/app:v1`,
        `${host}/bob/swapped:v1`,
        '--src-creds',
        `bob:${USERS.bob}`,
        '--dest-creds',
        `alice:${USERS.alice}`,
        '--quiet',
      ]);
      expect(swapped.code).toBe(1);
      expect(swapped.stderr).toMatch(SWAPPED_MESSAGE(host));
      expectNoPassword(swapped.stderr);
    });

    it('copies between two registries, each with its own account: --src-creds, --dest-authfile', async () => {
      const carolFile = join(work, 'carol-auth.json');
      const login = await cli.run(
        ['login', other.registry.host, '-u', 'carol', '--password-stdin', '--authfile', carolFile],
        { stdin: `${CAROL}\n` },
      );
      expect(login.code).toBe(0);
      const dst = `${other.registry.host}/carol/app:v1`;
      const res = await cli.run([
        'copy',
        `${host}/alice/app:v1`,
        dst,
        '--src-creds',
        `alice:${USERS.alice}`,
        '--dest-authfile',
        carolFile,
        '--quiet',
      ]);
      expect(res.stderr).toBe(
        'WARNING! Using a password in --src-creds is insecure: others on this machine can see it. Give --src-creds alice to be asked for it.\n',
      );
      expect(res.code).toBe(0);
      const back = await cli.run(['manifest', dst, '--authfile', carolFile]);
      expect(back.stdout.toString()).toBe(image.manifest);

      // REGAUTH_USERNAME/PASSWORD still apply to both sides: alice has no account on the second registry.
      const envOnly = await cli.run(['copy', `${host}/alice/app:v1`, dst, '--quiet'], { env: ALICE });
      expect(envOnly.code).toBe(1);
      expect(envOnly.stderr).toMatch(/refused the credentials for alice/);
      expectNoPassword(login.stderr, res.stderr, envOnly.stderr);
    });

    it('asks for the password of a side named without one, on a terminal, with echo off', async () => {
      const t = await regauthInTerminal(
        [
          'copy',
          `${host}/alice/app:v1`,
          `${host}/bob/asked:v1`,
          '--src-creds',
          'alice',
          '--dest-creds',
          'bob',
          '--quiet',
        ],
        cli.env,
      );
      await t.waitForScreen(/Password for alice at .* \(--src-creds\):/);
      await t.sendKeys(USERS.alice, { literal: true });
      await t.sendKeys('Enter');
      await t.waitForScreen(/Password for bob at .* \(--dest-creds\):/);
      await t.sendKeys(USERS.bob, { literal: true });
      await t.sendKeys('Enter');
      expect(await exitStatus(t)).toBe(0);
      expectNoPassword(await t.screen(), await t.output());
      const asBob = await cli.run(['manifest', `${host}/bob/asked:v1`], {
        env: { REGAUTH_USERNAME: 'bob', REGAUTH_PASSWORD: USERS.bob },
      });
      expect(asBob.stdout.toString()).toBe(image.manifest);
    });

    it('refuses -u beside a named side, and a side without a password off a terminal', async () => {
      const both = await cli.run(
        [
          'copy',
          `${host}/alice/app:v1`,
          `${host}/bob/x:v1`,
          '-u',
          'alice',
          '--password-stdin',
          '--dest-creds',
          'bob:x',
        ],
        { stdin: USERS.alice },
      );
      expect(both.code).toBe(2);
      expect(both.stderr).toMatch(/-u\/--password-stdin apply to both sides/);
      const noPassword = await cli.run([
        'copy',
        `${host}/alice/app:v1`,
        `${host}/bob/x:v1`,
        '--src-creds',
        'alice',
      ]);
      expect(noPassword.code).toBe(2);
      expect(noPassword.stderr).toMatch(/--src-creds alice has no password.*--src-creds alice:PASSWORD/);
    });
  });

  describe('refusals name the action and the account', () => {
    it('says alice may not push to a repository only bob may write, and carries the facts as data', async () => {
      const res = await cli.run(['push', join(work, 'image'), `${host}/bob/x:v1`, '--quiet'], { env: ALICE });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(
        new RegExp(
          `^regauth: error: alice may not push to ${host}/bob/x \\(credentials from REGAUTH_USERNAME/REGAUTH_PASSWORD; blob .*: 401\\); use an account that may`,
          'm',
        ),
      );
      expect(res.stderr).not.toMatch(/may not pull|account in use/);
      expectNoPassword(res.stderr);

      const clients = createRegistryClients({
        credentials: staticCredentials({ username: 'alice', password: USERS.alice }),
      });
      const err = await pushImage(join(work, 'image'), clients.forRegistry(host), 'bob/x', 'v1').catch(
        (e: unknown) => e,
      );
      expect(isRegauthError(err, 'ERR_DENIED')).toBe(true);
      expect((err as RegauthError).access).toEqual({
        registry: host,
        repository: 'bob/x',
        actions: ['pull', 'push'],
        as: 'account',
        account: 'alice',
        // The library names no CLI flags; the CLI passes its own label.
        credentialSource: 'the user name and password given',
      });
      expect((err as RegauthError).message).toMatch(new RegExp(`^alice may not push to ${host}/bob/x `));
      expectNoPassword((err as Error).message, JSON.stringify(err), String((err as Error).stack));
    });

    it('says an anonymous pull of a protected repository was anonymous, and how to log in', async () => {
      const res = await cli.run(['pull', `${host}/alice/app:v1`, join(work, 'anonymous-pull'), '--quiet']);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(
        new RegExp(
          `^regauth: error: an anonymous request may not pull from ${host}/alice/app \\(manifest ${host}/alice/app:v1: 401 .*\\); ` +
            `log in with \`regauth login ${host}\`, or pass -u USER with --password-stdin$`,
          'm',
        ),
      );
      const err = await createRegistryClients({ credentials: { find: async () => undefined } })
        .forRegistry(host)
        .getManifest('alice/app', 'v1')
        .catch((e: unknown) => e);
      expect((err as RegauthError).access).toEqual({
        registry: host,
        repository: 'alice/app',
        actions: ['pull'],
        as: 'anonymous',
      });
    });
  });
});
