import { chmodSync, chownSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ownedPrivately, preparePrivateDir, regauthCacheDir } from './private-cache-dir.js';

const isRoot = process.getuid?.() === 0;

describe('regauthCacheDir', () => {
  it('is under XDG_CACHE_HOME, else under HOME/.cache', () => {
    expect(regauthCacheDir('x', { XDG_CACHE_HOME: '/c', HOME: '/h' })).toBe('/c/regauth/x');
    expect(regauthCacheDir('x', { HOME: '/h' })).toBe('/h/.cache/regauth/x');
  });
});

describe('preparePrivateDir', () => {
  let root: string;

  beforeEach(() => {
    root = join(tmpdir(), `regauth-private-dir-${process.pid}-${Math.random().toString(16).slice(2)}`);
    mkdirSync(root, { mode: 0o700 });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('makes a missing folder, and its missing parents, for this user alone', () => {
    const dir = join(root, 'cache', 'regauth', 'node-compile-cache');
    expect(preparePrivateDir(dir)).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(root, 'cache', 'regauth')).mode & 0o777).toBe(0o700);
    expect(preparePrivateDir(dir)).toBe(true);
  });

  it('refuses a folder others can write, or one inside a parent others can write', () => {
    const dir = join(root, 'regauth', 'cache');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o777);
    expect(ownedPrivately(dir)).toBe(false);
    expect(preparePrivateDir(dir)).toBe(false);
    chmodSync(dir, 0o700);
    chmodSync(join(root, 'regauth'), 0o775);
    expect(preparePrivateDir(dir)).toBe(false);
  });

  it.skipIf(!isRoot)("makes nothing below a folder of another user's (root with a user's HOME)", () => {
    const home = join(root, 'home');
    mkdirSync(home, { mode: 0o755 });
    chownSync(home, 65534, 65534);
    const dir = join(home, '.cache', 'regauth', 'v8');
    expect(preparePrivateDir(dir)).toBe(false);
    expect(() => statSync(join(home, '.cache'))).toThrow(/ENOENT/);
  });
});
