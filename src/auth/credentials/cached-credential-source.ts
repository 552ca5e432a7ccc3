import type { CredentialSource, FoundCredential } from './credential.js';
import { canonicalRegistry } from './registry-host.js';

/** A CredentialSource that asks the one it wraps once per registry (see cachedCredentialSource). */
export interface CachedCredentialSource extends CredentialSource {
  /** Forgets one registry (after a login or a rejected credential), or all of them. */
  forget(registry?: string): void;
}

/**
 * Remembers find() per registry for the life of the object (one process, one command), so a
 * credential helper runs at most once per registry however many requests ask — concurrent
 * callers share the one pending lookup. Failures are remembered too: a helper that timed out
 * after 10 s must not be asked again for every blob of a push.
 */
export function cachedCredentialSource(source: CredentialSource): CachedCredentialSource {
  const cache = new Map<string, Promise<FoundCredential | undefined>>();
  return {
    find(registry: string) {
      const key = canonicalRegistry(registry);
      let found = cache.get(key);
      if (found === undefined) {
        found = source.find(registry);
        cache.set(key, found);
      }
      return found;
    },
    forget(registry?: string) {
      if (registry === undefined) cache.clear();
      else cache.delete(canonicalRegistry(registry));
    },
  };
}
