import type { CredentialSource, FoundCredential } from './credential.js';

/**
 * Asks each source in turn; the first that has a credential for the registry wins and the
 * rest are not asked (so a later source's helper never runs). An error from a source stops
 * the chain rather than falling through: a broken config file or helper should be fixed, not
 * silently replaced by the next source or by anonymous access.
 */
export function chainCredentials(sources: readonly CredentialSource[]): CredentialSource {
  const list = [...sources];
  return {
    async find(registry: string): Promise<FoundCredential | undefined> {
      for (const source of list) {
        const found = await source.find(registry);
        if (found !== undefined) return found;
      }
      return undefined;
    },
  };
}
