import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from './retry-after.js';

const NOW = Date.parse('2024-05-01T12:00:00Z');

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('2', NOW)).toBe(2);
    expect(parseRetryAfter(' 120 ', NOW)).toBe(120);
    expect(parseRetryAfter('0', NOW)).toBe(0);
  });

  it('reads an IMF-fixdate as the seconds from now until then', () => {
    expect(parseRetryAfter('Wed, 01 May 2024 12:00:30 GMT', NOW)).toBe(30);
  });

  it('reads the obsolete RFC 850 and asctime date forms', () => {
    expect(parseRetryAfter('Wednesday, 01-May-24 12:01:00 GMT', NOW)).toBe(60);
    expect(parseRetryAfter('Wed May  1 12:00:05 2024', NOW)).toBe(5);
  });

  it('rounds a date that is part of a second away up to a whole second', () => {
    expect(parseRetryAfter('Wed, 01 May 2024 12:00:10 GMT', NOW + 9500)).toBe(1);
  });

  it('gives 0 for a date in the past', () => {
    expect(parseRetryAfter('Wed, 01 May 2024 11:00:00 GMT', NOW)).toBe(0);
  });

  it('gives undefined when the header is absent or unreadable', () => {
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
    expect(parseRetryAfter('', NOW)).toBeUndefined();
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
  });

  // V8's Date.parse reads these as dates in 2001, which used to turn into "retry right away".
  it.each(['-1', '1.5', 'in 3', 'abc 12', '2 s'])('gives undefined for %j, not a date long past', (value) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
  });

  it('reads any whole number of seconds as itself', () => {
    fc.assert(
      fc.property(fc.nat({ max: 1_000_000_000 }), (n) => {
        expect(parseRetryAfter(String(n), NOW)).toBe(n);
      }),
    );
  });

  it('reads any future whole-second HTTP date as the seconds until it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * 365 * 86_400 }), (seconds) => {
        const date = new Date(NOW + seconds * 1000).toUTCString();
        expect(parseRetryAfter(date, NOW)).toBe(seconds);
      }),
    );
  });
});
