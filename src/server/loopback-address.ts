import { isIPv4, isIPv6 } from 'node:net';

/**
 * Whether an address a server listens on reaches only this machine: 127.0.0.0/8 (RFC 1122
 * §3.2.1.3), ::1 (RFC 4291 §2.5.3) and IPv4-mapped loopback. `0.0.0.0`, `::` and every other
 * address are reachable from elsewhere.
 */
export function isLoopbackAddress(address: string): boolean {
  const host = address.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost') return true;
  if (isIPv4(host)) return host.startsWith('127.');
  if (!isIPv6(host)) return false;
  if (host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
  return mapped !== null && (mapped[1] as string).startsWith('127.');
}
