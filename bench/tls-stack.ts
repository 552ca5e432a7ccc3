import { lookup } from 'node:dns/promises';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPrivateHostname } from '../src/transport/is-private-hostname.js';
import { freePort } from '../test/harness/processes.js';
import { countAccessLogRequests, type RegistryHandle, startRegistry } from '../test/harness/registry.js';
import { makeLoopbackTls } from '../test/harness/tls.js';
import { startTokenServer, type TokenServerHandle } from '../test/harness/token-server.js';
import { type DelayProxy, startDelayProxy } from './delay-proxy.js';
import { BENCH_PASSWORD, BENCH_USER } from './stack.js';

/**
 * A name for this machine's loopback that clients treat as any remote host: one the hosts file
 * maps to 127.0.0.1 (so no DNS is asked), other than localhost. Clients treat `127.0.0.1` and
 * `localhost` registries specially (regauth, like go-containerregistry, first pings a loopback
 * registry to learn whether it speaks TLS; a registry named by a public name is not allowed to
 * send credentials to a loopback realm), so the bench names its TLS registry and realm the way
 * users meet real ones when it can. Undefined when the hosts file has no such name.
 */
export async function remoteLookingLoopbackName(hostsFile = '/etc/hosts'): Promise<string | undefined> {
  const text = await readFile(hostsFile, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [address, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
    if (address !== '127.0.0.1') continue;
    for (const name of names) {
      if (!/^[a-z][a-z0-9.-]*$/i.test(name) || isPrivateHostname(name)) continue;
      const found = await lookup(name, { all: true }).catch(() => []);
      if (found.length > 0 && found.every((a) => a.address === '127.0.0.1')) return name;
    }
  }
  return undefined;
}

export interface TlsBenchStack {
  /** `name:<port>` of the registry as clients see it (through its delay proxy). */
  readonly host: string;
  /** `https://name:<other port>/token`, through the token server's delay proxy. */
  readonly realm: string;
  /** The CA that signed both servers' certificate, in PEM: for `--ca-file`. */
  readonly caFile: string;
  /** A folder holding only `ca.crt` (that CA): for skopeo's `--cert-dir`. */
  readonly certDir: string;
  readonly registry: RegistryHandle;
  readonly tokenServer: TokenServerHandle;
  readonly registryProxy: DelayProxy;
  readonly tokenProxy: DelayProxy;
  /**
   * Since the last reset: HTTP requests as the servers saw them (the registry's access log and
   * the token server's `regauth_token_requests_total`: the proxies see only TLS records), TCP
   * (so TLS) connections and bytes sent by clients, as the proxies saw them.
   */
  counters(): Promise<{ requests: number; connections: number; bytesUp: number }>;
  resetCounters(): Promise<void>;
  stop(): Promise<void>;
}

/** The sum of every `regauth_token_requests_total` series on a `/metrics` page. */
async function tokenRequests(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(30_000) })).text();
  let total = 0;
  for (const m of text.matchAll(/^regauth_token_requests_total(?:\{[^}]*\})? (\d+)$/gm))
    total += Number(m[1]);
  return total;
}

/**
 * The real registry and `regauth serve`, both serving TLS with one certificate (127.0.0.1,
 * localhost and `names.registry`/`names.realm`) that a throwaway CA signed, each behind a delay
 * proxy that also charges every new connection its TCP handshake's round trip. The registry is
 * reached as `names.registry:<port>`, the realm as `names.realm:<another port>`: two origins, so
 * two TLS connections for a client that needs both. Whatever started is stopped when a later
 * step fails.
 */
export async function startTlsBenchStack(
  delayMs: number,
  names: { readonly registry: string; readonly realm: string },
): Promise<TlsBenchStack> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-bench-tls-'));
  const stops: (() => Promise<void>)[] = [async () => rm(dir, { recursive: true, force: true })];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const tls = await makeLoopbackTls(
      [...new Set([names.registry, names.realm])].filter((n) => n !== 'localhost' && n !== '127.0.0.1'),
    );
    const caFile = join(dir, 'ca.pem');
    const certDir = join(dir, 'cert-dir');
    await mkdir(certDir);
    await Promise.all([
      writeFile(caFile, tls.caPem),
      writeFile(join(certDir, 'ca.crt'), tls.caPem),
      writeFile(join(dir, 'tls.crt'), tls.certPem),
      writeFile(join(dir, 'tls.key'), tls.keyPem),
    ]);
    const metricsPort = await freePort();
    const tokenServer = await startTokenServer({
      users: { [BENCH_USER]: BENCH_PASSWORD },
      acl: [{ match: { account: BENCH_USER }, actions: ['*'] }],
      service: 'bench-tls-registry',
      issuer: 'bench-tls-issuer',
      extra: {
        tls: { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') },
        metrics: { enabled: true, listen: `127.0.0.1:${metricsPort}` },
      },
    });
    stops.push(() => tokenServer.stop());
    const port = (url: string) => Number(new URL(url).port);
    const tokenProxy = await startDelayProxy({
      target: { host: '127.0.0.1', port: port(tokenServer.url) },
      delayMs,
      chargeHandshake: true,
    });
    stops.push(() => tokenProxy.close());
    const realm = `https://${names.realm}:${tokenProxy.port}/token`;
    const registry = await startRegistry({
      tls,
      accessLog: true,
      auth: {
        token: {
          realm,
          service: tokenServer.service,
          issuer: tokenServer.issuer,
          rootcertbundle: tokenServer.certFile,
        },
      },
    });
    stops.push(() => registry.stop());
    const registryProxy = await startDelayProxy({
      target: { host: '127.0.0.1', port: port(registry.url) },
      delayMs,
      chargeHandshake: true,
    });
    stops.push(() => registryProxy.close());
    const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    const proxies = [registryProxy, tokenProxy];
    let base = { registry: 0, token: 0 };
    // The registry writes its access log line after answering: the scrape first gives the line
    // of a request answered just now the time to arrive through the pipe.
    const now = async () => {
      const token = await tokenRequests(metricsUrl);
      return { registry: countAccessLogRequests(registry.output()), token };
    };
    return {
      host: `${names.registry}:${registryProxy.port}`,
      realm,
      caFile,
      certDir,
      registry,
      tokenServer,
      registryProxy,
      tokenProxy,
      async counters() {
        const n = await now();
        const stats = proxies.map((p) => p.stats());
        return {
          requests: n.registry - base.registry + n.token - base.token,
          connections: stats.reduce((sum, s) => sum + s.connections, 0),
          bytesUp: stats.reduce((sum, s) => sum + s.bytesUp, 0),
        };
      },
      async resetCounters() {
        base = await now();
        for (const p of proxies) p.reset();
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
