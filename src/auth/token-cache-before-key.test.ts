import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileTokenStore } from './file-token-store.js';
import { TokenCache, type TokenKeyParts, type TokenStore } from './token-cache.js';
import type { TokenInfo } from './token-response.js';

const REGISTRY = '127.0.0.1:5000';
const PASSWORD = 'correct-horse-battery';
const credential = { username: 'alice', password: PASSWORD };
const parts: TokenKeyParts = {
  origin: `http://${REGISTRY}`,
  realm: 'http://127.0.0.1:5001/token',
  service: 'reg',
  credential,
  scopes: ['repository:app:pull,push'],
};

function deferred<T>() {
  let resolve: (v: T) => void = () => {};
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A fetch that counts its calls and answers when told (or at once). */
function fetcher(token = 'tok') {
  let calls = 0;
  return {
    fetch: async (): Promise<TokenInfo> => {
      calls++;
      return { token: `${token}-${calls}`, expiresAt: Date.now() + 300_000 };
    },
    get calls() {
      return calls;
    },
  };
}

/** A store in memory whose salt arrives only when the test says so. */
function slowSaltStore(tokens = new Map<string, { registry: string; token: TokenInfo }>()) {
  const salt = deferred<Uint8Array>();
  const asked: string[] = [];
  const store: TokenStore = {
    keySalt: () => salt.promise,
    hasTokens(registry) {
      asked.push(registry);
      return [...tokens.values()].some((t) => t.registry === registry);
    },
    loadToken: (key) => tokens.get(key)?.token,
    saveToken(key, registry, token) {
      tokens.set(key, { registry, token });
    },
  };
  return { store, salt, asked, tokens };
}

describe('TokenCache: a first token fetched while its key is derived', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regauth-before-key-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('fetches before the key is known when the store keeps nothing for the registry, then keeps it under that key', async () => {
    const s = slowSaltStore();
    const cache = new TokenCache({ store: s.store });
    const f = fetcher();
    const got = cache.tokenFor(parts, REGISTRY, f.fetch);
    await new Promise((r) => setTimeout(r, 20));
    // The salt (so the key) is not there yet, and the fetch already ran.
    expect(s.asked).toEqual([REGISTRY]);
    expect(f.calls).toBe(1);
    expect(s.tokens.size).toBe(0);
    s.salt.resolve(Buffer.alloc(16, 7));
    expect((await got).token).toBe('tok-1');
    // Kept under its own key and the covered sets' keys, as #get keeps a token.
    const key = await new TokenCache({ store: { ...s.store, keySalt: () => Buffer.alloc(16, 7) } }).key(
      parts,
    );
    expect(s.tokens.get(key)?.token.token).toBe('tok-1');
    expect(s.tokens.size).toBe(3);
    // The next ask is answered from memory.
    expect((await cache.tokenFor(parts, REGISTRY, f.fetch)).token).toBe('tok-1');
    expect(f.calls).toBe(1);
  });

  it('shares one early fetch among callers asking at the same time', async () => {
    const s = slowSaltStore();
    const cache = new TokenCache({ store: s.store });
    const f = fetcher();
    const all = Promise.all([1, 2, 3].map(() => cache.tokenFor(parts, REGISTRY, f.fetch)));
    await new Promise((r) => setTimeout(r, 20));
    s.salt.resolve(Buffer.alloc(16, 1));
    expect((await all).map((t) => t.token)).toEqual(['tok-1', 'tok-1', 'tok-1']);
    expect(f.calls).toBe(1);
  });

  it('derives the key first when the store keeps a token for the registry, and uses the stored one', async () => {
    const salt = Buffer.alloc(16, 3);
    const key = await new TokenCache({
      store: { keySalt: () => salt, loadToken: () => undefined, saveToken() {} },
    }).key(parts);
    const s = slowSaltStore(
      new Map([[key, { registry: REGISTRY, token: { token: 'stored', expiresAt: Date.now() + 300_000 } }]]),
    );
    const cache = new TokenCache({ store: s.store });
    const f = fetcher();
    const got = cache.tokenFor(parts, REGISTRY, f.fetch);
    await new Promise((r) => setTimeout(r, 20));
    expect(f.calls).toBe(0);
    s.salt.resolve(salt);
    expect((await got).token).toBe('stored');
    expect(f.calls).toBe(0);
  });

  it('goes the usual way when hasTokens fails, and says so', async () => {
    const errors: string[] = [];
    const tokens = new Map<string, TokenInfo>();
    const cache = new TokenCache({
      store: {
        hasTokens() {
          throw new Error('broken');
        },
        loadToken: (k) => tokens.get(k),
        saveToken: (k, _r, t) => {
          tokens.set(k, t);
        },
      },
      onStoreError: (_err, op) => errors.push(op),
    });
    const f = fetcher();
    expect((await cache.tokenFor(parts, REGISTRY, f.fetch)).token).toBe('tok-1');
    expect(errors).toEqual(['hasTokens']);
    expect(tokens.get(await cache.key(parts))?.token).toBe('tok-1');
  });

  it('lets a failed early fetch fail its callers, and the next ask fetch again', async () => {
    const cache = new TokenCache({ store: slowSaltStore().store, marginSeconds: 0 });
    let calls = 0;
    const failing = async (): Promise<TokenInfo> => {
      calls++;
      throw new Error('realm down');
    };
    await expect(cache.tokenFor(parts, REGISTRY, failing)).rejects.toThrow('realm down');
    await expect(cache.tokenFor(parts, REGISTRY, failing)).rejects.toThrow('realm down');
    expect(calls).toBe(2);
  });

  it('a token a process saved with the password hashed off the main thread is found by the next process, and the file holds no password', async () => {
    const file = join(dir, 'tokens.json');
    const first = new TokenCache({ store: new FileTokenStore(file) });
    const f1 = fetcher('first');
    expect((await first.tokenFor(parts, REGISTRY, f1.fetch)).token).toBe('first-1');
    const text = await readFile(file, 'utf8');
    expect(text).toContain('first-1');
    expect(text).not.toContain(PASSWORD);
    // Another process: a new store on the same file and a new credential object.
    const second = new TokenCache({ store: new FileTokenStore(file) });
    const f2 = fetcher('second');
    const again = { ...parts, credential: { ...credential } };
    expect((await second.tokenFor(again, REGISTRY, f2.fetch)).token).toBe('first-1');
    expect(f2.calls).toBe(0);
    // A narrower scope set the first token covers, too.
    const pull = { ...again, scopes: ['repository:app:pull'] };
    expect(
      (await new TokenCache({ store: new FileTokenStore(file) }).tokenFor(pull, REGISTRY, f2.fetch)).token,
    ).toBe('first-1');
    // Another password finds nothing.
    const other = { ...parts, credential: { username: 'alice', password: 'other' } };
    expect(
      (await new TokenCache({ store: new FileTokenStore(file) }).tokenFor(other, REGISTRY, f2.fetch)).token,
    ).toBe('second-1');
  });

  it('FileTokenStore.hasTokens answers for unexpired tokens of that registry only', () => {
    let now = 1_000_000;
    const store = new FileTokenStore(join(dir, 't.json'), { now: () => now });
    expect(store.hasTokens(REGISTRY)).toBe(false);
    store.saveToken('k', REGISTRY, { token: 't', expiresAt: now + 1000 });
    expect(store.hasTokens(REGISTRY)).toBe(true);
    expect(store.hasTokens('127.0.0.1:5002')).toBe(false);
    now += 2000;
    expect(store.hasTokens(REGISTRY)).toBe(false);
  });
});
