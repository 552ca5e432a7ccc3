import { type ConfigReader, parseListen } from './server-config.js';

/** Where Prometheus scrapes: the usual path, so a scrape config needs no `metrics_path`. */
export const DEFAULT_METRICS_PATH = '/metrics';

/** The `metrics:` section of `serve.yml`. */
export interface MetricsConfig {
  /** Left out: false; the endpoint does not exist. */
  readonly enabled: boolean;
  /** The URL path of the endpoint. Left out: DEFAULT_METRICS_PATH. */
  readonly path: string;
  /** A file holding the bearer token a scraper must send (`Authorization: Bearer …`). */
  readonly bearerTokenFile?: string;
  /** A separate address to serve the endpoint on (a port only the monitoring network reaches). */
  readonly listen?: { readonly host: string; readonly port: number };
}

/**
 * Reads `metrics: { enabled, path, bearer_token_file, listen }`. An enabled endpoint must be
 * protected by a bearer token, a separate listen address, or both: the counters tell an
 * observer how many logins fail and when, which is nobody else's business.
 */
export function parseMetricsConfig(reader: ConfigReader, raw: unknown, path = 'metrics'): MetricsConfig {
  const section = reader.object(raw ?? {}, path, ['enabled', 'path', 'bearer_token_file', 'listen']);
  const enabled = section.enabled ?? false;
  if (typeof enabled !== 'boolean') reader.fail(`${path}.enabled`, 'must be true or false');
  const urlPath = reader.string(section, 'path', `${path}.`, DEFAULT_METRICS_PATH);
  if (!/^\/[A-Za-z0-9\-._~/]*$/.test(urlPath) || ['/token', '/healthz'].includes(urlPath)) {
    reader.fail(`${path}.path`, `${JSON.stringify(urlPath)} is not a free URL path such as /metrics`);
  }
  const bearerTokenFile =
    section.bearer_token_file === undefined
      ? undefined
      : reader.path(section, 'bearer_token_file', `${path}.`);
  const listen =
    section.listen === undefined ? undefined : parseListen(reader, section.listen, `${path}.listen`);
  if (enabled && bearerTokenFile === undefined && listen === undefined) {
    reader.fail(
      path,
      'an enabled endpoint needs bearer_token_file (a scraper sends that token) or listen (an address only the monitoring network reaches)',
    );
  }
  return {
    enabled,
    path: urlPath,
    ...(bearerTokenFile === undefined ? {} : { bearerTokenFile }),
    ...(listen === undefined ? {} : { listen }),
  };
}
