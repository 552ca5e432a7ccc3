import { readFile } from 'node:fs/promises';
import { fileSystemError } from '../errors/file-system-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { TokenServerConfig } from './server-config.js';

/** Every file a config names, with the key path that names it, in the file's order. */
function configFiles(config: TokenServerConfig): { readonly path: string; readonly file: string }[] {
  const files: { path: string; file: string }[] = [];
  if (config.tls) {
    files.push({ path: 'tls.cert', file: config.tls.cert }, { path: 'tls.key', file: config.tls.key });
  }
  for (const pair of config.token.keys) {
    files.push({ path: `${pair.path}.key`, file: pair.key });
    files.push({ path: `${pair.path}.certificate`, file: pair.certificate });
  }
  if (config.users.htpasswd !== undefined)
    files.push({ path: 'users.htpasswd', file: config.users.htpasswd });
  if (config.metrics?.enabled && config.metrics.bearerTokenFile !== undefined) {
    files.push({ path: 'metrics.bearer_token_file', file: config.metrics.bearerTokenFile });
  }
  if (config.admin?.enabled && config.admin.bearerTokenFile !== undefined) {
    files.push({ path: 'admin.bearer_token_file', file: config.admin.bearerTokenFile });
  }
  return files;
}

/**
 * Checks that every file the config names can be read, before anything starts: a missing or
 * unreadable one is a config error naming the config file and key path, like a typo
 * (`serve.yml: token.keys[1].certificate: cannot read /etc/regauth/c1.pem: no such file…`).
 * The first one in the file's order is reported, whichever read finishes first.
 */
export async function checkConfigFiles(config: TokenServerConfig): Promise<void> {
  const files = configFiles(config);
  const failures = await Promise.all(
    files.map(({ file }) =>
      readFile(file).then(
        () => undefined,
        (err: unknown) => err,
      ),
    ),
  );
  failures.forEach((cause, i) => {
    if (cause === undefined) return;
    const { path, file } = files[i] as (typeof files)[number];
    const described = fileSystemError(cause, 'read', file);
    const why =
      described instanceof RegauthError
        ? described.message
        : `cannot read ${file}: ${(cause as Error).message}`;
    throw new RegauthError('ERR_INVALID_CONFIG', `${config.file}: ${path}: ${why}`, { cause });
  });
}
