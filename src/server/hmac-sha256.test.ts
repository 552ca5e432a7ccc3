import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HmacSha256 } from './hmac-sha256.js';

describe('HmacSha256', () => {
  it("gives createHmac's MAC for any key and any parts, short or past its buffer", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 700 })), {
          maxLength: 4,
        }),
        (key, parts) => {
          const expected = createHmac('sha256', key);
          for (const part of parts) expected.update(part, 'utf8');
          const mac = new HmacSha256(key);
          expect(mac.digest(parts, 'base64')).toBe(expected.digest('base64'));
          // Again, after a message that may have been longer: nothing of it is left behind.
          expect(mac.digest(['a'], 'hex')).toBe(createHmac('sha256', key).update('a').digest('hex'));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('matches RFC 4231 test case 2 and a key longer than a block', () => {
    expect(new HmacSha256(Buffer.from('Jefe')).digest(['what do ya want ', 'for nothing?'], 'hex')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
    const long = Buffer.alloc(131, 0xaa);
    expect(
      new HmacSha256(long).digest(['Test Using Larger Than Block-Size Key - Hash Key First'], 'hex'),
    ).toBe('60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54');
    expect(new HmacSha256(long).digest(['x'.repeat(5000)])).toEqual(
      createHmac('sha256', long).update('x'.repeat(5000)).digest(),
    );
  });
});
