import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { withFileSystemErrors } from '../errors/file-system-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { MetricsConfig } from './metrics-config.js';
import { createMetricsEndpoint } from './metrics-endpoint.js';
import { createTokenMetrics, type TokenMetrics } from './token-metrics.js';

/** A scrape is one short GET: a scraper that takes longer is cut off. */
const METRICS_REQUEST_TIMEOUT_MS = 10_000;

/** The metrics of `serve.yml`'s `metrics:` section, with the endpoint that serves them. */
export interface ConfiguredMetrics {
  readonly metrics: TokenMetrics;
  /** Answers the metrics path (true), or leaves the request alone (false). */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Where the endpoint has a listener of its own; left out: it is served beside /token. */
  readonly listen?: { readonly host: string; readonly port: number };
}

/**
 * The metrics bearer token (`metrics.bearer_token_file`), read and checked; undefined when the
 * metrics are off or open. A config reload runs it too, so a file a restart would refuse fails
 * the reload instead of the next start.
 */
export async function readMetricsBearerToken(config: MetricsConfig | undefined): Promise<string | undefined> {
  const file = config?.enabled ? config.bearerTokenFile : undefined;
  if (file === undefined) return undefined;
  const bearerToken = (
    await withFileSystemErrors('read the metrics bearer token (metrics.bearer_token_file)', file, () =>
      readFile(file, 'utf8'),
    )
  ).trim();
  if (/\s/.test(bearerToken) || bearerToken === '') {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `metrics.bearer_token_file: ${file} must hold one token without spaces (openssl rand -hex 32 > ${file})`,
    );
  }
  return bearerToken;
}

/** The metrics and their endpoint when `metrics.enabled`, else undefined; reads the bearer token file now. */
export async function createConfiguredMetricsEndpoint(
  config: MetricsConfig | undefined,
): Promise<ConfiguredMetrics | undefined> {
  if (config === undefined || !config.enabled) return undefined;
  const bearerToken = await readMetricsBearerToken(config);
  const metrics = await createTokenMetrics();
  const handle = createMetricsEndpoint({
    metrics,
    path: config.path,
    ...(bearerToken === undefined ? {} : { bearerToken }),
  });
  return { metrics, handle, ...(config.listen === undefined ? {} : { listen: config.listen }) };
}

/** Starts the endpoint's own listener; resolves to its URL and a function that closes it. */
export function listenMetrics(
  endpoint: ConfiguredMetrics & { readonly listen: { readonly host: string; readonly port: number } },
): Promise<{ readonly url: string; readonly close: () => Promise<void> }> {
  const server: Server = createServer(
    { requestTimeout: METRICS_REQUEST_TIMEOUT_MS, headersTimeout: METRICS_REQUEST_TIMEOUT_MS },
    (req, res) => {
      if (endpoint.handle(req, res)) return;
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('only the metrics are served here\n');
    },
  );
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(endpoint.listen.port, endpoint.listen.host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${host}:${address.port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
