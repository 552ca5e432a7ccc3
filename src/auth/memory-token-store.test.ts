import { describe, expect, it } from 'vitest';
import { MAX_SCOPE_NAMES_PER_ORIGIN } from './challenge-cache.js';
import { MemoryTokenStore } from './memory-token-store.js';

const T0 = 1_700_000_000_000;

describe('MemoryTokenStore', () => {
  it('keeps tokens until they expire, and drops expired ones as new ones come in', () => {
    let now = T0;
    const store = new MemoryTokenStore({ now: () => now });
    store.saveToken('a', 'reg', { token: 'ta', expiresAt: T0 + 1000 });
    expect(store.loadToken('a')).toEqual({ token: 'ta', expiresAt: T0 + 1000 });
    now = T0 + 1000;
    expect(store.loadToken('a')).toBeUndefined();
    store.saveToken('b', 'reg', { token: 'tb', expiresAt: T0 + 5000 });
    now = T0;
    // Dropped for good when b was saved, not merely hidden.
    expect(store.loadToken('a')).toBeUndefined();
  });

  it('has one salt per store: shared by every cache using it, different from another store', () => {
    const store = new MemoryTokenStore();
    expect(Buffer.from(store.keySalt())).toEqual(Buffer.from(store.keySalt()));
    expect(store.keySalt()).toHaveLength(16);
    expect(Buffer.from(new MemoryTokenStore().keySalt())).not.toEqual(Buffer.from(store.keySalt()));
  });

  it('keeps challenges and scope names by origin, and forgets a registry', () => {
    const store = new MemoryTokenStore({ now: () => T0 });
    const origin = 'https://reg.example';
    store.saveChallenge(origin, { scheme: 'bearer', params: { realm: 'https://auth.example/token' } });
    store.saveScopeNames(origin, 'repository:v/a:pull', ['repository:a:pull']);
    store.saveToken('k', 'reg.example', { token: 't', expiresAt: T0 + 60_000 });
    store.saveToken('other', 'other.example', { token: 'o', expiresAt: T0 + 60_000 });
    expect(store.loadChallenge('https://else.example')).toBeUndefined();
    expect(store.loadScopeNames(origin, 'repository:v/a:pull')).toEqual(['repository:a:pull']);
    expect(store.forgetRegistry('reg.example', [origin])).toBe(1);
    expect(store.loadToken('k')).toBeUndefined();
    expect(store.loadToken('other')?.token).toBe('o');
    expect(store.loadChallenge(origin)).toBeUndefined();
    expect(store.loadScopeNames(origin, 'repository:v/a:pull')).toBeUndefined();
  });

  it(`keeps at most MAX_SCOPE_NAMES_PER_ORIGIN (${MAX_SCOPE_NAMES_PER_ORIGIN}) scope names per origin`, () => {
    const store = new MemoryTokenStore();
    for (let i = 0; i <= MAX_SCOPE_NAMES_PER_ORIGIN; i++) store.saveScopeNames('o', `r${i}`, [`n${i}`]);
    expect(store.loadScopeNames('o', 'r0')).toBeUndefined();
    expect(store.loadScopeNames('o', `r${MAX_SCOPE_NAMES_PER_ORIGIN}`)).toEqual([
      `n${MAX_SCOPE_NAMES_PER_ORIGIN}`,
    ]);
  });
});
