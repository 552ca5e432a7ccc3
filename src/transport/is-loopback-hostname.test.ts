import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../registry/registry-url.js';
import { isLoopbackHostname } from './is-loopback-hostname.js';

describe('isLoopbackHostname', () => {
  it.each(['localhost', '127.0.0.1', '127.1.2.3', '[::1]'])('takes %s for this machine', (host) => {
    expect(isLoopbackHostname(host)).toBe(true);
  });

  it.each(['127.example.com', '127.0.0.1.nip.io', 'localhost.example', '10.0.0.1', '[::2]', ''])(
    'does not take %s for this machine (a name that merely starts with 127. is a remote host)',
    (host) => {
      expect(isLoopbackHostname(host)).toBe(false);
    },
  );
});

describe('isLoopbackHost', () => {
  it('strips the port of host:port and of [IPv6]:port', () => {
    expect(isLoopbackHost('127.0.0.1:5000')).toBe(true);
    expect(isLoopbackHost('[::1]:5000')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('127.example.com:443')).toBe(false);
  });
});
