import { execFile, spawnSync } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOciLayout } from './harness/oci-layout.js';
import { freePort, type Spawned, spawnLogged, waitFor } from './harness/processes.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { htpasswdLine, REGAUTH_BIN } from './harness/token-server.js';

const exec = promisify(execFile);
const README = resolve(import.meta.dirname, '../README.md');
const PASSWORDS = { alice: 'alice-readme-pw-5', admin: 'admin-readme-pw-9' };

/** The fenced block (```lang) that comes first after `marker` in the README. */
function blockAfter(readme: string, marker: string, lang: string): string {
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README: "${marker}" not found`);
  const m = new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, 'm').exec(readme.slice(at));
  if (!m?.[1]) throw new Error(`README: no ${lang} block after "${marker}"`);
  return m[1];
}

/** Shell lines of a block, comments and blank lines left out. */
function commands(block: string): string[] {
  return block
    .split('\n')
    .map((l) => l.replace(/\s+#\s.*$/, ''))
    .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
}

/**
 * The README's token server, registry and CLI examples, pasted as they are (ports moved to free
 * ones): they must keep working, so the README cannot drift from the code.
 */
describe('the README, pasted', () => {
  let cli: CliHome;
  let dir: string;
  let bin: string;
  let registryPort: number;
  const running: Spawned[] = [];
  let ports: (text: string) => string;

  beforeAll(async () => {
    const readme = await readFile(README, 'utf8');
    cli = await createCliHome();
    dir = join(cli.dir, 'local');
    bin = join(cli.dir, 'bin');
    await mkdir(dir);
    await mkdir(bin);
    await symlink(REGAUTH_BIN, join(bin, 'regauth'));
    const tokenPort = await freePort();
    registryPort = await freePort();
    ports = (text) =>
      text
        .replaceAll('127.0.0.1:5001', `127.0.0.1:${tokenPort}`)
        .replaceAll('127.0.0.1:5000', `127.0.0.1:${registryPort}`)
        .replaceAll('localhost:5000', `localhost:${registryPort}`);
    await writeFile(
      join(dir, 'serve.yml'),
      ports(blockAfter(readme, '`serve.yml` (paths are relative', 'yaml')),
    );
    await writeFile(
      join(dir, 'registry.yml'),
      ports(blockAfter(readme, "The registry's side, whole", 'yaml')),
    );

    const setup = commands(blockAfter(readme, 'A local registry that trusts it', 'sh'));
    const keygen = setup.find((l) => l.startsWith('regauth keygen'));
    expect(keygen).toBeDefined();
    await exec('bash', ['-c', keygen ?? ''], {
      cwd: dir,
      env: { ...cli.env, PATH: `${bin}:${cli.env.PATH}` },
    });
    // htpasswd -B (apache2-utils) is not installed here; these are the lines it writes.
    expect(setup.filter((l) => l.startsWith('htpasswd')).map((l) => l.split(' ').at(-1))).toEqual([
      'alice',
      'admin',
    ]);
    await writeFile(
      join(dir, 'users.htpasswd'),
      `${htpasswdLine('alice', PASSWORDS.alice)}\n${htpasswdLine('admin', PASSWORDS.admin)}\n`,
    );

    for (const line of setup.filter((l) => / serve /.test(l))) {
      const spawned = spawnLogged('bash', ['-c', `cd '${dir}' && exec ${line}`], {
        ...cli.env,
        PATH: `${bin}:${cli.env.PATH}`,
      });
      running.push(spawned);
    }
    expect(running).toHaveLength(2);
    for (const spawned of running) {
      await waitFor('the README stack', spawned, async () => {
        const statuses = await Promise.all(
          [`http://127.0.0.1:${tokenPort}/healthz`, `http://127.0.0.1:${registryPort}/v2/`].map((u) =>
            fetch(u).then(
              async (r) => {
                await r.arrayBuffer();
                return r.status;
              },
              () => 0,
            ),
          ),
        );
        return statuses[0] === 200 && statuses[1] === 401;
      });
    }
    // `./layout` as `regauth pull alpine:3.20 ./layout` would leave it (no Docker Hub in tests).
    await buildOciLayout(join(dir, 'layout'), { tag: '3.20' });
  });

  afterAll(async () => {
    await Promise.all(running.map((s) => s.stop()));
    await cli?.dispose();
  });

  it('serves a token server without warnings about its own sample', () => {
    const serve = running[0]?.output() ?? '';
    expect(serve).not.toMatch(/"level":"(warn|error)"/);
  });

  it("runs the CLI examples against that registry, in the README's order", async () => {
    const readme = await readFile(README, 'utf8');
    const block = blockAfter(readme, '## The CLI', 'sh');
    const local = commands(block.slice(block.indexOf('# Against the local registry'))).filter(
      // Docker Hub and other hosts are not reachable from tests; `…` stands for a digest.
      (l) => !/alpine|registry\.example\.com|…/.test(l),
    );
    expect(local.length).toBeGreaterThan(10);
    for (const line of local) {
      const res = await exec('bash', ['-c', ports(line)], {
        cwd: dir,
        env: { ...cli.env, PATH: `${bin}:${cli.env.PATH}`, PW: PASSWORDS.alice, ADMIN_PW: PASSWORDS.admin },
      }).then(
        (r) => ({ code: 0, ...r }),
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
      expect(`${line}\n${res.stderr}`).not.toMatch(/regauth: error|denied/);
      expect(res.code, `${line}\n${res.stderr}`).toBe(0);
    }
  });

  it('runs the --help examples that name the local registry', async () => {
    const env = {
      ...cli.env,
      PATH: `${bin}:${cli.env.PATH}`,
      PW: PASSWORDS.alice,
      ADMIN_PW: PASSWORDS.admin,
    };
    await writeFile(join(dir, 'admin-password.txt'), `${PASSWORDS.admin}\n`);
    const hasJq = spawnSync('sh', ['-c', 'command -v jq']).status === 0;
    // An order in which each example finds what it needs (tag and untag run once they exist).
    const order = [
      'login',
      'push',
      'tag',
      'manifest',
      'digest',
      'config',
      'token',
      'tags',
      'catalog',
      'blob',
      'pull',
      'copy',
      'referrers',
      'untag',
      'delete',
      'logout',
    ];
    let ran = 0;
    for (const command of order) {
      const help = await exec(REGAUTH_BIN, [command, '--help'], { env }).then(
        (r) => r.stdout,
        () => '',
      );
      const examples = (help.split(/^Examples:$/m)[1] ?? '')
        .split('\n')
        .map((l) => l.replace(/\s+#\s.*$/, '').trim())
        .filter((l) => l.includes('localhost:5000') && !/alpine|registry\.example\.com/.test(l))
        .filter((l) => hasJq || !l.includes('jq'));
      for (const line of examples) {
        const res = await exec('bash', ['-c', ports(line)], { cwd: dir, env }).then(
          (r) => ({ code: 0, ...r }),
          (err: { code: number; stdout: string; stderr: string }) => err,
        );
        expect(res.code, `${line}\n${res.stderr}`).toBe(0);
        ran++;
      }
    }
    expect(ran).toBeGreaterThan(15);
  });
});
