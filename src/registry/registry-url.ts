import { registryApiHost } from '../reference/parse-reference.js';
import { isLoopbackHostname } from '../transport/is-loopback-hostname.js';

/** Whether a registry (`host[:port]`) is on this machine: HTTPS when it speaks it, else plain HTTP without --insecure. */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.startsWith('[')
    ? registry.slice(0, registry.indexOf(']') + 1)
    : registry.split(':')[0];
  return isLoopbackHostname(host ?? '');
}

/**
 * `https://host/` for a registry; plain HTTP anywhere with `insecure`, and for loopback as a first
 * guess: RegistrySchemes (which createRegistryClients uses) pings a loopback registry and speaks
 * HTTPS to it when it answers over TLS.
 */
export function registryBaseUrl(registry: string, insecure = false): URL {
  const scheme = insecure || isLoopbackHost(registry) ? 'http' : 'https';
  return new URL(`${scheme}://${registryApiHost(registry)}/`);
}
