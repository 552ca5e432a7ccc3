import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/** The CLI from a copy of bin/ and dist/cli-bundle/ that a test may damage. */
describe('the CLI with a damaged install', () => {
  let copy: string;

  beforeAll(async () => {
    copy = await mkdtemp(join(tmpdir(), 'regauth-broken-install-'));
    await cp(join(ROOT, 'bin'), join(copy, 'bin'), { recursive: true });
    await cp(join(ROOT, 'dist', 'cli-bundle'), join(copy, 'dist', 'cli-bundle'), { recursive: true });
  });
  afterAll(() => rm(copy, { recursive: true, force: true }));

  const run = (args: readonly string[]) =>
    spawnSync(process.execPath, [join(copy, 'bin', 'regauth'), ...args], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: process.env.PATH, HOME: join(copy, 'home') },
    });

  it('says in one line that a bundle failed to load, without a stack trace (one with --debug)', async () => {
    const program = join(copy, 'dist', 'cli-bundle', 'program.cjs');
    await writeFile(program, "throw new Error('this bundle is damaged');\n");
    const res = run(['tags', '--help']);
    expect(res.status).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toBe(
      'regauth: error: this bundle is damaged\n(an unexpected failure; run with --debug for details)\n',
    );
    const debug = run(['tags', '--help', '--debug']);
    expect(debug.status).toBe(1);
    expect(debug.stderr).toMatch(
      /^regauth: error: this bundle is damaged\nError: this bundle is damaged\n {4}at /,
    );
    // --version needs only the main bundle.
    expect(run(['--version']).stdout).toMatch(/^regauth \d+\.\d+\.\d+ \(node v/);
  });

  it('says how to build a checkout whose bundle is missing', async () => {
    await rm(join(copy, 'dist', 'cli-bundle', 'program.cjs'), { force: true });
    const res = run(['tags', '--help']);
    expect(res.status).toBe(1);
    expect(res.stderr).toBe(
      'regauth: dist/ is missing: run `npm install` (or `npm run build`) in the checkout first\n',
    );
    await rm(dirname(join(copy, 'dist', 'cli-bundle', 'main.cjs')), { recursive: true, force: true });
    expect(run(['--version']).stderr).toBe(
      'regauth: dist/ is missing: run `npm install` (or `npm run build`) in the checkout first\n',
    );
  });
});
