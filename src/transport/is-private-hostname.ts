import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * Addresses that name this machine or a private network: loopback, RFC 1918, link-local (the
 * cloud metadata service at 169.254.169.254 among them), unique-local IPv6, and the unspecified
 * address (which connects to this machine on Linux). The set of Go's `IsLoopback`,
 * `IsPrivate`, `IsLinkLocalUnicast` and `IsUnspecified`, which go-containerregistry's
 * `validateRealmURL` refuses as a public registry's realm. IPv4-mapped IPv6 addresses are
 * matched by their IPv4 part.
 */
let PRIVATE_IPV6: BlockList | undefined;

/** Built on first use: only an IPv6 literal needs it, and building it costs a start-up a millisecond. */
function privateIPv6(): BlockList {
  if (PRIVATE_IPV6) return PRIVATE_IPV6;
  const list = new BlockList();
  for (const [net, prefix] of [
    ['::', 128],
    ['::1', 128],
    ['fc00::', 7],
    ['fe80::', 10],
  ] as const) {
    list.addSubnet(net, prefix, 'ipv6');
  }
  for (const [net, prefix] of [
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['172.16.0.0', 12],
    ['192.168.0.0', 16],
  ] as const) {
    list.addSubnet(net, prefix, 'ipv4');
  }
  PRIVATE_IPV6 = list;
  return list;
}

/** The same IPv4 networks, for a dotted-quad address (what isIPv4 accepts). */
function isPrivateIPv4(address: string): boolean {
  const [a, b] = address.split('.', 2).map(Number);
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 169 && b === 254) ||
    (a === 172 && b !== undefined && b >= 16 && b <= 31) ||
    (a === 192 && b === 168)
  );
}

/**
 * Whether a URL hostname (as `URL.hostname` gives it: IPv6 in brackets, IPv4 normalised) is
 * this machine or a private network address. Names other than `localhost` are not resolved:
 * what a name resolves to can change between this check and the connection anyway.
 */
export function isPrivateHostname(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIPv4(bare)) return isPrivateIPv4(bare);
  if (isIPv6(bare)) return privateIPv6().check(bare, 'ipv6');
  return false;
}
