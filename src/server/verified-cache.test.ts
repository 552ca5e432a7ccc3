import { describe, expect, it } from 'vitest';
import { VerifiedCache } from './verified-cache.js';

function fakeClock(start = 1_700_000_000_000) {
  const clock = {
    now: start,
    advance(ms: number): void {
      clock.now += ms;
    },
  };
  return { clock, now: () => clock.now };
}

/** The guard's two steps in one: the pair's MAC, then the table. */
const remember = (cache: VerifiedCache, user: string, password: string, fp: string) =>
  cache.remember(user, cache.mac(user, password), fp);
const lookup = (cache: VerifiedCache, user: string, password: string) =>
  cache.lookup(user, cache.mac(user, password));

describe('VerifiedCache', () => {
  it('forgets a pair at `until` when that comes before the TTL (a credential that expires)', () => {
    const { clock, now } = fakeClock();
    const cache = new VerifiedCache(3600, now);
    cache.remember('ci', cache.mac('ci', 'jwt'), 'fp', clock.now + 90_000);
    expect(lookup(cache, 'ci', 'jwt')).toBe('fp');
    clock.advance(90_001);
    expect(lookup(cache, 'ci', 'jwt')).toBeUndefined();
    cache.remember('old', cache.mac('old', 'jwt'), 'fp', clock.now - 1);
    expect(lookup(cache, 'old', 'jwt')).toBeUndefined();
  });

  it('returns the fingerprint for a pair it was told about', () => {
    const cache = new VerifiedCache(60, fakeClock().now);
    remember(cache, 'alice', 'alice-secret', 'fp-alice');
    expect(lookup(cache, 'alice', 'alice-secret')).toBe('fp-alice');
  });

  it('knows nothing of a user it was not told about', () => {
    const cache = new VerifiedCache(60, fakeClock().now);
    remember(cache, 'alice', 'alice-secret', 'fp-alice');
    expect(lookup(cache, 'bob', 'alice-secret')).toBeUndefined();
  });

  it('returns nothing for a wrong password, and still knows the right one', () => {
    const cache = new VerifiedCache(60, fakeClock().now);
    remember(cache, 'alice', 'alice-secret', 'fp-alice');
    expect(lookup(cache, 'alice', 'alice-secreT')).toBeUndefined();
    expect(lookup(cache, 'alice', '')).toBeUndefined();
    expect(lookup(cache, 'alice', 'alice-secret')).toBe('fp-alice');
  });

  it('does not let the user/password boundary move', () => {
    const cache = new VerifiedCache(60, fakeClock().now);
    remember(cache, 'ab', 'c', 'fp');
    expect(lookup(cache, 'a', 'bc')).toBeUndefined();
  });

  it('forgets a pair when the TTL has passed', () => {
    const { clock, now } = fakeClock();
    const cache = new VerifiedCache(60, now);
    remember(cache, 'alice', 'alice-secret', 'fp-alice');
    clock.advance(59_999);
    expect(lookup(cache, 'alice', 'alice-secret')).toBe('fp-alice');
    clock.advance(1);
    expect(lookup(cache, 'alice', 'alice-secret')).toBeUndefined();
  });

  it('keeps only the latest password of a user', () => {
    const cache = new VerifiedCache(60, fakeClock().now);
    remember(cache, 'alice', 'old', 'fp-old');
    remember(cache, 'alice', 'new', 'fp-new');
    expect(lookup(cache, 'alice', 'old')).toBeUndefined();
    expect(lookup(cache, 'alice', 'new')).toBe('fp-new');
  });

  it('starts the TTL again when a pair is remembered again', () => {
    const { clock, now } = fakeClock();
    const cache = new VerifiedCache(60, now);
    remember(cache, 'alice', 'pw', 'fp');
    clock.advance(50_000);
    remember(cache, 'alice', 'pw', 'fp');
    clock.advance(50_000);
    expect(lookup(cache, 'alice', 'pw')).toBe('fp');
  });

  it('forgets everything on clear()', () => {
    const cache = new VerifiedCache(60, fakeClock().now);
    remember(cache, 'alice', 'a', 'fp-a');
    remember(cache, 'bob', 'b', 'fp-b');
    cache.clear();
    expect(lookup(cache, 'alice', 'a')).toBeUndefined();
    expect(lookup(cache, 'bob', 'b')).toBeUndefined();
  });

  it('remembers nothing when the TTL is 0', () => {
    const cache = new VerifiedCache(0, fakeClock().now);
    remember(cache, 'alice', 'alice-secret', 'fp-alice');
    expect(lookup(cache, 'alice', 'alice-secret')).toBeUndefined();
  });

  it('drops the oldest user when full', () => {
    const cache = new VerifiedCache(60, fakeClock().now, 2);
    remember(cache, 'a', 'pa', 'fa');
    remember(cache, 'b', 'pb', 'fb');
    remember(cache, 'c', 'pc', 'fc');
    expect(lookup(cache, 'a', 'pa')).toBeUndefined();
    expect(lookup(cache, 'b', 'pb')).toBe('fb');
    expect(lookup(cache, 'c', 'pc')).toBe('fc');
  });

  it('evicts no one when a user already in a full cache is remembered again', () => {
    const cache = new VerifiedCache(60, fakeClock().now, 2);
    remember(cache, 'a', 'pa', 'fa');
    remember(cache, 'b', 'pb', 'fb');
    remember(cache, 'b', 'pb2', 'fb2');
    expect(lookup(cache, 'a', 'pa')).toBe('fa');
    expect(lookup(cache, 'b', 'pb2')).toBe('fb2');
  });

  it('drops expired pairs on sweep()', () => {
    const { clock, now } = fakeClock();
    const cache = new VerifiedCache(60, now);
    remember(cache, 'a', 'pa', 'fa');
    clock.advance(30_000);
    remember(cache, 'b', 'pb', 'fb');
    clock.advance(30_000);
    cache.sweep();
    expect(cache.size).toBe(1);
    expect(lookup(cache, 'b', 'pb')).toBe('fb');
  });
});
