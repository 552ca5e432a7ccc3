import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltImage, buildOciLayout } from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';
import { REGAUTH_BIN } from './harness/token-server.js';

const run = promisify(execFile);
const sha256 = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

describe('the CLI at the edges: closed pipes, files, usage, what push prints', () => {
  let registry: RegistryHandle;
  let cli: CliHome;
  let work: string;
  let host: string;
  let image: BuiltImage;
  /** Larger than a pipe's buffer (64 KiB on Linux), so a reader that stops early cuts it off. */
  const layer = randomBytes(1024 * 1024);

  beforeAll(async () => {
    registry = await startRegistry();
    host = registry.host;
    cli = await createCliHome();
    work = await mkdtemp(join(tmpdir(), 'regauth-cli-errors-e2e-'));
    image = await buildOciLayout(join(work, 'app'), {
      tag: 'v1',
      rawLayers: [layer],
      labels: { filler: 'x'.repeat(256 * 1024) },
    });
    const push = await cli.run(['push', '--quiet', '--json', join(work, 'app'), `${host}/team/app:v1`]);
    if (push.code !== 0) throw new Error(push.stderr);
  });

  afterAll(async () => {
    await registry?.stop();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** `regauth ARGS | head -c BYTES` through a real pipe: regauth's status and stderr, head's bytes. */
  const intoHead = async (args: readonly string[], bytes: number) => {
    const errFile = join(work, `stderr-${randomBytes(4).toString('hex')}`);
    const { stdout } = await run(
      'bash',
      [
        '-c',
        '"$0" "$@" 2>"$ERR_FILE" | head -c "$BYTES" | wc -c; echo "status ${PIPESTATUS[0]}"; cat "$ERR_FILE"',
        REGAUTH_BIN,
        ...args,
      ],
      { env: { ...cli.env, ERR_FILE: errFile, BYTES: String(bytes) }, timeout: 30_000 },
    );
    const [count = '', status = '', ...stderr] = stdout.split('\n');
    return { bytes: Number(count.trim()), status: status.replace('status ', ''), stderr: stderr.join('\n') };
  };

  describe('a reader that stops early', () => {
    it('config | head -c 100 ends quietly: status 0, nothing on stderr', async () => {
      const res = await intoHead(['config', `${host}/team/app:v1`], 100);
      expect(res).toEqual({ bytes: 100, status: '0', stderr: '' });
    });

    it('a failure whose error line meets a closed stderr still exits 1, not 0', async () => {
      const { stdout } = await run(
        'bash',
        [
          '-c',
          '"$0" digest 127.0.0.1:1/a:b 2>&1 | (exec 0<&-; sleep 0.2); echo "status ${PIPESTATUS[0]}"',
          REGAUTH_BIN,
        ],
        { env: cli.env, timeout: 30_000 },
      );
      expect(stdout.trim()).toBe('status 1');
    });

    it('blob | head -c 10 ends quietly: status 0, nothing on stderr', async () => {
      const res = await intoHead(['blob', `${host}/team/app@${sha256(layer)}`], 10);
      expect(res).toEqual({ bytes: 10, status: '0', stderr: '' });
    });
  });

  /** One line on stderr: no Node stack trace, no raw errno dump. */
  const expectOneLine = (stderr: string) => {
    expect(stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(stderr).not.toMatch(/^\s+at /m);
  };

  it('a loopback registry that is not there is asked once, not retried, before the error', async () => {
    const res = await cli.run(['digest', 'localhost:1/a:b', '--trace']);
    expect(res.code).toBe(1);
    expect(res.stderr.match(/^GET \/v2\/ HTTP\/1\.1$/gm)).toHaveLength(1);
    expect(res.stderr).toMatch(
      /^regauth: error: GET https:\/\/localhost:1: connect ECONNREFUSED .*; is the registry running there\?$/m,
    );
  });

  describe('file-system failures name the path, the action and what to do', () => {
    const pullArchive = (out: string) =>
      cli.run(['pull', `${host}/team/app:v1`, '--format', 'docker-archive', '--output', out]);

    it('docker-archive --output a folder: refused before the download, nothing written', async () => {
      const out = join(work, 'out-folder');
      await mkdir(out);
      const res = await pullArchive(out);
      expect(res.code).toBe(1);
      expect(res.stderr).toBe(
        `regauth: error: cannot write the docker archive ${out}: it is a folder; give the path of a .tar file, such as ${out}/image.tar\n`,
      );
      expect(await readdir(out)).toEqual([]);
      expect((await readdir(work)).filter((f) => f.includes('.partial'))).toEqual([]);
    });

    it('docker-archive --output in a folder that does not exist (ENOENT)', async () => {
      const out = join(work, 'no-such-folder', 'image.tar');
      const res = await pullArchive(out);
      expect(res.code).toBe(1);
      expectOneLine(res.stderr);
      expect(res.stderr).toBe(
        `regauth: error: cannot write the docker archive ${out}: no such file or folder (ENOENT); check the path; the folder it is in must exist\n`,
      );
    });

    it('docker-archive --output under a file (ENOTDIR)', async () => {
      const file = join(work, 'plain-file');
      await writeFile(file, 'not a folder');
      const out = join(file, 'image.tar');
      const res = await pullArchive(out);
      expect(res.code).toBe(1);
      expectOneLine(res.stderr);
      expect(res.stderr).toMatch(
        /^regauth: error: cannot write the docker archive .*plain-file\/image\.tar: a part of the path is a file, not a folder \(ENOTDIR\)/,
      );
    });

    /** regauth as user nobody (setpriv, util-linux), with `home` for its home and caches. */
    const asNobody = (home: string, args: readonly string[]) =>
      run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', REGAUTH_BIN, ...args], {
        env: {
          PATH: cli.env.PATH,
          HOME: home,
          DOCKER_CONFIG: home,
          XDG_CACHE_HOME: home,
          XDG_RUNTIME_DIR: home,
        },
        timeout: 30_000,
      }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
      );

    // As root every folder is writable: run regauth as nobody (setpriv, util-linux) against a
    // folder root owns, the issue's "docker-archive into a read-only directory".
    it.skipIf(process.getuid?.() !== 0)(
      'docker-archive into a folder this user may not write (EACCES): one line, nothing left',
      async () => {
        const locked = join(tmpdir(), `regauth-locked-${randomBytes(4).toString('hex')}`);
        const home = join(tmpdir(), `regauth-nobody-${randomBytes(4).toString('hex')}`);
        await mkdir(locked, { mode: 0o755 });
        await mkdir(home, { mode: 0o777 });
        await chmod(home, 0o777);
        try {
          const out = join(locked, 'image.tar');
          const res = await asNobody(home, [
            'pull',
            `${host}/team/app:v1`,
            '--format',
            'docker-archive',
            '--output',
            out,
          ]);
          expect(res).toEqual({
            code: 1,
            stderr: `regauth: error: cannot write the docker archive ${out}: permission denied (EACCES); choose a place this user may use, or change its permissions\n`,
          });
          expect(await readdir(locked)).toEqual([]);
        } finally {
          await rm(locked, { recursive: true, force: true });
          await rm(home, { recursive: true, force: true });
        }
      },
    );

    it.skipIf(process.getuid?.() !== 0)(
      'pull into a layout this user may not write (EACCES): one line naming the layout, the layout unchanged',
      async () => {
        const layout = join(tmpdir(), `regauth-ro-layout-${randomBytes(4).toString('hex')}`);
        const home = join(tmpdir(), `regauth-nobody-${randomBytes(4).toString('hex')}`);
        await mkdir(home, { mode: 0o777 });
        await chmod(home, 0o777);
        try {
          expect((await cli.run(['pull', '--quiet', `${host}/team/app:v1`, layout])).code).toBe(0);
          const before = (await readdir(layout, { recursive: true })).sort();
          const res = await asNobody(home, ['pull', `${host}/team/app:v1`, layout]);
          expect(res.code).toBe(1);
          expectOneLine(res.stderr);
          expect(res.stderr).toMatch(
            new RegExp(`^regauth: error: cannot [a-z ()./]+ ${layout}\\S*: permission denied \\(EACCES\\); `),
          );
          expect(res.stderr).not.toMatch(/\.tmp\b/);
          expect((await readdir(layout, { recursive: true })).sort()).toEqual(before);
        } finally {
          await rm(layout, { recursive: true, force: true });
          await rm(home, { recursive: true, force: true });
        }
      },
    );

    it('pull into a path that is a file: a usage error before anything is fetched', async () => {
      const file = join(work, 'layout-file');
      await writeFile(file, 'not a folder');
      const res = await cli.run(['pull', `${host}/team/app:v1`, file]);
      expect(res.code).toBe(2);
      expectOneLine(res.stderr);
      expect(res.stderr).toMatch(
        /^regauth: error: .*layout-file is a file: pull writes an OCI image layout into a folder/,
      );
    });

    it('pull into a layout whose index.json is a folder (EISDIR) names the file', async () => {
      const dir = join(work, 'bad-index');
      await mkdir(join(dir, 'index.json'), { recursive: true });
      await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
      const res = await cli.run(['pull', `${host}/team/app:v1`, dir]);
      expect(res.code).toBe(1);
      expectOneLine(res.stderr);
      expect(res.stderr).toBe(
        `regauth: error: cannot read ${join(dir, 'index.json')}: it is a folder, not a file (EISDIR); give the path of a file\n`,
      );
    });

    it('serve: a missing key file, config file or users file is named with what it is for', async () => {
      const dir = join(work, 'serve-files');
      await mkdir(dir);
      const config = join(dir, 'serve.yml');
      await writeFile(
        config,
        'listen: 127.0.0.1:0\ntoken:\n  issuer: t\n  service: s\n  key: missing-key.pem\n' +
          '  certificate: missing-cert.pem\nacl: []\n',
      );
      const noKey = await cli.run(['serve', '--config', config]);
      expect(noKey.code).toBe(1);
      expectOneLine(noKey.stderr);
      // Named like any other config error: the file, the key path, then what went wrong.
      expect(noKey.stderr).toBe(
        `regauth: error: ${config}: token.key: cannot read ${join(dir, 'missing-key.pem')}: no such file or folder (ENOENT); check the path; the folder it is in must exist\n`,
      );
      const noConfig = await cli.run(['serve', '--config', join(dir, 'nope.yml')]);
      expect(noConfig.stderr).toBe(
        `regauth: error: cannot read the config file ${join(dir, 'nope.yml')}: no such file or folder (ENOENT); check the path; the folder it is in must exist\n`,
      );
      const keygen = await cli.run([
        'keygen',
        '--key',
        join(dir, 'no', 'k.pem'),
        '--cert',
        join(dir, 'c.pem'),
      ]);
      expect(keygen.code).toBe(1);
      expect(keygen.stderr).toBe(
        `regauth: error: cannot write ${join(dir, 'no', 'k.pem')}: no such file or folder (ENOENT); check the path; the folder it is in must exist\n`,
      );
    });

    it('push from a file that is no layout says so', async () => {
      const file = join(work, 'push-file');
      await writeFile(file, 'not a layout');
      const res = await cli.run(['push', file, `${host}/team/other:v1`]);
      expect(res.code).toBe(1);
      expect(res.stderr).toBe(
        `regauth: error: ${file} is not an OCI image layout: it is a file, not a folder; give the layout's folder\n`,
      );
    });
  });

  describe('usage errors: one prefix, exit 2', () => {
    it("commander's own messages carry the prefix", async () => {
      const res = await cli.run(['pull']);
      expect(res.code).toBe(2);
      expect(res.stderr.split('\n')[0]).toBe("regauth: error: missing required argument 'ref'");
    });

    it('an invalid reference is a usage error', async () => {
      const res = await cli.run(['manifest', `${host}/Team/App:v1`]);
      expect(res.code).toBe(2);
      expect(res.stderr).toBe(
        `regauth: error: invalid reference "${host}/Team/App:v1": repository name must be lowercase (e.g. docker.io/library/alpine:3.20)\n`,
      );
    });

    it('a docker:// prefix gets "drop the prefix" advice', async () => {
      const res = await cli.run(['manifest', `docker://${host}/team/app:v1`]);
      expect(res.code).toBe(2);
      expect(res.stderr).toBe(
        `regauth: error: invalid reference "docker://${host}/team/app:v1": "docker://" is the registry transport of skopeo; ` +
          `a reference names the image alone; drop the prefix to name it in its registry: "${host}/team/app:v1"\n`,
      );
    });

    it('an oci: reference is told to give the layout folder to push or pull', async () => {
      const pull = await cli.run(['copy', `oci:${join(work, 'app')}:v1`, `${host}/team/copy:v1`]);
      expect(pull.code).toBe(2);
      expect(pull.stderr).toMatch(
        /^regauth: error: invalid reference "oci:.*": "oci:" names an OCI image layout; give the layout's folder itself to push or pull\n$/,
      );
      const push = await cli.run(['push', `oci:${join(work, 'app')}`, `${host}/team/copy:v1`]);
      expect(push.code).toBe(2);
      expect(push.stderr).toMatch(
        /^regauth: error: "oci:" is the OCI layout transport of skopeo; regauth push takes the layout's folder itself: drop the prefix/,
      );
    });

    it('--all-platforms with --format docker-archive is refused, and nothing is written', async () => {
      const out = join(work, 'all.tar');
      const res = await cli.run([
        'pull',
        `${host}/team/app:v1`,
        '--all-platforms',
        '--format',
        'docker-archive',
        '--output',
        out,
      ]);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/^regauth: error: --all-platforms cannot go into a docker archive/);
      expect((await readdir(work)).filter((f) => f.startsWith('all.tar'))).toEqual([]);
    });
  });

  describe('what push and copy print', () => {
    it('push prints the pushed reference with its digest on stdout, as crane push does', async () => {
      const res = await cli.run(['push', join(work, 'app'), `${host}/team/printed:v2`]);
      expect(res.code).toBe(0);
      expect(res.stdout.toString()).toBe(`${host}/team/printed:v2@${image.manifestDigest}\n`);
    });

    it('copy prints the destination with its digest; --json prints the summary instead', async () => {
      const res = await cli.run(['copy', `${host}/team/app:v1`, `${host}/team/copied:v3`]);
      expect(res.code).toBe(0);
      expect(res.stdout.toString()).toBe(`${host}/team/copied:v3@${image.manifestDigest}\n`);
      const json = await cli.run(['copy', '--json', `${host}/team/app:v1`, `${host}/team/copied:v4`]);
      expect(JSON.parse(json.stdout.toString()).digest).toBe(image.manifestDigest);
    });
  });
});
