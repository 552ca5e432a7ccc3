import type { OnStoreError } from '../auth/call-store.js';
import type { ChallengeStore } from '../auth/challenge-cache.js';
import type { CredentialSource } from '../auth/credentials/credential.js';
import type { TokenCache, TokenStore } from '../auth/token-cache.js';
import type { Send } from '../transport/http-types.js';
import type { Tracer } from '../transport/trace.js';

/** A user name and password (or `<token>` and an identity token), for the common case of one account. */
export interface UserPassword {
  readonly username: string;
  readonly password: string;
  /**
   * The registry they are for (`ghcr.io`, `localhost:5000`). Left out: offered to every registry
   * this Registry talks to, which is right for one registry and wrong for a copy between two
   * owners (give the other side its own Registry, see CopyOptions.to).
   */
  readonly registry?: string;
}

/** How createRegistry talks to registries. Every field may be left out. */
export interface RegistryOptions {
  /**
   * Where credentials come from: a CredentialSource (staticCredentials, dockerConfig,
   * chainCredentials …) or a plain user name and password. Left out: what docker and podman
   * users have (REGAUTH_USERNAME/REGAUTH_PASSWORD, REGISTRY_AUTH_FILE, docker's config.json and
   * its helpers, podman's auth.json), asked only when a registry wants credentials.
   */
  readonly credentials?: CredentialSource | UserPassword;
  /**
   * Keeps tokens and challenges, also across processes: FileTokenStore, MemoryTokenStore, or a
   * store of your own (its methods may return promises). Left out: memory only, this Registry's own.
   */
  readonly store?: TokenStore & ChallengeStore;
  /**
   * A token cache shared with other Registries (and createRegistryClients sets): tokens and
   * in-flight token fetches are shared, kept apart by registry, realm, service and secret.
   * `new TokenCache({ store })`. With `store` too, it must be the cache's store.
   */
  readonly tokenCache?: TokenCache;
  /** Told when the store fails; the request goes on without it (a miss, not kept). Left out: a trace note. */
  readonly onStoreError?: OnStoreError;
  /** The HTTP transport. Left out: createTransport() with `caFile`, `retries` and `trace`. */
  readonly send?: Send;
  /** Extra CA certificates (PEM file) for HTTPS registries and token realms. Not with `send`. */
  readonly caFile?: string;
  /** Plain HTTP for registries that are not on loopback (loopback ones are pinged). Left out: false. */
  readonly insecure?: boolean;
  /** Receives every HTTP exchange, redacted (no credentials, no tokens). */
  readonly trace?: Tracer;
  /** Times a failed idempotent request (a broken connection, a 5xx, a 429) is retried. Not with `send`. */
  readonly retries?: number;
  /** The environment proxies and default credentials are read from. Left out: process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}
