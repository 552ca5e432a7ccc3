import { chmodSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CodeCache, codeCacheDir, installCodeCache } from './code-cache.js';

describe('installCodeCache', () => {
  let root: string;
  let bundleDir: string;
  let cacheDir: string;
  let installed: CodeCache | undefined;

  beforeEach(() => {
    root = join(tmpdir(), `regauth-code-cache-${process.pid}-${Math.random().toString(16).slice(2)}`);
    bundleDir = join(root, 'bundle');
    cacheDir = join(root, 'cache', 'v8');
    mkdirSync(join(bundleDir, 'commands'), { recursive: true });
    writeFileSync(
      join(bundleDir, 'main.cjs'),
      "const { twice } = require('./commands/twice.cjs');\nexports.run = (n) => `ran ${twice(n)} in ${require('node:path').basename(__dirname)}`;\n",
    );
    writeFileSync(join(bundleDir, 'commands', 'twice.cjs'), 'exports.twice = (n) => n * 2;\n');
  });

  afterEach(() => {
    installed?.uninstall();
    installed = undefined;
    rmSync(root, { recursive: true, force: true });
  });

  /** One "process": a fresh require of the bundle through a fresh cache, then the exit's flush. */
  function load(options: { cacheDir?: string } = {}): { result: string; cache: CodeCache } {
    installed?.uninstall();
    const cache = installCodeCache({ bundleDir, cacheDir: options.cacheDir ?? cacheDir });
    installed = cache;
    const require = createRequire(join(bundleDir, 'entry.cjs'));
    for (const key of Object.keys(require.cache)) if (key.startsWith(bundleDir)) delete require.cache[key];
    const main = require(join(bundleDir, 'main.cjs')) as { run(n: number): string };
    const result = main.run(21);
    cache.flush();
    return { result, cache };
  }

  const outcomesOf = (cache: CodeCache) =>
    Object.fromEntries(
      [...cache.outcomes].map(([file, outcome]) => [file.slice(bundleDir.length + 1), outcome]),
    );

  // Whether V8 takes or refuses a cache is seen only in a new process (within one, V8 reuses what
  // it compiled): test/cli-code-cache.e2e.test.ts runs the CLI for that.
  it('writes a cache file for each bundle a run compiled', () => {
    const first = load();
    expect(first.result).toBe('ran 42 in bundle');
    expect(outcomesOf(first.cache)).toEqual({ 'main.cjs': 'missing', 'commands/twice.cjs': 'missing' });
    const files = readdirSync(cacheDir);
    expect(files.filter((f) => f.endsWith('.bin'))).toHaveLength(2);
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('runs the bundles when the cache folder cannot be created', () => {
    writeFileSync(join(root, 'a-file'), '');
    const unwritable = join(root, 'a-file', 'v8');
    const first = load({ cacheDir: unwritable });
    expect(first.result).toBe('ran 42 in bundle');
    expect(outcomesOf(load({ cacheDir: unwritable }).cache)).toEqual({
      'main.cjs': 'missing',
      'commands/twice.cjs': 'missing',
    });
  });

  it('neither reads nor writes a cache folder others can write', () => {
    load();
    chmodSync(cacheDir, 0o777);
    const shared = load();
    expect(shared.result).toBe('ran 42 in bundle');
    expect(outcomesOf(shared.cache)).toEqual({ 'main.cjs': 'missing', 'commands/twice.cjs': 'missing' });
    expect(readdirSync(cacheDir).filter((f) => f.endsWith('.bin'))).toHaveLength(2);
  });

  it('never gives a rebuilt bundle the code of the build before it', () => {
    load();
    // Same length, other code: V8 alone would take the old cache (it checks the source's length).
    writeFileSync(join(bundleDir, 'commands', 'twice.cjs'), 'exports.twice = (n) => n * 3;\n');
    const rebuilt = load();
    expect(rebuilt.result).toBe('ran 63 in bundle');
    expect(outcomesOf(rebuilt.cache)['commands/twice.cjs']).toBe('missing');
    // The earlier build's file is gone; the new one is used next time.
    expect(readdirSync(cacheDir).filter((f) => f.startsWith('commands_twice.cjs-'))).toHaveLength(1);
    expect(load().result).toBe('ran 63 in bundle');
  });

  it('leaves files outside the bundle folder to Node', () => {
    const other = join(root, 'other.cjs');
    writeFileSync(other, 'exports.x = 1;\n');
    installed = installCodeCache({ bundleDir, cacheDir });
    expect((createRequire(other)(other) as { x: number }).x).toBe(1);
    expect(installed.outcomes.size).toBe(0);
  });
});

describe('codeCacheDir', () => {
  it('keys the folder by Node version and architecture under the XDG cache', () => {
    expect(codeCacheDir({ XDG_CACHE_HOME: '/x/cache', HOME: '/home/u' })).toBe(
      join('/x/cache', 'regauth', 'v8', `${process.version}-${process.arch}`),
    );
    expect(codeCacheDir({ HOME: '/home/u' })).toBe(
      join('/home/u', '.cache', 'regauth', 'v8', `${process.version}-${process.arch}`),
    );
  });
});
