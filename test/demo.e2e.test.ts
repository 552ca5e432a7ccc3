import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';

const exec = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');

/** Waits until `child`'s stdout matches `re`, or fails after `ms`. */
function waitForOutput(child: ChildProcess, re: RegExp, ms: number): Promise<string> {
  return new Promise((done, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`no ${re} within ${ms} ms:\n${out}`)), ms);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (re.test(out)) {
        clearTimeout(timer);
        done(out);
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      fail(new Error(`the demo ended early:\n${out}`));
    });
  });
}

describe('npm run demo -- --keep', () => {
  let cli: CliHome;
  let demo: ChildProcess;
  let output: string;

  beforeAll(async () => {
    cli = await createCliHome();
    demo = spawn(resolve(ROOT, 'node_modules/.bin/tsx'), ['scripts/demo.ts', '--keep'], {
      cwd: ROOT,
      env: { ...process.env, ...cli.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    output = await waitForOutput(demo, /Ctrl-C stops it/, 60_000);
  }, 70_000);

  afterAll(async () => {
    if (demo && demo.exitCode === null) {
      // SIGINT lets the demo stop the registry and the token server it started; then make sure.
      const exited = new Promise((done) => demo.once('exit', done));
      demo.kill('SIGINT');
      const timer = setTimeout(() => demo.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await cli?.dispose();
  });

  it('prints a login that works, and Ctrl-C stops the stack and removes the password file', async () => {
    const login = /^ {2}(\S+) login (\S+) -u odewahn --password-stdin < (\S+)$/m.exec(output);
    expect(login).not.toBeNull();
    const [, bin, host, passwordFile] = login ?? [];
    expect(bin).toBe('./bin/regauth');
    const res = await exec(
      'bash',
      ['-c', `${bin} login ${host} -u odewahn --password-stdin < '${passwordFile}'`],
      {
        cwd: ROOT,
        env: cli.env,
      },
    );
    expect(res.stderr).toMatch(/Login Succeeded/);
    const manifest = /^ {2}(\S+ manifest \S+)$/m.exec(output)?.[1] ?? '';
    const pulled = await exec('bash', ['-c', manifest], { cwd: ROOT, env: cli.env });
    expect(JSON.parse(pulled.stdout).schemaVersion).toBe(2);

    const exited = new Promise<number | null>((done) => demo.once('exit', (code) => done(code)));
    demo.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(existsSync(passwordFile ?? '')).toBe(false);
  }, 60_000);
});
