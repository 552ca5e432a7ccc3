import { BlockList, isIP, isIPv4 } from 'node:net';

/** One `trusted_proxies` entry: an address, or a network in CIDR notation. */
export interface TrustedProxy {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/**
 * `::ffff:192.0.2.1` (how a dual-stack socket shows an IPv4 peer) becomes `192.0.2.1`, and an
 * IPv6 zone (`fe80::1%eth0`) is dropped, so one client has one spelling.
 */
export function normalizeAddress(address: string): string {
  const unzoned = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(unzoned);
  return mapped?.[1] ?? unzoned.toLowerCase();
}

/** Parses `192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`; undefined when it is neither. */
export function parseTrustedProxy(entry: string): TrustedProxy | undefined {
  const slash = entry.indexOf('/');
  const address = normalizeAddress(slash < 0 ? entry : entry.slice(0, slash));
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const text = entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(text) || Number(text) > max) return undefined;
    prefix = Number(text);
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Whether a (normalized) address is one of the trusted proxies. */
export function createTrustedProxyCheck(
  trustedProxies: readonly TrustedProxy[],
): (address: string) => boolean {
  if (trustedProxies.length === 0) return () => false;
  const trusted = new BlockList();
  for (const proxy of trustedProxies) trusted.addSubnet(proxy.address, proxy.prefix, proxy.family);
  return (address) => isIP(address) !== 0 && trusted.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
}

/** Strips a port some proxies append (`192.0.2.1:1234`, `[2001:db8::1]:1234`). */
function stripPort(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (bracketed?.[1] !== undefined) return bracketed[1];
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(hop);
  return v4?.[1] ?? hop;
}

/**
 * Finds the client's address: the socket peer, unless the peer is a trusted proxy; then
 * `X-Forwarded-For` is read from the right, each hop trusted only when the one after it is a
 * trusted proxy, and the right-most address that is not a trusted proxy is the client. Hops to
 * its left are whatever the client wrote. This is nginx's `set_real_ip_from` with
 * `real_ip_recursive on` (ngx_http_realip_module). docker_auth's `real_ip_header` takes a fixed
 * position (`real_ip_pos`, the first by default), which a client can write itself.
 */
export function createClientAddressResolver(
  trustedProxies: readonly TrustedProxy[],
): (peer: string, forwardedFor: string | undefined) => string {
  const isTrusted = createTrustedProxyCheck(trustedProxies);
  return (peer, forwardedFor) => {
    let client = normalizeAddress(peer);
    if (forwardedFor === undefined || isIP(client) === 0 || !isTrusted(client)) return client;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeAddress(stripPort((hops[i] as string).trim()));
      // Not an address ("unknown", garbage): stop at the last hop a trusted proxy vouched for.
      if (isIP(hop) === 0) break;
      client = hop;
      if (!isTrusted(hop)) break;
    }
    return client;
  };
}

/** The eight 16-bit groups of an IPv6 address, or undefined when it is not one. */
function ipv6Groups(address: string): number[] | undefined {
  if (isIP(address) !== 6) return undefined;
  let text = address;
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail?.[1] !== undefined) {
    const [a, b, c, d] = tail[1].split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -tail[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const fill = rest === undefined ? [] : Array(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((g) => Number.parseInt(g, 16));
}

/**
 * The key a client address is counted under: an IPv4 address as it is, an IPv6 address by its
 * /64 — the smallest block an ISP hands a customer (RFC 6177), so one host can take a new address
 * per request within it.
 */
export function addressKey(address: string): string {
  const normalized = normalizeAddress(address);
  const groups = ipv6Groups(normalized);
  if (!groups) return normalized;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}
