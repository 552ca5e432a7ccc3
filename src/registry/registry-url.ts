import { registryApiHost } from '../reference/parse-reference.js';

/** Hosts that speak plain HTTP without --insecure, as docker and containerd treat them. */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.startsWith('[')
    ? registry.slice(0, registry.indexOf(']') + 1)
    : registry.split(':')[0];
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host ?? '');
}

/** `https://host/` for a registry; plain HTTP for loopback, or anywhere with `insecure`. */
export function registryBaseUrl(registry: string, insecure = false): URL {
  const scheme = insecure || isLoopbackHost(registry) ? 'http' : 'https';
  return new URL(`${scheme}://${registryApiHost(registry)}/`);
}
