import { type RegistryHandle, startRegistry } from '../test/harness/registry.js';
import { startTokenServer, type TokenServerHandle } from '../test/harness/token-server.js';
import { type DelayProxy, startDelayProxy } from './delay-proxy.js';

export const BENCH_USER = 'bench';
export const BENCH_PASSWORD = 'bench-password-7f3a';

export interface BenchStack {
  readonly tokenServer: TokenServerHandle;
  readonly registry: RegistryHandle;
  /** A second registry (no auth) for copies between registries. */
  readonly mirror: RegistryHandle;
  readonly tokenProxy: DelayProxy;
  readonly registryProxy: DelayProxy;
  readonly mirrorProxy: DelayProxy;
  /** `127.0.0.1:<port>` of the registry as clients see it (through the delay proxy). */
  readonly host: string;
  readonly mirrorHost: string;
  /** Requests, connections and bytes through every proxy since the last reset. */
  counters(): {
    requests: number;
    connections: number;
    /**
     * Connections that never spoke HTTP/1.1: on these plain-HTTP registries, a client's TLS
     * ping (regauth, like go-containerregistry, asks a loopback registry for TLS first), each a
     * round trip that is not a request.
     */
    probes: number;
    bytesUp: number;
    methods: Record<string, number>;
  };
  resetCounters(): void;
  stop(): Promise<void>;
}

function portOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/**
 * The real registry trusting `regauth serve`, and a second open registry, each behind a TCP
 * proxy that delays every chunk by `delayMs` each way (round trips count as on a network).
 * The registry's realm points at the token server's proxy, so token requests pay it too.
 */
export async function startBenchStack(delayMs: number): Promise<BenchStack> {
  const tokenServer = await startTokenServer({
    users: { [BENCH_USER]: BENCH_PASSWORD },
    acl: [
      { match: { account: BENCH_USER }, actions: ['*'] },
      { match: { account: BENCH_USER, type: 'registry', name: 'catalog' }, actions: ['*'] },
    ],
    service: 'bench-registry',
    issuer: 'bench-issuer',
  });
  const tokenProxy = await startDelayProxy({ target: portOf(tokenServer.url), delayMs });
  const registry = await startRegistry({
    auth: {
      token: {
        realm: `http://${tokenProxy.host}/token`,
        service: tokenServer.service,
        issuer: tokenServer.issuer,
        rootcertbundle: tokenServer.certFile,
      },
    },
  });
  const registryProxy = await startDelayProxy({ target: portOf(registry.url), delayMs });
  const mirror = await startRegistry();
  const mirrorProxy = await startDelayProxy({ target: portOf(mirror.url), delayMs });
  const proxies = [tokenProxy, registryProxy, mirrorProxy];
  return {
    tokenServer,
    registry,
    mirror,
    tokenProxy,
    registryProxy,
    mirrorProxy,
    host: registryProxy.host,
    mirrorHost: mirrorProxy.host,
    counters() {
      const methods: Record<string, number> = {};
      let requests = 0;
      let connections = 0;
      let probes = 0;
      let bytesUp = 0;
      for (const p of proxies) {
        const s = p.stats();
        requests += s.requests;
        connections += s.connections;
        probes += s.brokenConnections;
        bytesUp += s.bytesUp;
        for (const [m, n] of Object.entries(s.methods)) methods[m] = (methods[m] ?? 0) + n;
      }
      return { requests, connections, probes, bytesUp, methods };
    },
    resetCounters() {
      for (const p of proxies) p.reset();
    },
    async stop() {
      for (const p of proxies) await p.close();
      await registry.stop();
      await mirror.stop();
      await tokenServer.stop();
    },
  };
}
