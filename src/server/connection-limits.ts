import type { Server } from 'node:net';
import { addressKey, normalizeAddress } from './client-address.js';

export interface ConnectionLimitsOptions {
  /** Open connections in total (`server.maxConnections`: Node closes any beyond it at once). */
  readonly maxConnections: number;
  /** Open connections per client address key (IPv6: per /64). */
  readonly perAddress: number;
  /** Peers the per-address cap does not apply to: trusted proxies carry many clients. */
  readonly exempt: (address: string) => boolean;
}

/**
 * Caps the connections a server holds, in total and per address. Without a cap, a few hundred
 * sockets that send headers slowly (slowloris) hold a file descriptor each until the headers
 * timeout fires, and once the process runs out, accept() fails for every client. The total cap
 * keeps descriptors free; the per-address cap keeps one host from taking all of them.
 * Returns the number of open connections, for stats.
 */
export function limitConnections(server: Server, options: ConnectionLimitsOptions): () => number {
  server.maxConnections = options.maxConnections;
  const perAddress = new Map<string, number>();
  let open = 0;
  server.on('connection', (socket) => {
    const peer = normalizeAddress(socket.remoteAddress ?? '');
    if (options.exempt(peer)) {
      open++;
      socket.once('close', () => open--);
      return;
    }
    const key = addressKey(peer);
    const held = perAddress.get(key) ?? 0;
    if (held >= options.perAddress) {
      socket.destroy();
      return;
    }
    perAddress.set(key, held + 1);
    open++;
    socket.once('close', () => {
      open--;
      const left = (perAddress.get(key) ?? 1) - 1;
      if (left <= 0) perAddress.delete(key);
      else perAddress.set(key, left);
    });
  });
  return () => open;
}
