import { chmod, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TIMING_LINE_PREFIX } from '../src/cli/start-up-timing.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';

describe("the CLI's V8 code cache", () => {
  let cli: CliHome;
  let cacheDir: string;
  let expectedHelp: string;

  beforeAll(async () => {
    cli = await createCliHome();
    cacheDir = join(cli.env.XDG_CACHE_HOME ?? '', 'regauth', 'v8', `${process.version}-${process.arch}`);
    expectedHelp = (await cli.run(['tags', '--help'], { env: { REGAUTH_TIMING: '0' } })).stdout.toString();
  });
  afterAll(() => cli?.dispose());

  /** `regauth tags --help` (main, program) with the timing diagnostic: its code cache outcomes. */
  async function help(): Promise<Record<string, string>> {
    const res = await cli.run(['tags', '--help'], { env: { REGAUTH_TIMING: '1' } });
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toBe(expectedHelp);
    const line = res.stderr
      .toString()
      .split('\n')
      .find((l) => l.startsWith(TIMING_LINE_PREFIX));
    return (
      (JSON.parse(line?.slice(TIMING_LINE_PREFIX.length) ?? '{}') as { codeCache?: Record<string, string> })
        .codeCache ?? {}
    );
  }

  async function cacheFile(bundle: string): Promise<string> {
    const name = (await readdir(cacheDir)).find((f) => f.startsWith(`${bundle}-`) && f.endsWith('.bin'));
    if (name === undefined) throw new Error(`no cache file for ${bundle} in ${cacheDir}`);
    return join(cacheDir, name);
  }

  it('is written by the first run and taken by the next', async () => {
    await rm(cacheDir, { recursive: true, force: true });
    expect(await help()).toEqual({ 'program.cjs': 'missing' });
    expect(await help()).toEqual({ 'program.cjs': 'accepted' });
  });

  it('is not even loaded by --version, which needs only the main bundle', async () => {
    await rm(cacheDir, { recursive: true, force: true });
    const res = await cli.run(['--version'], { env: { REGAUTH_TIMING: '1' } });
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toMatch(/^regauth \d+\.\d+\.\d+ \(node v/);
    const line = res.stderr
      .toString()
      .split('\n')
      .find((l) => l.startsWith(TIMING_LINE_PREFIX));
    const timing = JSON.parse(line?.slice(TIMING_LINE_PREFIX.length) ?? '{}') as {
      loads?: Record<string, number>;
      codeCache?: unknown;
    };
    expect(Object.keys(timing.loads ?? {})).toEqual(['main.cjs']);
    expect(timing.codeCache).toBeUndefined();
    await expect(readdir(cacheDir)).rejects.toThrow(/ENOENT/);
  });

  it('ignores a damaged cache file and writes it again', async () => {
    await help();
    const file = await cacheFile('program.cjs');
    await writeFile(file, 'not V8 code at all');
    expect((await help())['program.cjs']).toBe('rejected');
    expect((await readFile(file)).toString()).not.toBe('not V8 code at all');
    expect((await help())['program.cjs']).toBe('accepted');
  });

  it("refuses a cache made by another Node's V8 harmlessly and replaces it", async () => {
    await help();
    const file = await cacheFile('program.cjs');
    // V8's code cache header: a magic number, then the hash of the V8 version that wrote it.
    const data = await readFile(file);
    data.writeUInt32LE((data.readUInt32LE(4) ^ 0xffffffff) >>> 0, 4);
    await writeFile(file, data);
    expect((await help())['program.cjs']).toBe('rejected');
    expect((await help())['program.cjs']).toBe('accepted');
  });

  it('runs as before when the cache folder cannot be written', async () => {
    // XDG_CACHE_HOME is a file: nothing can be created under it.
    const blocked = join(cli.dir, 'not-a-folder');
    await writeFile(blocked, '');
    for (let i = 0; i < 2; i++) {
      const res = await cli.run(['tags', '--help'], { env: { XDG_CACHE_HOME: blocked } });
      expect(res.code).toBe(0);
      expect(res.stdout.toString()).toBe(expectedHelp);
      expect(res.stderr.toString()).toBe('');
    }
  });

  it('is not read when a folder above it, up to the regauth folder, is writable by others', async () => {
    await help();
    const regauthDir = join(cacheDir, '..', '..');
    await chmod(regauthDir, 0o777);
    try {
      expect(await help()).toEqual({ 'program.cjs': 'missing' });
    } finally {
      await chmod(regauthDir, 0o700);
    }
    expect(await help()).toEqual({ 'program.cjs': 'accepted' });
  });

  it('is not read from a folder others can write', async () => {
    await help();
    await chmod(cacheDir, 0o777);
    try {
      expect(await help()).toEqual({ 'program.cjs': 'missing' });
    } finally {
      await chmod(cacheDir, 0o700);
    }
  });
});
