import { describe, expect, it } from 'vitest';
import type { Credential } from './credentials/credential.js';
import {
  coveredScopeSets,
  DEFAULT_TOKEN_CACHE_MARGIN_S,
  TokenCache,
  type TokenStore,
} from './token-cache.js';
import type { TokenInfo } from './token-response.js';

const T0 = 1_700_000_000_000;

/** A fetch that answers after a timer, so concurrent callers really overlap, and counts its calls. */
function slowFetch(lifetimeMs = 300_000, now: () => number = () => T0) {
  let calls = 0;
  const fetch = () =>
    new Promise<TokenInfo>((resolve) => {
      calls++;
      const n = calls;
      setTimeout(() => resolve({ token: `tok-${n}`, expiresAt: now() + lifetimeMs }), 20);
    });
  return {
    fetch,
    get calls() {
      return calls;
    },
  };
}

function memoryStore(initial: Record<string, TokenInfo> = {}) {
  const tokens = new Map(Object.entries(initial));
  const loads: string[] = [];
  const saves: { key: string; registry: string; token: TokenInfo }[] = [];
  const store: TokenStore = {
    loadToken(key) {
      loads.push(key);
      return tokens.get(key);
    },
    saveToken(key, registry, token) {
      saves.push({ key, registry, token });
      tokens.set(key, token);
    },
  };
  return { store, loads, saves };
}

const KEY = await new TokenCache().key({
  origin: 'https://registry.example',
  realm: 'https://auth/token',
  service: 'reg',
  scopes: ['x'],
});

describe('TokenCache.get', () => {
  it('shares one fetch between 50 concurrent callers of the same key', async () => {
    const cache = new TokenCache({ now: () => T0 });
    const f = slowFetch();
    const results = await Promise.all(Array.from({ length: 50 }, () => cache.get(KEY, 'reg', f.fetch)));
    expect(f.calls).toBe(1);
    expect(new Set(results.map((r) => r.token))).toEqual(new Set(['tok-1']));
  });

  it('fetches separately for different keys', async () => {
    const cache = new TokenCache({ now: () => T0 });
    const f = slowFetch();
    const other = await cache.key({
      origin: 'https://registry.example',
      realm: 'https://auth/token',
      service: 'reg',
      scopes: ['y'],
    });
    const [a, b] = await Promise.all([cache.get(KEY, 'reg', f.fetch), cache.get(other, 'reg', f.fetch)]);
    expect(f.calls).toBe(2);
    expect(a.token).not.toBe(b.token);
  });

  it('reuses a token with more than the margin of life left', async () => {
    let now = T0;
    const cache = new TokenCache({ now: () => now });
    const f = slowFetch(60_000, () => now);
    expect((await cache.get(KEY, 'reg', f.fetch)).token).toBe('tok-1');
    now = T0 + 60_000 - DEFAULT_TOKEN_CACHE_MARGIN_S * 1000 - 1;
    expect((await cache.get(KEY, 'reg', f.fetch)).token).toBe('tok-1');
    expect(f.calls).toBe(1);
  });

  it(`fetches again once a token is within DEFAULT_TOKEN_CACHE_MARGIN_S (${DEFAULT_TOKEN_CACHE_MARGIN_S} s) of expiry`, async () => {
    let now = T0;
    const cache = new TokenCache({ now: () => now });
    const f = slowFetch(60_000, () => now);
    await cache.get(KEY, 'reg', f.fetch);
    now = T0 + 60_000 - DEFAULT_TOKEN_CACHE_MARGIN_S * 1000;
    expect((await cache.get(KEY, 'reg', f.fetch)).token).toBe('tok-2');
    expect(f.calls).toBe(2);
  });

  it('honours a margin given in the options', async () => {
    let now = T0;
    const cache = new TokenCache({ now: () => now, marginSeconds: 30 });
    const f = slowFetch(60_000, () => now);
    await cache.get(KEY, 'reg', f.fetch);
    now = T0 + 29_000;
    expect((await cache.get(KEY, 'reg', f.fetch)).token).toBe('tok-1');
    now = T0 + 30_000;
    expect((await cache.get(KEY, 'reg', f.fetch)).token).toBe('tok-2');
  });

  it('fetches again when forced, even with a fresh token', async () => {
    const cache = new TokenCache({ now: () => T0 });
    const f = slowFetch();
    await cache.get(KEY, 'reg', f.fetch);
    expect((await cache.get(KEY, 'reg', f.fetch, true)).token).toBe('tok-2');
    // The forced token replaces the old one.
    expect((await cache.get(KEY, 'reg', f.fetch)).token).toBe('tok-2');
    expect(f.calls).toBe(2);
  });

  it('does not cache a failed fetch: every waiter sees the error, and the next get fetches again', async () => {
    const cache = new TokenCache({ now: () => T0 });
    let calls = 0;
    const fetch = () =>
      new Promise<TokenInfo>((resolve, reject) => {
        calls++;
        const n = calls;
        setTimeout(
          () =>
            n === 1 ? reject(new Error('realm down')) : resolve({ token: 'ok', expiresAt: T0 + 300_000 }),
          10,
        );
      });
    const first = await Promise.allSettled([cache.get(KEY, 'reg', fetch), cache.get(KEY, 'reg', fetch)]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
    expect((await cache.get(KEY, 'reg', fetch)).token).toBe('ok');
    expect(calls).toBe(2);
  });

  it('takes a fresh token from the store without fetching, and keeps it in memory', async () => {
    const { store, loads } = memoryStore({ [KEY]: { token: 'stored', expiresAt: T0 + 300_000 } });
    const cache = new TokenCache({ store, now: () => T0 });
    const f = slowFetch();
    expect((await cache.get(KEY, 'reg', f.fetch)).token).toBe('stored');
    expect((await cache.get(KEY, 'reg', f.fetch)).token).toBe('stored');
    expect(f.calls).toBe(0);
    expect(loads).toEqual([KEY]);
  });

  it('fetches when the stored token is about to expire, and writes the new one to the store', async () => {
    const { store, loads, saves } = memoryStore({ [KEY]: { token: 'stale', expiresAt: T0 + 5_000 } });
    const cache = new TokenCache({ store, now: () => T0 });
    const f = slowFetch();
    expect((await cache.get(KEY, 'registry.example', f.fetch)).token).toBe('tok-1');
    expect(loads).toEqual([KEY]);
    expect(saves).toEqual([
      { key: KEY, registry: 'registry.example', token: { token: 'tok-1', expiresAt: T0 + 300_000 } },
    ]);
  });

  it('does not consult the store when forced', async () => {
    const { store, loads } = memoryStore({ [KEY]: { token: 'stored', expiresAt: T0 + 300_000 } });
    const cache = new TokenCache({ store, now: () => T0 });
    const f = slowFetch();
    expect((await cache.get(KEY, 'reg', f.fetch, true)).token).toBe('tok-1');
    expect(loads).toEqual([]);
  });

  it('forgets an invalidated token', async () => {
    const cache = new TokenCache({ now: () => T0 });
    const f = slowFetch();
    await cache.get(KEY, 'reg', f.fetch);
    cache.invalidate(KEY);
    expect((await cache.get(KEY, 'reg', f.fetch)).token).toBe('tok-2');
  });
});

describe('TokenCache.key', () => {
  const PASSWORD = 'alice-pw-19c4';
  const ALICE: Credential = { username: 'alice', password: PASSWORD };
  const base = {
    origin: 'https://registry.example',
    realm: 'https://auth.example/token',
    service: 'reg',
    credential: ALICE,
    scopes: ['a', 'b'],
  };
  const cache = new TokenCache();

  it('differs by identity and by secret, so neither another user nor another password gets the token', async () => {
    const key = await cache.key(base);
    const { credential: _, ...anonymous } = base;
    expect(key).not.toBe(await cache.key(anonymous));
    expect(key).not.toBe(await cache.key({ ...base, credential: { username: 'bob', password: PASSWORD } }));
    expect(key).not.toBe(await cache.key({ ...base, credential: { username: 'alice', password: 'guess' } }));
    expect(await cache.key({ ...base, credential: { identityToken: 'refresh-1' } })).not.toBe(
      await cache.key({ ...base, credential: { identityToken: 'refresh-2' } }),
    );
    // The same secret in another object is the same identity.
    expect(await cache.key({ ...base, credential: { ...ALICE } })).toBe(key);
  });

  it('holds no secret, only a salted hash of it', async () => {
    const keys = [
      await cache.key(base),
      await cache.key({ ...base, credential: { identityToken: 'refresh-secret-8e2a' } }),
      await cache.key({ ...base, credential: { registryToken: 'registry-secret-77b0' } }),
    ].join('\n');
    for (const secret of [PASSWORD, 'refresh-secret-8e2a', 'registry-secret-77b0']) {
      expect(keys).not.toContain(secret);
    }
  });

  it('hashes secrets with the store’s salt: the same key in every process sharing the store, another in another store', async () => {
    const store = (salt: number): TokenStore => ({
      loadToken: () => undefined,
      saveToken: () => {},
      keySalt: () => Buffer.alloc(16, salt),
    });
    const key = await new TokenCache({ store: store(1) }).key(base);
    expect(await new TokenCache({ store: store(1) }).key(base)).toBe(key);
    expect(await new TokenCache({ store: store(2) }).key(base)).not.toBe(key);
    // Without a store each cache draws its own salt.
    expect(await new TokenCache().key(base)).not.toBe(await new TokenCache().key(base));
  });

  it('differs by registry origin, realm, service and scopes', async () => {
    const key = await cache.key(base);
    expect(key).not.toBe(await cache.key({ ...base, origin: 'https://copycat.example' }));
    expect(key).not.toBe(await cache.key({ ...base, realm: 'https://other/token' }));
    expect(key).not.toBe(await cache.key({ ...base, service: 'other' }));
    expect(key).not.toBe(await cache.key({ ...base, scopes: ['a'] }));
  });

  it('does not depend on the order of the scopes, and leaves the caller’s array as it was', async () => {
    const scopes = ['repository:z/z:pull', 'repository:a/a:pull,push', 'registry:catalog:*'];
    const reversed = [...scopes].reverse();
    expect(await cache.key({ ...base, scopes })).toBe(await cache.key({ ...base, scopes: reversed }));
    expect(scopes[0]).toBe('repository:z/z:pull');
  });

  it('cannot be confused by separators inside the parts', async () => {
    expect(await cache.key({ ...base, realm: 'r', service: 's,t' })).not.toBe(
      await cache.key({ ...base, realm: 'r,s', service: 't' }),
    );
  });
});

/** A store whose every answer comes after a timer, as Redis's or a database's would. */
function delayedStore(initial: Record<string, TokenInfo> = {}, delayMs = 20) {
  const { store, loads, saves } = memoryStore(initial);
  const later = <T>(value: () => T) =>
    new Promise<T>((resolve) => setTimeout(() => resolve(value()), delayMs));
  const delayed: TokenStore = {
    loadToken: (key) => later(() => store.loadToken(key) as TokenInfo | undefined),
    saveToken: (key, registry, token) => later(() => void store.saveToken(key, registry, token)),
    keySalt: () => later(() => Buffer.alloc(16, 7)),
  };
  return { store: delayed, loads, saves };
}

describe('TokenCache with an asynchronous store', () => {
  it('reads the store once and fetches once for 50 concurrent callers of one key', async () => {
    const { store, loads, saves } = delayedStore();
    const cache = new TokenCache({ store, now: () => T0 });
    const f = slowFetch();
    const results = await Promise.all(Array.from({ length: 50 }, () => cache.get(KEY, 'reg', f.fetch)));
    expect(f.calls).toBe(1);
    expect(loads).toEqual([KEY]);
    expect(new Set(results.map((r) => r.token))).toEqual(new Set(['tok-1']));
    expect(saves.map((s) => s.key)).toEqual([KEY]);
  });

  it('hands a stored token to every caller waiting on the read, without fetching', async () => {
    const { store, loads } = delayedStore({ [KEY]: { token: 'stored', expiresAt: T0 + 300_000 } });
    const cache = new TokenCache({ store, now: () => T0 });
    const f = slowFetch();
    const results = await Promise.all(Array.from({ length: 20 }, () => cache.get(KEY, 'reg', f.fetch)));
    expect(new Set(results.map((r) => r.token))).toEqual(new Set(['stored']));
    expect(f.calls).toBe(0);
    expect(loads).toEqual([KEY]);
  });

  it('takes its key salt from the store, even when the store answers later', async () => {
    const sync: TokenStore = {
      loadToken: () => undefined,
      saveToken: () => {},
      keySalt: () => Buffer.alloc(16, 7),
    };
    const parts = { origin: 'https://r.example', realm: 'https://a/t', service: 's', scopes: ['x'] };
    const credential: Credential = { username: 'u', password: 'p' };
    expect(await new TokenCache({ store: delayedStore().store }).key({ ...parts, credential })).toBe(
      await new TokenCache({ store: sync }).key({ ...parts, credential }),
    );
  });

  it('goes on without a store that throws or rejects, and says which method failed', async () => {
    const failures: string[] = [];
    const broken: TokenStore = {
      loadToken: () => Promise.reject(new Error('connection refused')),
      saveToken: () => {
        throw new Error('read-only');
      },
      keySalt: () => Promise.reject(new Error('connection refused')),
    };
    const cache = new TokenCache({
      store: broken,
      now: () => T0,
      onStoreError: (error, operation) => failures.push(`${operation}: ${(error as Error).message}`),
    });
    const f = slowFetch();
    const parts = { origin: 'https://r.example', realm: 'https://a/t', service: 's', scopes: ['x'] };
    const results = await Promise.all(Array.from({ length: 5 }, () => cache.tokenFor(parts, 'reg', f.fetch)));
    expect(new Set(results.map((r) => r.token))).toEqual(new Set(['tok-1']));
    expect(f.calls).toBe(1);
    expect(failures).toEqual([
      'keySalt: connection refused',
      'loadToken: connection refused',
      'saveToken: read-only',
    ]);
    // The token is kept in memory all the same.
    expect((await cache.tokenFor(parts, 'reg', f.fetch)).token).toBe('tok-1');
  });

  it('treats a malformed stored token as a miss', async () => {
    const odd: TokenStore = {
      loadToken: async () => ({ token: 42 }) as unknown as TokenInfo,
      saveToken: () => {},
    };
    const cache = new TokenCache({ store: odd, now: () => T0 });
    const f = slowFetch();
    expect((await cache.get(KEY, 'reg', f.fetch)).token).toBe('tok-1');
  });
});

describe('coveredScopeSets', () => {
  it('splits each resource into every non-empty subset of its actions, leaving out the set itself', () => {
    expect(coveredScopeSets(['repository:a/b:pull,push'])).toEqual([
      ['repository:a/b:pull'],
      ['repository:a/b:push'],
    ]);
    expect(coveredScopeSets(['repository:dst:pull,push', 'repository:src:pull'])).toEqual([
      ['repository:dst:pull'],
      ['repository:dst:push'],
      ['repository:dst:pull,push'],
      ['repository:src:pull'],
    ]);
  });

  it('does not split `*`, keeps a host:port name whole, and skips what does not parse', () => {
    expect(coveredScopeSets(['registry:catalog:*', 'repository:h:5000/a:pull'])).toEqual([
      ['registry:catalog:*'],
      ['repository:h:5000/a:pull'],
    ]);
    expect(coveredScopeSets(['nonsense'])).toEqual([]);
  });
});

describe('TokenCache.tokenFor', () => {
  const parts = { origin: 'https://r.example', realm: 'https://a/t', service: 's' };

  it('serves a narrower request with a token fetched for wider scopes, from memory and from the store', async () => {
    const { store } = memoryStore();
    const f = slowFetch();
    const cache = new TokenCache({ store, now: () => T0 });
    await cache.tokenFor({ ...parts, scopes: ['repository:a/b:pull,push'] }, 'reg', f.fetch);
    expect((await cache.tokenFor({ ...parts, scopes: ['repository:a/b:pull'] }, 'reg', f.fetch)).token).toBe(
      'tok-1',
    );
    // Another process on the same store.
    const later = new TokenCache({ store, now: () => T0 });
    expect((await later.tokenFor({ ...parts, scopes: ['repository:a/b:pull'] }, 'reg', f.fetch)).token).toBe(
      'tok-1',
    );
    expect(f.calls).toBe(1);
    // Never a wider one with a narrower token.
    expect(
      (await later.tokenFor({ ...parts, scopes: ['repository:a/b:pull,delete'] }, 'reg', f.fetch)).token,
    ).toBe('tok-2');
  });

  it('keeps a token fetched for exactly a narrower set rather than cover it with a wider one', async () => {
    const f = slowFetch();
    const cache = new TokenCache({ now: () => T0 });
    await cache.tokenFor({ ...parts, scopes: ['repository:a/b:pull'] }, 'reg', f.fetch);
    await cache.tokenFor({ ...parts, scopes: ['repository:a/b:pull,push'] }, 'reg', f.fetch);
    expect((await cache.tokenFor({ ...parts, scopes: ['repository:a/b:pull'] }, 'reg', f.fetch)).token).toBe(
      'tok-1',
    );
  });

  it('fetches the exact scopes when forced, replacing the covering token', async () => {
    const f = slowFetch();
    const cache = new TokenCache({ now: () => T0 });
    await cache.tokenFor({ ...parts, scopes: ['repository:a/b:pull,push'] }, 'reg', f.fetch);
    const pull = { ...parts, scopes: ['repository:a/b:pull'] };
    expect((await cache.tokenFor(pull, 'reg', f.fetch, { force: true })).token).toBe('tok-2');
    expect((await cache.tokenFor(pull, 'reg', f.fetch)).token).toBe('tok-2');
  });
});
