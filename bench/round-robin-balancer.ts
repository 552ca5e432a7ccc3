import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { RegauthError } from '../src/errors/regauth-error.js';

/**
 * A TCP load balancer on loopback that hands each new connection to the next backend in turn,
 * the way a layer-4 balancer (HAProxy `mode tcp` with `balance roundrobin`, a Kubernetes Service)
 * spreads clients over replicas. A request on a kept-alive connection stays with the backend the
 * connection went to: spreading requests needs a connection each.
 *
 * A backend that refuses the connection is skipped for that connection, as a balancer's health
 * check would take it out; one that is marked down (setDown) gets no new connections.
 */

/** Connections held at once; more are refused, so a runaway loop in a test cannot exhaust the machine. */
export const MAX_BALANCED_CONNECTIONS = 1024;

export interface Backend {
  readonly host: string;
  readonly port: number;
}

export interface RoundRobinBalancer {
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  readonly port: number;
  /** Connections handed to each backend so far, in the order the backends were given. */
  connectionsPerBackend(): number[];
  /** Takes a backend out of (down: true) or back into the rotation; open connections stay. */
  setDown(index: number, down: boolean): void;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export async function startRoundRobinBalancer(backends: readonly Backend[]): Promise<RoundRobinBalancer> {
  if (backends.length === 0)
    throw new RegauthError('ERR_INVALID_OPTIONS', 'the balancer needs at least one backend');
  for (const b of backends) {
    if (!isLoopback(b.host)) {
      throw new RegauthError('ERR_INVALID_OPTIONS', `backend ${b.host}:${b.port} is not a loopback address`);
    }
  }
  const counts = backends.map(() => 0);
  const down = backends.map(() => false);
  const sockets = new Set<Socket>();
  let next = 0;

  /** Connects to the next backend in turn that is up and accepts, trying each at most once. */
  const pick = (client: Socket, tried: number): void => {
    if (tried >= backends.length || client.destroyed) {
      client.destroy();
      return;
    }
    const index = next;
    next = (next + 1) % backends.length;
    if (down[index]) {
      pick(client, tried + 1);
      return;
    }
    const backend = backends[index] as Backend;
    const upstream = connect({ host: backend.host, port: backend.port });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    let connected = false;
    upstream.once('error', () => {
      if (connected) client.destroy();
      else pick(client, tried + 1);
    });
    upstream.once('connect', () => {
      connected = true;
      counts[index] = (counts[index] ?? 0) + 1;
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    client.once('close', () => upstream.destroy());
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    pick(client, 0);
  });
  server.maxConnections = MAX_BALANCED_CONNECTIONS;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    port,
    connectionsPerBackend: () => [...counts],
    setDown: (index, isDown) => {
      down[index] = isDown;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
