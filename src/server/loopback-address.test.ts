import { describe, expect, it } from 'vitest';
import { isLoopbackAddress } from './loopback-address.js';

describe('isLoopbackAddress', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost'])(
    'takes %s for loopback',
    (address) => expect(isLoopbackAddress(address)).toBe(true),
  );
  it.each([
    '0.0.0.0',
    '::',
    '10.0.0.1',
    '192.168.1.2',
    '::ffff:10.0.0.1',
    'fe80::1',
    '128.0.0.1',
    'example.org',
    '',
  ])('takes %s for reachable from elsewhere', (address) => expect(isLoopbackAddress(address)).toBe(false));
});
