import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addressKey,
  createClientAddressResolver,
  normalizeAddress,
  parseTrustedProxy,
} from './client-address.js';

const proxies = (...entries: string[]) =>
  entries.map((e) => {
    const proxy = parseTrustedProxy(e);
    if (!proxy) throw new Error(`bad test proxy ${e}`);
    return proxy;
  });

describe('parseTrustedProxy', () => {
  it('reads addresses and CIDR networks of both families', () => {
    expect(parseTrustedProxy('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseTrustedProxy('192.0.2.7')).toEqual({ address: '192.0.2.7', prefix: 32, family: 'ipv4' });
    expect(parseTrustedProxy('2001:DB8::/32')).toEqual({ address: '2001:db8::', prefix: 32, family: 'ipv6' });
    expect(parseTrustedProxy('::1')).toEqual({ address: '::1', prefix: 128, family: 'ipv6' });
  });

  it.each(['proxy.example.com', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/-1', '::/129', '1.2.3', ''])(
    'refuses %j',
    (entry) => {
      expect(parseTrustedProxy(entry)).toBeUndefined();
    },
  );
});

describe('createClientAddressResolver', () => {
  it('takes the socket peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    const resolve = createClientAddressResolver([]);
    expect(resolve('203.0.113.9', '198.51.100.1')).toBe('203.0.113.9');
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', () => {
    const resolve = createClientAddressResolver(proxies('10.0.0.0/8'));
    expect(resolve('203.0.113.9', '198.51.100.1')).toBe('203.0.113.9');
  });

  it('takes the right-most address that is not a trusted proxy', () => {
    const resolve = createClientAddressResolver(proxies('10.0.0.0/8'));
    // The client wrote the first two hops itself; 10.1.1.1 (trusted) saw 198.51.100.7.
    expect(resolve('10.0.0.1', '1.1.1.1, 2.2.2.2, 198.51.100.7, 10.1.1.1')).toBe('198.51.100.7');
    expect(resolve('::ffff:10.0.0.1', '198.51.100.7')).toBe('198.51.100.7');
  });

  it('stops at a hop that is not an address, keeping the last address a trusted proxy vouched for', () => {
    const resolve = createClientAddressResolver(proxies('10.0.0.0/8'));
    expect(resolve('10.0.0.1', '198.51.100.7, unknown, 10.2.2.2')).toBe('10.2.2.2');
    expect(resolve('10.0.0.1', 'garbage')).toBe('10.0.0.1');
  });

  it('takes the left-most hop when every hop is a trusted proxy, and reads ports and brackets', () => {
    const resolve = createClientAddressResolver(proxies('10.0.0.0/8', '2001:db8::/32'));
    expect(resolve('10.0.0.1', '10.9.9.9, 10.8.8.8')).toBe('10.9.9.9');
    expect(resolve('10.0.0.1', '198.51.100.7:4711')).toBe('198.51.100.7');
    expect(resolve('2001:db8::1', '[2001:db8:ffff::1]:443, [2001:0DB8::2]')).toBe('2001:db8:ffff::1');
  });

  it('never returns an address the client wrote to the left of an untrusted hop', () => {
    const resolve = createClientAddressResolver(proxies('10.0.0.0/8'));
    fc.assert(
      fc.property(fc.array(fc.ipV4(), { maxLength: 5 }), fc.ipV4(), (forged, seen) => {
        fc.pre(!seen.startsWith('10.'));
        expect(resolve('10.0.0.1', [...forged, seen].join(', '))).toBe(seen);
      }),
    );
  });
});

describe('addressKey', () => {
  it('keys IPv4 by the address, IPv6 by its /64', () => {
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:DB8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2::2')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
  });

  it('keys any spelling of an address by the first four groups of its expanded form', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), (groups) => {
        const full = groups.map((g) => g.toString(16).padStart(4, '0')).join(':');
        // The WHATWG URL parser writes the canonical, compressed form (RFC 5952).
        const compressed = new URL(`http://[${full}]/`).hostname.slice(1, -1);
        const expected = `${groups
          .slice(0, 4)
          .map((g) => g.toString(16))
          .join(':')}::/64`;
        expect(addressKey(full)).toBe(expected);
        expect(addressKey(compressed)).toBe(expected);
        expect(addressKey(full.toUpperCase())).toBe(expected);
      }),
    );
  });

  it('normalizes zones, case and v4-mapped spellings', () => {
    expect(normalizeAddress('FE80::1%eth0')).toBe('fe80::1');
    expect(normalizeAddress('::FFFF:10.0.0.1')).toBe('10.0.0.1');
  });
});
