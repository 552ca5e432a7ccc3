import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { REGAUTH_BIN } from './harness/token-server.js';

const exec = promisify(execFile);

/** The command names `regauth --help` lists. */
function commandsOf(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1] ?? '').filter((c) => c !== 'help');
}

/** Whether a shell is installed (they are never installed for the tests). */
function installed(shell: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${shell}`]).status === 0;
}

describe('help, version and shell completion', () => {
  let cli: CliHome;
  let commands: string[];
  let work: string;
  let bashScript: string;

  beforeAll(async () => {
    cli = await createCliHome();
    commands = commandsOf((await cli.run(['--help'])).stdout.toString());
    work = join(cli.dir, 'work');
    await mkdir(join(work, 'layout'), { recursive: true });
    await writeFile(join(work, 'ca.pem'), '');
    bashScript = join(cli.dir, 'regauth.bash');
    await writeFile(bashScript, (await cli.run(['completion', 'bash'])).stdout);
  });
  afterAll(() => cli?.dispose());

  /** What bash's completion offers for the words typed so far (the last one is being completed). */
  async function complete(...words: string[]): Promise<string[]> {
    const array = ['regauth', ...words].map((w) => `'${w}'`).join(' ');
    const { stdout } = await exec(
      'bash',
      [
        '-c',
        `source '${bashScript}'; COMP_WORDS=(${array}); COMP_CWORD=${words.length}; _regauth; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      { cwd: work },
    );
    return stdout.split('\n').filter((l) => l !== '');
  }

  it('prints the Node version and platform with its own', async () => {
    const res = await cli.run(['--version']);
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toBe(
      `regauth 0.1.0 (node ${process.version}, ${process.platform}/${process.arch})\n`,
    );
  });

  it('answers --version without the parser exactly as the parser does', async () => {
    // `--debug --version` goes through commander; a leading -V/--version is answered by main alone.
    const parsed = await cli.run(['--debug', '--version']);
    expect(parsed.code).toBe(0);
    expect(parsed.stdout.toString()).toMatch(/^regauth 0\.1\.0 \(node v\d+/);
    for (const argv of [
      ['--version'],
      ['-V'],
      ['--version', 'manifest', 'x'],
      ['-V', '--nonsense'],
      ['tags', '--version'],
    ]) {
      const res = await cli.run(argv);
      expect({ argv, code: res.code, stdout: res.stdout.toString(), stderr: res.stderr.toString() }).toEqual({
        argv,
        code: 0,
        stdout: parsed.stdout.toString(),
        stderr: parsed.stderr.toString(),
      });
    }
  });

  it('ends --version quietly with status 0 when the reader is gone (EPIPE)', async () => {
    for (const flag of ['--version', '--help']) {
      const child = spawn(REGAUTH_BIN, [flag], { env: cli.env, stdio: ['ignore', 'pipe', 'pipe'] });
      // The read end closes before the CLI writes its line.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect({ flag, code, stderr }).toEqual({ flag, code: 0, stderr: '' });
    }
  });

  it("shows only logout's own options in logout --help", async () => {
    const help = (await cli.run(['logout', '--help'])).stdout.toString();
    expect(help).toContain('--authfile <file>');
    for (const other of [
      '--insecure',
      '--trace',
      '--username',
      '--password-stdin',
      '--ca-file',
      '--no-token-cache',
    ]) {
      expect(help).not.toContain(other);
    }
  });

  it('gives every command two or three examples in its --help', async () => {
    expect(commands).toEqual(expect.arrayContaining(['manifest', 'pull', 'push', 'logout', 'completion']));
    for (const command of commands) {
      const help = (await cli.run([command, '--help'])).stdout.toString();
      const examples = (help.split(/^Examples:$/m)[1] ?? '').split('\n').filter((l) => l.startsWith('  '));
      expect(examples.length, `${command} --help examples`).toBeGreaterThanOrEqual(2);
      expect(examples.length, `${command} --help examples`).toBeLessThanOrEqual(3);
      expect(
        examples.every((l) => l.includes(`regauth ${command}`) || l.includes('regauth completion')),
        `${command}: ${examples}`,
      ).toBe(true);
    }
  });

  it('generates bash, zsh and fish scripts that name every command', async () => {
    for (const shell of ['bash', 'zsh', 'fish']) {
      const res = await cli.run(['completion', shell]);
      expect(res.code).toBe(0);
      const script = res.stdout.toString();
      for (const command of commands)
        expect(script, `${shell}: ${command}`).toMatch(new RegExp(`\\b${command}\\b`));
    }
    const bad = await cli.run(['completion', 'tcsh']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bash, zsh, fish/);
  });

  it('completes commands, options and file names in bash', async () => {
    expect(await complete('pu')).toEqual(['pull', 'push']);
    expect(await complete('logout', '--')).toEqual(['--authfile', '--help']);
    expect(await complete('manifest', '--ca')).toEqual(['--ca-file']);
    expect(await complete('manifest', '--ca-file', '')).toEqual(expect.arrayContaining(['ca.pem', 'layout']));
    expect(await complete('push', 'la')).toEqual(['layout']);
    expect(await complete('pull', '--format', '')).toEqual(['oci', 'docker-archive']);
    expect(await complete('completion', '')).toEqual(['bash', 'zsh', 'fish']);
    // A reference is not a file name: nothing is offered.
    expect(await complete('manifest', 'la')).toEqual([]);
  });

  it.runIf(installed('zsh'))('generates a zsh script that zsh parses', async () => {
    const file = join(cli.dir, '_regauth');
    await writeFile(file, (await cli.run(['completion', 'zsh'])).stdout);
    await exec('zsh', ['-n', file]);
  });

  it.runIf(installed('fish'))('generates a fish script that completes commands in fish', async () => {
    const file = join(cli.dir, 'regauth.fish');
    await writeFile(file, (await cli.run(['completion', 'fish'])).stdout);
    const { stdout } = await exec('fish', ['-c', `source '${file}'; complete -C 'regauth pu'`]);
    expect(stdout).toMatch(/^pull\b/m);
    expect(stdout).toMatch(/^push\b/m);
  });
});
