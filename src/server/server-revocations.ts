import { createRedisRevocationStore } from './redis-revocation-store.js';
import { createMemoryRevocationStore, type RevocationStore } from './revocation-store.js';
import type { ServerLogEntry } from './server-log-entry.js';
import { createRedisStore, type SharedStore } from './shared-store.js';
import type { CheckedStoreConfig } from './store-config.js';
import type { TokenMetrics } from './token-metrics.js';

/** A server's revocations and, with `store:` Redis, the connection they share with the login counters. */
export interface ServerRevocations {
  readonly revocations: RevocationStore;
  /** The connection to hand to the handler (TokenHandlerOptions.sharedStore); undefined for `memory`. */
  readonly sharedStore?: SharedStore;
  /** Closes what this made (the store given in `revocations` is the caller's). */
  close(): Promise<void>;
}

/**
 * Server state made once per server: the revocations in memory, or, when `store:` is Redis, in
 * Redis (createRedisRevocationStore) over one connection that the failed-login counters use too.
 * A store given by the caller is used as it is and left for the caller to close.
 */
export async function createServerRevocations(
  config: { readonly store?: CheckedStoreConfig; readonly token: { readonly refreshExpiration: number } },
  options: {
    /**
     * The longest refresh-token lifetime in ms any config of this server issued with. Left out:
     * the config's. A reload that lengthens it must lengthen how long revocations are kept.
     */
    readonly keepMs?: () => number;
    readonly revocations?: RevocationStore;
    readonly log: (entry: ServerLogEntry) => void;
    readonly metrics?: TokenMetrics;
    readonly now?: () => number;
  },
): Promise<ServerRevocations> {
  const keepMs = options.keepMs ?? (() => config.token.refreshExpiration * 1000);
  const clock = options.now === undefined ? {} : { now: options.now };
  const sharedStore =
    config.store === undefined
      ? undefined
      : await createRedisStore(config.store, {
          log: options.log,
          ...(options.metrics === undefined ? {} : { observer: options.metrics }),
          ...clock,
        });
  if (options.revocations !== undefined) {
    const revocations = options.revocations;
    return {
      revocations,
      ...(sharedStore === undefined ? {} : { sharedStore }),
      close: async () => sharedStore?.close(),
    };
  }
  if (sharedStore === undefined) {
    const revocations = createMemoryRevocationStore({ keepMs, ...clock });
    return { revocations, close: () => revocations.close() };
  }
  const revocations = createRedisRevocationStore(sharedStore, { keepMs, ...clock });
  // Start-up waits for the first read (bounded by the store's timeout), so a replica that comes
  // up refuses what Redis says is revoked from its first request.
  await revocations.ready;
  return {
    revocations,
    sharedStore,
    close: async () => {
      await revocations.close();
      await sharedStore.close();
    },
  };
}
