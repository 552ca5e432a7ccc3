/**
 * Whether a URL hostname (`localhost`, `127.x.y.z`, `[::1]`) is this machine: such hosts get
 * plain HTTP without --insecure when they do not speak TLS, as docker and containerd treat them.
 */
export function isLoopbackHostname(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
