import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RegauthError } from '../errors/regauth-error.js';
import type { TokenMetrics } from './token-metrics.js';

/** What the metrics endpoint serves and who may read it. */
export interface MetricsEndpointOptions {
  readonly metrics: TokenMetrics;
  /** The URL path, such as `/metrics`. */
  readonly path: string;
  /** The token a scraper must send as `Authorization: Bearer …`. Left out: anyone who reaches it. */
  readonly bearerToken?: string;
}

/** Shortest bearer token taken: a guessable one protects nothing. */
export const MIN_METRICS_TOKEN_CHARS = 16;

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * A node:http handler for the Prometheus endpoint: answers its path and returns true, returns
 * false for any other. The token is compared as a SHA-256 digest in constant time, so neither
 * its length nor a prefix shows in the answer time.
 */
export function createMetricsEndpoint(
  options: MetricsEndpointOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const expected = options.bearerToken === undefined ? undefined : digest(options.bearerToken);
  if (options.bearerToken !== undefined && options.bearerToken.length < MIN_METRICS_TOKEN_CHARS) {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `metrics.bearer_token_file: the token has ${options.bearerToken.length} characters; use at least ${MIN_METRICS_TOKEN_CHARS} random ones (openssl rand -hex 32)`,
    );
  }
  return (req, res) => {
    const target = req.url ?? '/';
    const query = target.indexOf('?');
    if ((query < 0 ? target : target.slice(0, query)) !== options.path) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }, 'use GET\n');
      return true;
    }
    if (expected !== undefined) {
      const match = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
      if (!match || !timingSafeEqual(digest(match[1] as string), expected)) {
        send(
          res,
          401,
          { 'www-authenticate': 'Bearer realm="metrics"', 'content-type': 'text/plain' },
          'the metrics endpoint needs the bearer token of metrics.bearer_token_file\n',
        );
        return true;
      }
    }
    options.metrics.scrape().then(
      ({ contentType, body }) =>
        send(
          res,
          200,
          { 'content-type': contentType, 'cache-control': 'no-store' },
          req.method === 'HEAD' ? '' : body,
        ),
      () => send(res, 500, { 'content-type': 'text/plain' }, 'collecting the metrics failed\n'),
    );
    return true;
  };
}
