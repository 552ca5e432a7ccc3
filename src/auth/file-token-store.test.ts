import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_LOOPBACK_SCHEMES } from './challenge-cache.js';
import { defaultTokenStorePath, FileTokenStore } from './file-token-store.js';
import type { Challenge } from './parse-challenge.js';

const T0 = 1_700_000_000_000;
let dir: string;
let file: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regauth-tokens-'));
  file = join(dir, 'cache', 'regauth', 'tokens.json');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readStored(): Promise<{
  version: number;
  tokens: Record<string, unknown>;
  challenges: unknown;
}> {
  return JSON.parse(await readFile(file, 'utf8'));
}

const challenge: Challenge = {
  scheme: 'bearer',
  params: { realm: 'https://auth.example/token', service: 'registry.example' },
};

describe('FileTokenStore', () => {
  it('creates the file with mode 0600 in a directory with mode 0700', async () => {
    new FileTokenStore(file, { now: () => T0 }).saveToken('k', 'registry.example', {
      token: 't',
      expiresAt: T0 + 60_000,
    });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'cache', 'regauth'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'cache'))).mode & 0o777).toBe(0o700);
  });

  it('gives another instance the tokens and challenges one instance saved', () => {
    const a = new FileTokenStore(file, { now: () => T0 });
    a.saveToken('key-1', 'registry.example', { token: 'tok-1', expiresAt: T0 + 300_000 });
    a.saveChallenge('https://registry.example', challenge);
    const b = new FileTokenStore(file, { now: () => T0 + 1000 });
    expect(b.loadToken('key-1')).toEqual({ token: 'tok-1', expiresAt: T0 + 300_000 });
    expect(b.loadChallenge('https://registry.example')).toEqual(challenge);
    expect(b.loadToken('key-2')).toBeUndefined();
    expect(b.loadChallenge('https://other.example')).toBeUndefined();
  });

  it('never writes a refresh token to the file', async () => {
    new FileTokenStore(file, { now: () => T0 }).saveToken('k', 'registry.example', {
      token: 'tok',
      expiresAt: T0 + 300_000,
      refreshToken: 'refresh-secret-61d0',
    });
    expect(await readFile(file, 'utf8')).not.toContain('refresh-secret-61d0');
  });

  it('does not return an expired token, and drops expired tokens from the file on the next save', async () => {
    const a = new FileTokenStore(file, { now: () => T0 });
    a.saveToken('short', 'registry.example', { token: 'short-lived', expiresAt: T0 + 1000 });
    a.saveToken('long', 'registry.example', { token: 'long-lived', expiresAt: T0 + 300_000 });
    const later = new FileTokenStore(file, { now: () => T0 + 5000 });
    expect(later.loadToken('short')).toBeUndefined();
    expect(later.loadToken('long')?.token).toBe('long-lived');
    expect(Object.keys((await readStored()).tokens).sort()).toEqual(['long', 'short']);
    later.saveToken('new', 'other.example', { token: 'new', expiresAt: T0 + 300_000 });
    expect(Object.keys((await readStored()).tokens).sort()).toEqual(['long', 'new']);
  });

  it("forgets only the given registry's tokens and says how many", async () => {
    const a = new FileTokenStore(file, { now: () => T0 });
    a.saveToken('a1', 'registry.example', { token: 'a1', expiresAt: T0 + 300_000 });
    a.saveToken('a2', 'registry.example', { token: 'a2', expiresAt: T0 + 300_000 });
    a.saveToken('b1', 'other.example', { token: 'b1', expiresAt: T0 + 300_000 });
    expect(a.forgetRegistry('registry.example')).toBe(2);
    expect(a.forgetRegistry('registry.example')).toBe(0);
    const b = new FileTokenStore(file, { now: () => T0 });
    expect(b.loadToken('a1')).toBeUndefined();
    expect(b.loadToken('a2')).toBeUndefined();
    expect(b.loadToken('b1')?.token).toBe('b1');
    expect(Object.keys((await readStored()).tokens)).toEqual(['b1']);
  });

  it.each([
    ['not JSON', '{"version":1,"tokens":'],
    [
      'version 1 (tokens keyed by user name)',
      '{"version":1,"tokens":{"k":{"registry":"r","token":"old","expiresAt":9e15}},"challenges":{}}',
    ],
    [
      'no salt',
      '{"version":2,"tokens":{"k":{"registry":"r","token":"old","expiresAt":9e15}},"challenges":{}}',
    ],
    ['JSON null', 'null'],
    [
      'damaged entries',
      '{"version":2,"salt":"AAAAAAAAAAAAAAAAAAAAAA==","tokens":{"k":null,"j":"x","i":{"token":5}},"challenges":{"o":null}}',
    ],
  ])('ignores a file holding %s, then rewrites it', async (_what, content) => {
    await mkdir(join(dir, 'cache', 'regauth'), { recursive: true });
    await writeFile(file, content);
    const store = new FileTokenStore(file, { now: () => T0 });
    expect(store.loadToken('k')).toBeUndefined();
    expect(store.loadToken('i')).toBeUndefined();
    expect(store.loadChallenge('o')).toBeUndefined();
    store.saveToken('fresh', 'registry.example', { token: 'fresh-token', expiresAt: T0 + 300_000 });
    const stored = await readStored();
    expect(stored.version).toBe(2);
    expect(stored.tokens).toEqual({
      fresh: { registry: 'registry.example', token: 'fresh-token', expiresAt: T0 + 300_000 },
    });
    expect(new FileTokenStore(file, { now: () => T0 }).loadToken('fresh')?.token).toBe('fresh-token');
  });

  it('forgets the challenges of the origins it is given, and one challenge on its own', () => {
    const a = new FileTokenStore(file, { now: () => T0 });
    a.saveChallenge('https://registry.example', challenge);
    a.saveChallenge('http://registry.example', challenge);
    a.saveChallenge('https://other.example', challenge);
    a.forgetRegistry('registry.example', ['https://registry.example', 'http://registry.example']);
    const b = new FileTokenStore(file, { now: () => T0 });
    expect(b.loadChallenge('https://registry.example')).toBeUndefined();
    expect(b.loadChallenge('http://registry.example')).toBeUndefined();
    expect(b.loadChallenge('https://other.example')).toEqual(challenge);
    b.forgetChallenge('https://other.example');
    expect(
      new FileTokenStore(file, { now: () => T0 }).loadChallenge('https://other.example'),
    ).toBeUndefined();
  });

  it('keeps one salt for the hashes in token keys, and another file gets another salt', () => {
    const writer = new FileTokenStore(file, { now: () => T0 });
    const salt = Buffer.from(writer.keySalt());
    writer.saveChallenge('https://registry.example', challenge);
    // Written with the first save; every later process reads the same one.
    expect(Buffer.from(new FileTokenStore(file, { now: () => T0 }).keySalt())).toEqual(salt);
    expect(Buffer.from(new FileTokenStore(file, { now: () => T0 }).keySalt())).toEqual(salt);
    const other = new FileTokenStore(join(dir, 'other', 'tokens.json'), { now: () => T0 }).keySalt();
    expect(Buffer.from(other).equals(salt)).toBe(false);
    expect(salt.length).toBe(16);
  });

  describe('refuses a cache that someone else could have written (its challenges decide where passwords go)', () => {
    const planted = JSON.stringify({
      version: 2,
      salt: Buffer.alloc(16, 7).toString('base64'),
      challenges: {
        'https://registry.example': { scheme: 'bearer', params: { realm: 'https://evil.example/token' } },
      },
      tokens: {},
    });

    async function plant(): Promise<string> {
      const folder = join(dir, 'cache', 'regauth');
      await mkdir(folder, { recursive: true, mode: 0o700 });
      await writeFile(file, planted, { mode: 0o600 });
      return folder;
    }

    it('a folder writable by others: neither read nor written, and it says why once', async () => {
      const folder = await plant();
      await chmod(folder, 0o777);
      const warnings: string[] = [];
      const store = new FileTokenStore(file, { now: () => T0, onWarning: (m) => warnings.push(m) });
      expect(store.loadChallenge('https://registry.example')).toBeUndefined();
      store.saveToken('k', 'registry.example', { token: 't', expiresAt: T0 + 300_000 });
      store.saveChallenge('https://other.example', challenge);
      expect(await readFile(file, 'utf8')).toBe(planted);
      expect(warnings).toEqual([
        `not using the token cache: the token cache folder ${folder} is writable by others (mode 777); make it private with chmod go-w`,
      ]);
      // It still works within the process.
      expect(store.loadToken('k')?.token).toBe('t');
    });

    it('a file writable by its group', async () => {
      await plant();
      await chmod(file, 0o620);
      const warnings: string[] = [];
      const store = new FileTokenStore(file, { now: () => T0, onWarning: (m) => warnings.push(m) });
      expect(store.loadChallenge('https://registry.example')).toBeUndefined();
      expect(warnings[0]).toMatch(/token cache file .* is writable by others \(mode 620\)/);
    });

    it.skipIf(process.getuid?.() !== 0)('a file that belongs to another user', async () => {
      await plant();
      await chown(file, 65534, 65534);
      const warnings: string[] = [];
      const store = new FileTokenStore(file, { now: () => T0, onWarning: (m) => warnings.push(m) });
      expect(store.loadChallenge('https://registry.example')).toBeUndefined();
      expect(warnings[0]).toMatch(/token cache file .* belongs to another user \(uid 65534\)/);
    });

    it('a private folder and file are used', async () => {
      await plant();
      const warnings: string[] = [];
      const store = new FileTokenStore(file, { now: () => T0, onWarning: (m) => warnings.push(m) });
      expect(store.loadChallenge('https://registry.example')?.params.realm).toBe(
        'https://evil.example/token',
      );
      expect(warnings).toEqual([]);
    });
  });

  it('keeps working in memory when the file cannot be written', () => {
    // A directory where the file should be: the write fails, the cache does not throw.
    const store = new FileTokenStore(dir, { now: () => T0 });
    store.saveToken('k', 'registry.example', { token: 't', expiresAt: T0 + 300_000 });
    expect(store.loadToken('k')?.token).toBe('t');
  });
});

describe('FileTokenStore scope names', () => {
  it('keeps the scopes a registry named, for another instance, and drops them with the origin', () => {
    const origin = 'https://registry.example';
    const a = new FileTokenStore(file, { now: () => T0 });
    a.saveChallenge(origin, challenge);
    a.saveScopeNames(origin, 'repository:virtual/alpine:pull', ['repository:alpine:pull']);
    const b = new FileTokenStore(file, { now: () => T0 });
    expect(b.loadScopeNames(origin, 'repository:virtual/alpine:pull')).toEqual(['repository:alpine:pull']);
    expect(b.loadScopeNames('https://other.example', 'repository:virtual/alpine:pull')).toBeUndefined();
    b.forgetChallenge(origin);
    expect(
      new FileTokenStore(file, { now: () => T0 }).loadScopeNames(origin, 'repository:virtual/alpine:pull'),
    ).toBeUndefined();
  });

  it('reads a file without scope names, and drops damaged ones', async () => {
    await mkdir(join(dir, 'cache', 'regauth'), { recursive: true, mode: 0o700 });
    const salt = Buffer.alloc(16, 1).toString('base64');
    await writeFile(
      file,
      JSON.stringify({
        version: 2,
        salt,
        challenges: {},
        tokens: {},
        scopeNames: { 'https://a': { r: ['n'] }, 'https://b': { r: [1] }, 'https://c': null },
      }),
      { mode: 0o600 },
    );
    const store = new FileTokenStore(file, { now: () => T0 });
    expect(store.loadScopeNames('https://a', 'r')).toEqual(['n']);
    expect(store.loadScopeNames('https://b', 'r')).toBeUndefined();
    expect(store.loadScopeNames('https://c', 'r')).toBeUndefined();
    await writeFile(file, JSON.stringify({ version: 2, salt, challenges: {}, tokens: {} }), { mode: 0o600 });
    const old = new FileTokenStore(file, { now: () => T0 });
    expect(old.loadScopeNames('https://a', 'r')).toBeUndefined();
    old.saveScopeNames('https://a', 'r', ['m']);
    expect(new FileTokenStore(file, { now: () => T0 }).loadScopeNames('https://a', 'r')).toEqual(['m']);
  });
});

describe('FileTokenStore loopback schemes', () => {
  it('keeps the scheme each loopback host was found to speak, for another instance', () => {
    const store = new FileTokenStore(file, { now: () => T0 });
    expect(store.loadLoopbackScheme('127.0.0.1:5000')).toBeUndefined();
    store.saveLoopbackScheme('127.0.0.1:5000', 'http');
    store.saveLoopbackScheme('localhost:5443', 'https');
    const other = new FileTokenStore(file, { now: () => T0 });
    expect(other.loadLoopbackScheme('127.0.0.1:5000')).toBe('http');
    expect(other.loadLoopbackScheme('localhost:5443')).toBe('https');
    other.saveLoopbackScheme('127.0.0.1:5000', 'https');
    expect(new FileTokenStore(file, { now: () => T0 }).loadLoopbackScheme('127.0.0.1:5000')).toBe('https');
  });

  it(`keeps the ${MAX_LOOPBACK_SCHEMES} hosts saved last`, () => {
    const store = new FileTokenStore(file, { now: () => T0 });
    for (let port = 1; port <= MAX_LOOPBACK_SCHEMES + 2; port++)
      store.saveLoopbackScheme(`127.0.0.1:${port}`, 'http');
    const other = new FileTokenStore(file, { now: () => T0 });
    expect(other.loadLoopbackScheme('127.0.0.1:1')).toBeUndefined();
    expect(other.loadLoopbackScheme('127.0.0.1:2')).toBeUndefined();
    expect(other.loadLoopbackScheme('127.0.0.1:3')).toBe('http');
    expect(other.loadLoopbackScheme(`127.0.0.1:${MAX_LOOPBACK_SCHEMES + 2}`)).toBe('http');
  });

  it('reads a file without schemes, and drops damaged ones', async () => {
    await mkdir(join(dir, 'cache', 'regauth'), { recursive: true, mode: 0o700 });
    const salt = Buffer.alloc(16, 1).toString('base64');
    await writeFile(
      file,
      JSON.stringify({
        version: 2,
        salt,
        challenges: {},
        tokens: { k: { registry: 'r', token: 't', expiresAt: T0 + 60_000 } },
        loopbackSchemes: { 'a:1': 'http', 'b:1': 'ftp', 'c:1': null, 'd:1': ['https'] },
      }),
      { mode: 0o600 },
    );
    const store = new FileTokenStore(file, { now: () => T0 });
    expect(store.loadLoopbackScheme('a:1')).toBe('http');
    expect(store.loadLoopbackScheme('b:1')).toBeUndefined();
    expect(store.loadLoopbackScheme('c:1')).toBeUndefined();
    expect(store.loadLoopbackScheme('d:1')).toBeUndefined();
    expect(store.loadToken('k')?.token).toBe('t');
    await writeFile(
      file,
      JSON.stringify({ version: 2, salt, challenges: {}, tokens: {}, loopbackSchemes: 7 }),
      {
        mode: 0o600,
      },
    );
    const old = new FileTokenStore(file, { now: () => T0 });
    expect(old.loadLoopbackScheme('a:1')).toBeUndefined();
    old.saveLoopbackScheme('a:1', 'https');
    expect(new FileTokenStore(file, { now: () => T0 }).loadLoopbackScheme('a:1')).toBe('https');
  });
});

describe('defaultTokenStorePath', () => {
  it('uses XDG_CACHE_HOME when set, else ~/.cache', () => {
    expect(defaultTokenStorePath({ XDG_CACHE_HOME: '/x/cache', HOME: '/home/a' })).toBe(
      '/x/cache/regauth/tokens.json',
    );
    expect(defaultTokenStorePath({ HOME: '/home/a' })).toBe('/home/a/.cache/regauth/tokens.json');
  });
});
