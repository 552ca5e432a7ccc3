import { describe, expect, it } from 'vitest';
import { parseDigest } from './digest.js';

describe('parseDigest', () => {
  it('reads the algorithm and the hex of a sha256 or sha512 digest', () => {
    expect(parseDigest(`sha256:${'a'.repeat(64)}`)).toEqual({ algorithm: 'sha256', hex: 'a'.repeat(64) });
    expect(parseDigest(`sha512:${'0'.repeat(128)}`)).toEqual({ algorithm: 'sha512', hex: '0'.repeat(128) });
  });

  it.each(['sha256:abc', `sha256:${'A'.repeat(64)}`, `md5:${'a'.repeat(32)}`, 'a'.repeat(64)])(
    'refuses %s as ERR_INVALID_DIGEST: bad data, not a usage error',
    (text) => {
      expect(() => parseDigest(text)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_DIGEST' }));
    },
  );
});
