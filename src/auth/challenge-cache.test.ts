import { describe, expect, it } from 'vitest';
import { ChallengeCache, type ChallengeStore } from './challenge-cache.js';
import type { Challenge } from './parse-challenge.js';

const ORIGIN = 'https://registry.example';
const CHALLENGE: Challenge = {
  scheme: 'bearer',
  params: { realm: 'https://auth.example/token', service: 'reg' },
};

/** A store that answers after a timer, counting its calls. */
function delayedStore() {
  const calls: string[] = [];
  const names = new Map<string, readonly string[]>();
  const later = <T>(value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), 10));
  const store: ChallengeStore = {
    loadChallenge: (origin) => {
      calls.push('loadChallenge');
      return later(origin === ORIGIN ? CHALLENGE : undefined);
    },
    saveChallenge: () => {
      calls.push('saveChallenge');
      return later(undefined);
    },
    forgetChallenge: () => later(undefined),
    loadScopeNames: (_origin, requested) => {
      calls.push('loadScopeNames');
      return later(names.get(requested));
    },
    saveScopeNames: (_origin, requested, named) => {
      calls.push('saveScopeNames');
      names.set(requested, named);
      return later(undefined);
    },
  };
  return { store, calls };
}

describe('ChallengeCache with an asynchronous store', () => {
  it('reads a challenge once for concurrent callers, then answers from memory', async () => {
    const { store, calls } = delayedStore();
    const cache = new ChallengeCache(store);
    const got = await Promise.all(Array.from({ length: 20 }, () => cache.get(ORIGIN)));
    expect(new Set(got)).toEqual(new Set([CHALLENGE]));
    expect(await cache.get(ORIGIN)).toEqual(CHALLENGE);
    expect(calls).toEqual(['loadChallenge']);
  });

  it('remembers the scopes a registry named, reads them once, and writes only what changed', async () => {
    const { store, calls } = delayedStore();
    const cache = new ChallengeCache(store);
    const requested = ['repository:virtual/alpine:pull'];
    await cache.learnScopeNames(ORIGIN, requested, [
      'repository:alpine:pull',
      'repository:virtual/alpine:pull',
    ]);
    await cache.learnScopeNames(ORIGIN, requested, ['repository:alpine:pull']);
    expect(calls).toEqual(['saveScopeNames']);
    // Another process on the same store.
    const later = new ChallengeCache(store);
    const got = await Promise.all(Array.from({ length: 10 }, () => later.scopeNames(ORIGIN, requested)));
    expect(got).toEqual(Array(10).fill(['repository:alpine:pull']));
    expect(calls.filter((c) => c === 'loadScopeNames')).toHaveLength(1);
    expect(await later.scopeNames(ORIGIN, ['repository:other:pull'])).toEqual([]);
  });

  it('treats a store that throws or rejects as empty, and says which method failed', async () => {
    const failed: string[] = [];
    const broken: ChallengeStore = {
      loadChallenge: () => Promise.reject(new Error('down')),
      saveChallenge: () => {
        throw new Error('down');
      },
      forgetChallenge: () => Promise.reject(new Error('down')),
      loadScopeNames: () => Promise.reject(new Error('down')),
    };
    const cache = new ChallengeCache(broken, { onStoreError: (_e, operation) => failed.push(operation) });
    expect(await cache.get(ORIGIN)).toBeUndefined();
    expect(await cache.learn(ORIGIN, { ...CHALLENGE, params: { ...CHALLENGE.params, scope: 'x' } })).toEqual(
      CHALLENGE,
    );
    expect(await cache.get(ORIGIN)).toEqual(CHALLENGE);
    expect(await cache.scopeNames(ORIGIN, ['repository:a:pull'])).toEqual([]);
    await cache.forget(ORIGIN);
    expect(failed).toEqual(['loadChallenge', 'saveChallenge', 'loadScopeNames', 'forgetChallenge']);
  });
});
