import { RegauthError } from '../../errors/regauth-error.js';
import { checkRevocation } from '../../server/admin-endpoint.js';
import { createRedisRevocationStore } from '../../server/redis-revocation-store.js';
import type { Revocation } from '../../server/revocation-store.js';
import type { ServerLogEntry } from '../../server/server-log-entry.js';
import { createRedisStore } from '../../server/shared-store.js';
import type { CheckedStoreConfig } from '../../server/store-config.js';

/** Redis answers that mean the password is wrong or missing, not that Redis is away. */
const AUTH_ERROR_RE = /WRONGPASS|NOAUTH|invalid password|invalid username-password/i;

/**
 * Records a revocation straight in the Redis of `store:` (no running server needed): every
 * replica's mirror takes it from the published message, or from its next re-sync. One short
 * connection; its errors are one line each and never hold the password (the store redacts them).
 */
export async function revokeInStore(
  store: CheckedStoreConfig,
  refreshExpiration: number,
  account: string,
  before: string | undefined,
): Promise<Revocation> {
  const fields = checkRevocation(account, before, Date.now());
  let lastError: string | undefined;
  const log = (entry: ServerLogEntry) => {
    const error = (entry as { error?: unknown }).error;
    if (typeof error === 'string') lastError = error;
  };
  const shared = await createRedisStore(store, { log });
  const revocations = createRedisRevocationStore(shared, {
    keepMs: refreshExpiration * 1000,
    mirror: false,
  });
  try {
    return await revocations.revoke(fields.account, fields.beforeMs);
  } catch (err) {
    if (!(err instanceof RegauthError) || err.code !== 'ERR_NETWORK') throw err;
    if (lastError !== undefined && AUTH_ERROR_RE.test(lastError)) {
      throw new RegauthError(
        'ERR_UNAUTHORIZED',
        `Redis at ${shared.description} refused the password (store.password_file, or the one in store.url): ${lastError}; nothing was recorded`,
      );
    }
    throw new RegauthError(
      'ERR_NETWORK',
      `cannot reach Redis at ${shared.description} (${lastError ?? 'no answer'}); nothing was recorded. Is it running, and is store: in the config right?`,
    );
  } finally {
    await revocations.close();
    await shared.close();
  }
}
