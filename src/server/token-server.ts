import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { createConfiguredAdmin, listenAdmin } from './admin-server.js';
import { loadTlsPair, type TlsPair } from './check-restart-only-sections.js';
import { createTrustedProxyCheck } from './client-address.js';
import { checkConfigFiles } from './config-files.js';
import { limitConnections } from './connection-limits.js';
import { isLoopbackAddress } from './loopback-address.js';
import { createConfiguredMetricsEndpoint, listenMetrics } from './metrics-server.js';
import type { PasswordGuardStats } from './password-guard.js';
import type { RevocationStore } from './revocation-store.js';
import type { TokenServerConfig } from './server-config.js';
import type { ServerLogEntry } from './server-log-entry.js';
import { createServerReload } from './server-reload.js';
import { createServerRevocations } from './server-revocations.js';
import { createCheckedTokenHandler, requestUrl, sendNode } from './token-handler.js';
import { handlerConfigFromServerConfig } from './token-handler-config.js';
import { errorResponse } from './token-service.js';
import { htpasswdFiles, UserFileWatchers } from './user-file-watchers.js';

export { MAX_BODY_BYTES, SWEEP_INTERVAL_MS } from './token-handler.js';
/** Node's default; stated so a long query of scopes gets a 431, not a hang. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** How long SIGTERM waits for requests in flight before cutting connections. */
export const SHUTDOWN_GRACE_MS = 10_000;
/** Time a client has to send its request headers (slowloris sockets are cut after this). */
export const HEADERS_TIMEOUT_MS = 10_000;
/** Time a client has to send its whole request. */
export const REQUEST_TIMEOUT_MS = 30_000;
/**
 * How often Node looks for sockets past those timeouts. Its default, 30 s, let a socket that
 * never finished its headers live 40 s; it must be well below HEADERS_TIMEOUT_MS.
 */
export const CONNECTIONS_CHECK_MS = 1_000;
export type { ServerLogEntry } from './server-log-entry.js';

/** How a TokenServer logs, watches its users and keeps time; its behaviour comes from TokenServerConfig. */
export interface TokenServerOptions {
  /** Receives one entry per token request and per lifecycle event. Left out: nothing is logged. */
  readonly log?: (entry: ServerLogEntry) => void;
  /** Reload the htpasswd file when it changes on disk. Left out: false (reload() still works). */
  readonly watchUsers?: boolean;
  /** The clock, in milliseconds since the epoch. Left out: Date.now. */
  readonly now?: () => number;
  /** Left out: SWEEP_INTERVAL_MS. */
  readonly sweepIntervalMs?: number;
  /** The config file reload() reads again. Left out: the config's `file`. */
  readonly configFile?: string;
  /** Entries per user or address table. Left out: MAX_TRACKED_ENTRIES (password-guard.ts). */
  readonly maxTrackedEntries?: number;
  /**
   * Where revocations are kept. Server state: made once, it outlives a handler rebuilt by a
   * reload. Left out: in Redis when `store:` is (createRedisRevocationStore), else in memory
   * (createMemoryRevocationStore); kept for the refresh tokens' lifetime.
   */
  readonly revocations?: RevocationStore;
}

/** Sizes of the server's tables and queues: what bounds its memory and work. */
export interface TokenServerStats extends PasswordGuardStats {
  readonly connections: number;
  readonly reusableTokens: number;
  readonly reusableTokenBytes: number;
}

/** The standalone token server that `regauth serve` runs (see createTokenServer). */
export interface TokenServer {
  /**
   * The standalone server's node:http request listener: it answers every path (404 for those it
   * does not serve). To share a server with other routes, use createTokenHandler, which falls through.
   */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Starts listening where the config says; resolves to the URL (with the real port for port 0). */
  listen(): Promise<string>;
  /**
   * Re-reads the htpasswd file. When the new file is broken, only the users whose entry it holds
   * unchanged stay; when it cannot be read, all users loaded before stay. Either way it logs an
   * error.
   */
  reloadUsers(): Promise<void>;
  /**
   * Re-reads the whole config file (what SIGHUP does): keys and token settings, `authn:`, ACL,
   * trusted proxies, limits, and the TLS certificate and key files. Everything is built and
   * checked first and swapped in at once; on any failure nothing changes and it logs
   * `config reload failed` with the reason. Keys only a restart can change (listen, tls on or
   * off, metrics, limits.max_connections, limits.connections_per_address, store) keep their
   * value, with a warning. Lock-outs stay; remembered logins and reusable tokens are dropped.
   * Calls during a reload fold into one more reload after it. Never rejects.
   */
  reload(): Promise<void>;
  /** Sizes of the server's tables, queues and connections now. */
  stats(): TokenServerStats;
  /** Stops accepting, lets requests in flight finish for up to SHUTDOWN_GRACE_MS, then closes. */
  close(): Promise<void>;
}

/**
 * Creates the token server from a checked config: reads the key, certificate and users now.
 * It is `createTokenHandler` at the root path plus what only a listening server can do: TLS,
 * connection caps, header and request timeouts, watching the htpasswd file, and a graceful close.
 */
export async function createTokenServer(
  config: TokenServerConfig,
  options: TokenServerOptions = {},
): Promise<TokenServer> {
  const log = options.log ?? (() => {});
  await checkConfigFiles(config);
  const metricsEndpoint = await createConfiguredMetricsEndpoint(config.metrics);
  // Revocations outlive every refresh token issued under any config since start-up.
  let longestRefreshMs = config.token.refreshExpiration * 1000;
  const state = await createServerRevocations(config, {
    ...options,
    keepMs: () => longestRefreshMs,
    log,
    ...(metricsEndpoint === undefined ? {} : { metrics: metricsEndpoint.metrics }),
  });
  const revocations = state.revocations;
  const admin = await createConfiguredAdmin(config, {
    revocations,
    log,
    ...(metricsEndpoint === undefined ? {} : { metrics: metricsEndpoint.metrics }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const tokens = await createCheckedTokenHandler(handlerConfigFromServerConfig(config), {
    ...options,
    revocations,
    ...(state.sharedStore === undefined ? {} : { sharedStore: state.sharedStore }),
    ...(metricsEndpoint === undefined ? {} : { metrics: metricsEndpoint.metrics }),
  });
  let isTrustedProxy = createTrustedProxyCheck(config.trustedProxies);
  const metricsHere = metricsEndpoint !== undefined && metricsEndpoint.listen === undefined;
  const adminHere = admin !== undefined && admin.listen === undefined;

  // Whatever the handler does not own: a target that is no path (RFC 9112 §3.2) is a 400.
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (tokens.handle(req, res)) return;
    if (metricsHere && metricsEndpoint.handle(req, res)) return;
    if (adminHere && admin.handle(req, res)) return;
    const url = requestUrl(req.url);
    if (url === undefined) {
      log({ msg: 'bad request target', address: req.socket.remoteAddress ?? '', status: 400 });
      sendNode(res, errorResponse(400, 'invalid_request', 'the request target is not a path such as /token'));
      return;
    }
    sendNode(
      res,
      errorResponse(
        404,
        'invalid_request',
        `no such endpoint ${url.pathname.slice(0, 100)}; tokens are at /token`,
      ),
    );
  };

  const serverOptions = {
    maxHeaderSize: MAX_HEADER_BYTES,
    requestTimeout: REQUEST_TIMEOUT_MS,
    headersTimeout: HEADERS_TIMEOUT_MS,
    connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
  };
  let server: Server;
  let setSecureContext: ((options: SecureContextOptions) => void) | undefined;
  let tlsFiles: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  if (config.tls) {
    // The message a reload gives for the same pair (checkRestartOnlySections).
    const { cert, key } = (await loadTlsPair(config)) as TlsPair;
    tlsFiles = { cert, key };
    const https = createHttpsServer({ ...serverOptions, cert, key }, handle);
    // The admin endpoint's own listener serves the same pair: a reload swaps it there too.
    setSecureContext = (secure) => {
      https.setSecureContext(secure);
      adminServer?.setSecureContext?.(secure);
    };
    server = https;
  } else {
    server = createHttpServer(serverOptions, handle);
  }
  const openConnections = limitConnections(server, {
    maxConnections: config.limits.maxConnections,
    perAddress: config.limits.connectionsPerAddress,
    exempt: (address) => isTrustedProxy(address),
  });

  let metricsServer: { readonly close: () => Promise<void> } | undefined;
  let adminServer: Awaited<ReturnType<typeof listenAdmin>> | undefined;
  /** The listeners of their own the metrics and admin endpoints may have, started after the main one. */
  const listenOthers = async (): Promise<void> => {
    const own = metricsEndpoint?.listen;
    if (metricsEndpoint !== undefined && own !== undefined) {
      const started = await listenMetrics({ ...metricsEndpoint, listen: own });
      metricsServer = started;
      log({ msg: 'metrics listening', url: started.url });
    }
    const adminListen = admin?.listen;
    if (admin !== undefined && adminListen !== undefined) {
      const started = await listenAdmin({ ...admin, listen: adminListen }, tlsFiles);
      adminServer = started;
      log({ msg: 'admin listening', url: started.url });
      if (tlsFiles === undefined && !isLoopbackAddress(adminListen.host)) {
        log({
          msg: 'plain HTTP on a network address',
          level: 'warn',
          url: started.url,
          hint: 'the admin bearer secret travels in a header readable on the network; set tls: { cert, key } in the config, or give admin.listen a loopback address',
        });
      }
    }
  };
  const watchers = new UserFileWatchers(() => void tokens.reloadUsers(), log);
  const watchUsers = (running: TokenServerConfig): void => {
    if (options.watchUsers) watchers.update(htpasswdFiles(running));
  };
  watchUsers(config);
  const reload = createServerReload({
    configFile: options.configFile ?? config.file,
    started: config,
    reloadHandler: tokens.reloadChecked,
    ...(setSecureContext === undefined ? {} : { setSecureContext }),
    applied: (running) => {
      longestRefreshMs = Math.max(longestRefreshMs, running.token.refreshExpiration * 1000);
      isTrustedProxy = createTrustedProxyCheck(running.trustedProxies);
      watchUsers(running);
    },
    log,
  });

  return {
    handle,
    reloadUsers: tokens.reloadUsers,
    reload,
    stats: () => ({ ...tokens.stats(), connections: openConnections() }),
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.listen.port, config.listen.host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          const url = `${config.tls ? 'https' : 'http'}://${host}:${address.port}`;
          log({ msg: 'listening', url });
          if (!config.tls && !isLoopbackAddress(address.address)) {
            log({
              msg: 'plain HTTP on a network address',
              level: 'warn',
              url,
              hint: 'passwords travel in Basic headers and tokens in answers, readable on the network; set tls: { cert, key } in the config, or listen on 127.0.0.1 behind a reverse proxy that serves HTTPS',
            });
          }
          listenOthers().then(
            () => resolve(url),
            (err: unknown) => {
              void metricsServer?.close();
              void adminServer?.close();
              server.close();
              reject(err);
            },
          );
        });
      }),
    close: () =>
      new Promise((resolve) => {
        void metricsServer?.close();
        void adminServer?.close();
        void state.close();
        watchers.close();
        tokens.close();
        if (!server.listening) {
          resolve();
          return;
        }
        log({ msg: 'shutting down' });
        const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
