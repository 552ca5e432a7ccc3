import { type ConfigReader, parseListen } from './server-config.js';

/** Where the admin endpoints live: `POST /admin/revoke`, `GET /admin/revocations`. */
export const DEFAULT_ADMIN_PATH = '/admin';

/** The `admin:` section of `serve.yml`. */
export interface AdminConfig {
  /** Left out: false; the endpoints do not exist (404). */
  readonly enabled: boolean;
  /** The URL path the endpoints live under. Left out: DEFAULT_ADMIN_PATH. */
  readonly path: string;
  /** A file holding the bearer secret an admin sends (`Authorization: Bearer …`); required when enabled. */
  readonly bearerTokenFile?: string;
  /** A separate address to serve the endpoints on (a port only the operators' network reaches). */
  readonly listen?: { readonly host: string; readonly port: number };
}

/**
 * Reads `admin: { enabled, path, bearer_token_file, listen }`. Unlike the metrics, a separate
 * listen address is never enough on its own: the endpoint changes what the server honours, so
 * an enabled one always needs the bearer secret.
 */
export function parseAdminConfig(
  reader: ConfigReader,
  raw: unknown,
  /** Paths the server already answers (the metrics path): the admin path must not shadow them. */
  taken: readonly string[] = [],
  path = 'admin',
): AdminConfig {
  const section = reader.object(raw ?? {}, path, ['enabled', 'path', 'bearer_token_file', 'listen']);
  const enabled = section.enabled ?? false;
  if (typeof enabled !== 'boolean') reader.fail(`${path}.enabled`, 'must be true or false');
  const urlPath = reader.string(section, 'path', `${path}.`, DEFAULT_ADMIN_PATH);
  const clashes = ['/token', '/healthz', ...taken].some(
    (other) => other === urlPath || other.startsWith(`${urlPath}/`),
  );
  const dotSegment = /(^|\/)\.\.?(\/|$)/.test(urlPath);
  if (!/^\/[A-Za-z0-9\-._~]+(\/[A-Za-z0-9\-._~]+)*$/.test(urlPath) || dotSegment || clashes) {
    reader.fail(`${path}.path`, `${JSON.stringify(urlPath)} is not a free URL path such as /admin`);
  }
  const bearerTokenFile =
    section.bearer_token_file === undefined
      ? undefined
      : reader.path(section, 'bearer_token_file', `${path}.`);
  const listen =
    section.listen === undefined ? undefined : parseListen(reader, section.listen, `${path}.listen`);
  if (enabled && bearerTokenFile === undefined) {
    reader.fail(
      path,
      'an enabled admin endpoint needs bearer_token_file, a file holding the secret admins send (openssl rand -hex 32 > admin.token)',
    );
  }
  return {
    enabled,
    path: urlPath,
    ...(bearerTokenFile === undefined ? {} : { bearerTokenFile }),
    ...(listen === undefined ? {} : { listen }),
  };
}
