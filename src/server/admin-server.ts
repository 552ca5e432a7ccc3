import { readFile } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { withFileSystemErrors } from '../errors/file-system-error.js';
import { checkAdminBearerToken, createAdminEndpoint } from './admin-endpoint.js';
import { createClientAddressResolver } from './client-address.js';
import type { RevocationStore } from './revocation-store.js';
import type { TokenServerConfig } from './server-config.js';
import type { ServerLogEntry } from './server-log-entry.js';
import type { TokenMetrics } from './token-metrics.js';

/** An admin request is one short JSON exchange: a client that takes longer is cut off. */
const ADMIN_REQUEST_TIMEOUT_MS = 10_000;

/** The admin endpoints of `serve.yml`'s `admin:` section. */
export interface ConfiguredAdmin {
  /** Answers paths under the admin path (true), or leaves the request alone (false). */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Where the endpoints have a listener of their own; left out: they are served beside /token. */
  readonly listen?: { readonly host: string; readonly port: number };
}

/**
 * The admin bearer secret (`admin.bearer_token_file`), read and checked; undefined when the admin
 * endpoints are off. A config reload runs it too, so a secret a restart would refuse fails the
 * reload instead of the next start.
 */
export async function readAdminBearerToken(config: TokenServerConfig): Promise<string | undefined> {
  const admin = config.admin;
  if (admin === undefined || !admin.enabled || admin.bearerTokenFile === undefined) return undefined;
  const file = admin.bearerTokenFile;
  const bearerToken = (
    await withFileSystemErrors('read the admin bearer secret (admin.bearer_token_file)', file, () =>
      readFile(file, 'utf8'),
    )
  ).trim();
  checkAdminBearerToken(bearerToken);
  return bearerToken;
}

/** The admin endpoints when `admin.enabled`, else undefined; reads the bearer secret file now. */
export async function createConfiguredAdmin(
  config: TokenServerConfig,
  deps: {
    readonly revocations: RevocationStore;
    readonly log: (entry: ServerLogEntry) => void;
    readonly metrics?: TokenMetrics;
    readonly now?: () => number;
  },
): Promise<ConfiguredAdmin | undefined> {
  const admin = config.admin;
  const bearerToken = await readAdminBearerToken(config);
  if (admin === undefined || bearerToken === undefined) return undefined;
  const handle = createAdminEndpoint({
    path: admin.path,
    bearerToken,
    revocations: deps.revocations,
    accessExpiration: config.token.expiration,
    clientAddress: createClientAddressResolver(config.trustedProxies),
    log: deps.log,
    ...(deps.metrics === undefined ? {} : { metrics: deps.metrics }),
    ...(deps.now === undefined ? {} : { now: deps.now }),
  });
  return { handle, ...(admin.listen === undefined ? {} : { listen: admin.listen }) };
}

/**
 * Starts the admin endpoints' own listener, with the server's TLS certificate when it has one:
 * the bearer secret must not cross a network in clear text. Resolves to its URL and a closer.
 */
export function listenAdmin(
  admin: ConfiguredAdmin & { readonly listen: { readonly host: string; readonly port: number } },
  tls: { readonly cert: Buffer; readonly key: Buffer } | undefined,
): Promise<{
  readonly url: string;
  readonly close: () => Promise<void>;
  /** Loads a new certificate and key into the running listener (a TLS reload); absent without TLS. */
  readonly setSecureContext?: (options: SecureContextOptions) => void;
}> {
  const options = { requestTimeout: ADMIN_REQUEST_TIMEOUT_MS, headersTimeout: ADMIN_REQUEST_TIMEOUT_MS };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (admin.handle(req, res)) return;
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"only the admin endpoints are served here"}\n');
  };
  const https = tls === undefined ? undefined : createHttpsServer({ ...options, ...tls }, handle);
  const server: Server = https ?? createHttpServer(options, handle);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(admin.listen.port, admin.listen.host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({
        url: `${tls === undefined ? 'http' : 'https'}://${host}:${address.port}`,
        ...(https === undefined ? {} : { setSecureContext: (secure) => https.setSecureContext(secure) }),
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
