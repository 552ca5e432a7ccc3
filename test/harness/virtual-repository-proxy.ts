import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface VirtualRepositoryProxy {
  /** `127.0.0.1:<port>`: use it as the registry host in references. */
  readonly host: string;
  /** Every registry request that came in, as `METHOD path` (the client's path, before rewriting). */
  readonly registryLog: string[];
  /** Every token request that came in, as its URL path and query. */
  readonly realmLog: string[];
  close(): Promise<void>;
}

/**
 * A registry front the way Artifactory serves a virtual repository: `/v2/<key>/<name>/…` is the
 * repository `<name>` of the registry behind, so the registry's challenge names
 * `scope="repository:<name>:pull"`, without the key the client's path had. The challenge's realm
 * is rewritten to the proxy's own `/token`, which forwards to the token server, so both kinds of
 * request are counted here. Requests pass with their Host header unchanged, so the registry's
 * Location headers point back at the proxy.
 */
export async function startVirtualRepositoryProxy(options: {
  /** `127.0.0.1:<port>` of the registry. */
  readonly registry: string;
  /** The token server's realm URL (plain HTTP), as the registry's challenge names it. */
  readonly realm: string;
  /** The virtual repository's key: the first path part the proxy drops. */
  readonly key: string;
}): Promise<VirtualRepositoryProxy> {
  const [registryHost = '127.0.0.1', registryPort = '80'] = options.registry.split(':');
  const realm = new URL(options.realm);
  const registryLog: string[] = [];
  const realmLog: string[] = [];
  let ownRealm = '';
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    const toRealm = path.startsWith(`${realm.pathname}?`) || path === realm.pathname;
    if (toRealm) realmLog.push(path);
    else registryLog.push(`${req.method} ${path}`);
    const prefix = `/v2/${options.key}/`;
    const upstreamPath = !toRealm && path.startsWith(prefix) ? `/v2/${path.slice(prefix.length)}` : path;
    const upstream = httpRequest(
      {
        host: toRealm ? realm.hostname : registryHost,
        port: Number(toRealm ? realm.port : registryPort),
        method: req.method,
        path: upstreamPath,
        headers: req.headers,
      },
      (up) => {
        const headers = { ...up.headers };
        const challenge = headers['www-authenticate'];
        if (typeof challenge === 'string') {
          headers['www-authenticate'] = challenge.replace(`realm="${options.realm}"`, `realm="${ownRealm}"`);
        }
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  ownRealm = `http://127.0.0.1:${port}${realm.pathname}`;
  return {
    host: `127.0.0.1:${port}`,
    registryLog,
    realmLog,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
