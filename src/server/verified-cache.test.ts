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

describe('VerifiedCache', () => {
  it('returns the fingerprint for a pair it was told about', () => {
    const cache = new VerifiedCache(60, fakeClock().now);
    cache.remember('alice', 'alice-secret', 'fp-alice');
    expect(cache.lookup('alice', 'alice-secret')).toBe('fp-alice');
  });

  it('knows nothing of a user it was not told about', () => {
    const cache = new VerifiedCache(60, fakeClock().now);
    cache.remember('alice', 'alice-secret', 'fp-alice');
    expect(cache.lookup('bob', 'alice-secret')).toBeUndefined();
  });

  it('returns nothing for a wrong password, and still knows the right one', () => {
    const cache = new VerifiedCache(60, fakeClock().now);
    cache.remember('alice', 'alice-secret', 'fp-alice');
    expect(cache.lookup('alice', 'alice-secreT')).toBeUndefined();
    expect(cache.lookup('alice', '')).toBeUndefined();
    expect(cache.lookup('alice', 'alice-secret')).toBe('fp-alice');
  });

  it('does not let the user/password boundary move', () => {
    const cache = new VerifiedCache(60, fakeClock().now);
    cache.remember('ab', 'c', 'fp');
    expect(cache.lookup('a', 'bc')).toBeUndefined();
  });

  it('forgets a pair when the TTL has passed', () => {
    const { clock, now } = fakeClock();
    const cache = new VerifiedCache(60, now);
    cache.remember('alice', 'alice-secret', 'fp-alice');
    clock.advance(59_999);
    expect(cache.lookup('alice', 'alice-secret')).toBe('fp-alice');
    clock.advance(1);
    expect(cache.lookup('alice', 'alice-secret')).toBeUndefined();
  });

  it('keeps only the latest password of a user', () => {
    const cache = new VerifiedCache(60, fakeClock().now);
    cache.remember('alice', 'old', 'fp-old');
    cache.remember('alice', 'new', 'fp-new');
    expect(cache.lookup('alice', 'old')).toBeUndefined();
    expect(cache.lookup('alice', 'new')).toBe('fp-new');
  });

  it('starts the TTL again when a pair is remembered again', () => {
    const { clock, now } = fakeClock();
    const cache = new VerifiedCache(60, now);
    cache.remember('alice', 'pw', 'fp');
    clock.advance(50_000);
    cache.remember('alice', 'pw', 'fp');
    clock.advance(50_000);
    expect(cache.lookup('alice', 'pw')).toBe('fp');
  });

  it('forgets everything on clear()', () => {
    const cache = new VerifiedCache(60, fakeClock().now);
    cache.remember('alice', 'a', 'fp-a');
    cache.remember('bob', 'b', 'fp-b');
    cache.clear();
    expect(cache.lookup('alice', 'a')).toBeUndefined();
    expect(cache.lookup('bob', 'b')).toBeUndefined();
  });

  it('remembers nothing when the TTL is 0', () => {
    const cache = new VerifiedCache(0, fakeClock().now);
    cache.remember('alice', 'alice-secret', 'fp-alice');
    expect(cache.lookup('alice', 'alice-secret')).toBeUndefined();
  });

  it('drops the oldest user when full', () => {
    const cache = new VerifiedCache(60, fakeClock().now, 2);
    cache.remember('a', 'pa', 'fa');
    cache.remember('b', 'pb', 'fb');
    cache.remember('c', 'pc', 'fc');
    expect(cache.lookup('a', 'pa')).toBeUndefined();
    expect(cache.lookup('b', 'pb')).toBe('fb');
    expect(cache.lookup('c', 'pc')).toBe('fc');
  });

  it('evicts no one when a user already in a full cache is remembered again', () => {
    const cache = new VerifiedCache(60, fakeClock().now, 2);
    cache.remember('a', 'pa', 'fa');
    cache.remember('b', 'pb', 'fb');
    cache.remember('b', 'pb2', 'fb2');
    expect(cache.lookup('a', 'pa')).toBe('fa');
    expect(cache.lookup('b', 'pb2')).toBe('fb2');
  });
});
