import { registryApiHost } from '../reference/parse-reference.js';
import { isLoopbackHostname } from '../transport/is-loopback-hostname.js';

/** Whether a registry (`host[:port]`) is on this machine: plain HTTP without --insecure. */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.startsWith('[')
    ? registry.slice(0, registry.indexOf(']') + 1)
    : registry.split(':')[0];
  return isLoopbackHostname(host ?? '');
}

/** `https://host/` for a registry; plain HTTP for loopback, or anywhere with `insecure`. */
export function registryBaseUrl(registry: string, insecure = false): URL {
  const scheme = insecure || isLoopbackHost(registry) ? 'http' : 'https';
  return new URL(`${scheme}://${registryApiHost(registry)}/`);
}
