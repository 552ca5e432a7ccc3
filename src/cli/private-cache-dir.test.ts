import { chmodSync, chownSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ownedPrivately,
  ownedPrivatelyUpTo,
  preparePrivateDir,
  regauthCacheDir,
} from './private-cache-dir.js';

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
    const dir = join(root, 'cache', 'regauth', 'v8');
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

  it('checks every folder up to `top`, and makes nothing below one others can write', () => {
    const top = join(root, 'regauth');
    const dir = join(top, 'v8', 'v24.0.0-x64');
    expect(preparePrivateDir(dir, top)).toBe(true);
    expect(ownedPrivatelyUpTo(dir, top)).toBe(true);
    // Two levels up, out of the parent's reach: the parent alone would pass.
    chmodSync(top, 0o777);
    expect(ownedPrivately(dir) && ownedPrivately(join(top, 'v8'))).toBe(true);
    expect(ownedPrivatelyUpTo(dir, top)).toBe(false);
    expect(preparePrivateDir(dir, top)).toBe(false);
    const other = join(top, 'v8', 'v22.0.0-x64');
    expect(preparePrivateDir(other, top)).toBe(false);
    expect(existsSync(other)).toBe(false);
    rmSync(join(top, 'v8'), { recursive: true });
    expect(preparePrivateDir(dir, top)).toBe(false);
    expect(existsSync(join(top, 'v8'))).toBe(false);
    chmodSync(top, 0o700);
    expect(preparePrivateDir(dir, top)).toBe(true);
  });

  it('is false for a `top` that is not above the folder', () => {
    const dir = join(root, 'a', 'b');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    expect(ownedPrivatelyUpTo(dir, join(root, 'elsewhere'))).toBe(false);
    expect(ownedPrivatelyUpTo(dir, join(root, 'a'))).toBe(true);
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
