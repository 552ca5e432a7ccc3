import { describe, expect, it } from 'vitest';
import { isPrivateHostname } from './is-private-hostname.js';

const hostname = (url: string) => new URL(url).hostname;

describe('isPrivateHostname', () => {
  it.each([
    'http://localhost/',
    'http://LOCALHOST./',
    'http://registry.localhost/',
    'http://127.0.0.1/',
    'http://127.9.8.7/',
    'http://0x7f.1/',
    'http://2130706433/',
    'http://0.0.0.0/',
    'http://10.1.2.3/',
    'http://10.255.255.255/',
    'http://0.1.2.3/',
    'http://172.16.0.1/',
    'http://172.31.255.255/',
    'http://192.168.1.1/',
    'http://192.168.255.255/',
    'http://169.254.0.1/',
    'http://169.254.169.254/',
    'http://[::1]/',
    'http://[::]/',
    'http://[fd00:ec2::254]/',
    'http://[fe80::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:10.0.0.1]/',
  ])('takes %s for this machine or a private network', (url) => {
    expect(isPrivateHostname(hostname(url))).toBe(true);
  });

  it.each([
    'https://auth.docker.io/',
    'https://127.example.com/',
    'https://localhost.example.com/',
    'https://8.8.8.8/',
    'https://172.32.0.1/',
    'https://172.15.255.255/',
    'https://11.0.0.1/',
    'https://9.255.255.255/',
    'https://1.0.0.0/',
    'https://126.255.255.255/',
    'https://128.0.0.1/',
    'https://169.253.255.255/',
    'https://169.255.0.1/',
    'https://172.0.0.1/',
    'https://192.167.255.255/',
    'https://10.0.0.1.example.com/',
    'https://[::ffff:172.32.0.1]/',
    'https://192.169.0.1/',
    'https://[2001:db8::1]/',
    'https://[::ffff:8.8.8.8]/',
  ])('takes %s for a public host', (url) => {
    expect(isPrivateHostname(hostname(url))).toBe(false);
  });
});
