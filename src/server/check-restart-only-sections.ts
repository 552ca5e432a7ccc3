import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { RegauthError } from '../errors/regauth-error.js';
import { readAdminBearerToken } from './admin-server.js';
import { importOptional } from './import-optional.js';
import { readMetricsBearerToken } from './metrics-server.js';
import type { TokenServerConfig } from './server-config.js';
import { readStoreSecrets } from './shared-store.js';

/** A TLS certificate and its key, as read from `tls.cert` and `tls.key`. */
export interface TlsPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * Reads the TLS pair and checks that the key belongs to the certificate: start-up and every
 * reload, so both refuse a mismatched pair with this message. Run after checkConfigFiles, which
 * has named the key path of a file that cannot be read.
 */
export async function loadTlsPair(config: TokenServerConfig): Promise<TlsPair | undefined> {
  const tls = config.tls;
  if (tls === undefined) return undefined;
  const [cert, key] = await Promise.all([readFile(tls.cert), readFile(tls.key)]);
  try {
    createSecureContext({ cert, key });
  } catch (cause) {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `${config.file}: tls: the key (${tls.key}) and certificate (${tls.cert}) are not a usable pair: ${(cause as Error).message}; give the certificate and its own private key in PEM`,
      { cause },
    );
  }
  return { cert, key };
}

/**
 * Checks the sections a running server cannot apply (RESTART_ONLY_KEYS) as start-up does:
 * the TLS pair loads and matches, the metrics and admin bearer secrets are valid, the store's
 * password and CA can be read, and the optional packages they need are installed. A reload
 * runs it, so a config the next restart would refuse fails the reload now, while the running
 * config keeps serving, instead of failing at the next reboot. Resolves to the TLS pair read.
 */
export async function checkRestartOnlySections(config: TokenServerConfig): Promise<TlsPair | undefined> {
  const tls = await loadTlsPair(config);
  if (config.metrics?.enabled) {
    await readMetricsBearerToken(config.metrics);
    await importOptional('prom-client', 'serving Prometheus metrics', () => import('prom-client'));
  }
  await readAdminBearerToken(config);
  if (config.store !== undefined) {
    await readStoreSecrets(config.store);
    await importOptional('ioredis', 'a Redis store (store: redis://…)', () => import('ioredis'));
  }
  return tls;
}
