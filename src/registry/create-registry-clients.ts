import { homedir } from 'node:os';
import type { OnStoreError } from '../auth/call-store.js';
import type { ChallengeStore } from '../auth/challenge-cache.js';
import { type AuthClient, createAuthClient, storeErrorReporter } from '../auth/create-auth-client.js';
import { cachedCredentialSource } from '../auth/credentials/cached-credential-source.js';
import { chainCredentials } from '../auth/credentials/chain-credentials.js';
import type { CredentialSource } from '../auth/credentials/credential.js';
import { defaultCredentialSources } from '../auth/credentials/default-credential-sources.js';
import { TokenCache, type TokenStore } from '../auth/token-cache.js';
import { RegauthError } from '../errors/regauth-error.js';
import { createTransport } from '../transport/create-transport.js';
import type { Send, Transport } from '../transport/http-types.js';
import { probeTls } from '../transport/probe-tls.js';
import type { Tracer } from '../transport/trace.js';
import { RegistryClient, type RequestOptions } from './registry-client.js';
import { RegistrySchemes } from './registry-schemes.js';

/** How createRegistryClients wires the layers: credentials, token cache and store, transport. */
export interface RegistryClientsOptions {
  /**
   * Where credentials come from. Left out: what docker and podman users have — REGAUTH_USERNAME
   * and REGAUTH_PASSWORD, REGISTRY_AUTH_FILE, docker's config.json with its helpers, podman's
   * auth.json — asked only when a registry wants credentials.
   */
  readonly credentials?: CredentialSource;
  /**
   * Plain HTTP for registries that are not on loopback. Left out: false. Decides the URLs
   * requests go to, so it applies with `send` too.
   */
  readonly insecure?: boolean;
  /**
   * Extra CA certificates (PEM file) for HTTPS registries and realms: an option of the transport
   * built here, so refused together with `send` (ERR_INVALID_OPTIONS). With a transport of your
   * own, give it the CA: `send: createTransport({ caFile })`.
   */
  readonly caFile?: string;
  /**
   * Receives every HTTP exchange, redacted, and the auth layer's notes. With `send`, only the
   * notes: the exchanges are your transport's to trace (`createTransport({ trace })`, the same
   * tracer given to both).
   */
  readonly trace?: Tracer;
  /**
   * Keeps tokens and challenges across processes (FileTokenStore), or shares them between
   * clients (MemoryTokenStore, or a store of your own: Redis, a database). Left out: memory only.
   */
  readonly store?: TokenStore & ChallengeStore;
  /**
   * The token cache to use, for several client sets to share tokens and in-flight token fetches:
   * `const tokenCache = new TokenCache({ store })`, then `createRegistryClients({ tokenCache })`
   * for each. Challenges are kept in the cache's store when it can hold them (FileTokenStore,
   * MemoryTokenStore); without a store each client set learns the registry's challenge once (one
   * 401) and then takes its tokens from the shared cache. Given with `store`, it must hold that
   * very store. Left out: a cache of this client set's own, on `store`.
   */
  readonly tokenCache?: TokenCache;
  /**
   * Told when the store throws or rejects; the request goes on without it (a failed read is a
   * miss, a failed write is not kept). The trace, if any, gets a note naming the store method.
   */
  readonly onStoreError?: OnStoreError;
  /**
   * Times the built-in transport retries a failed idempotent request. Left out: createTransport's
   * default. An option of the transport built here, so refused together with `send`.
   */
  readonly maxRetries?: number;
  /**
   * The transport. Left out: createTransport() with `caFile`, `maxRetries`, `trace` and `env` (its
   * proxy settings). Options that only configure that transport (`caFile`, `maxRetries`) are
   * refused with it (ERR_INVALID_OPTIONS).
   */
  readonly send?: Send;
  /**
   * Where the default credential sources look (HOME, REGAUTH_USERNAME …) and, without `send`,
   * the proxy settings (HTTPS_PROXY …). Left out: process.env.
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** The clients createRegistryClients made: the auth layer, and a RegistryClient per registry. */
export interface RegistryClients {
  readonly auth: AuthClient;
  /** A client for one registry; all of them share connections, credentials and tokens. */
  forRegistry(registry: string): RegistryClient;
  /**
   * Where a registry's API lives (`scheme://host/`): HTTPS; plain HTTP with `insecure`; for a
   * registry on loopback, whichever its one ping found (see RegistrySchemes).
   */
  baseUrl(registry: string, options?: RequestOptions): Promise<URL>;
  /**
   * Opens a connection to a registry now, for its first request to use: call it as soon as the
   * registry is known, so that TCP and TLS handshakes overlap with reading credentials and the
   * token cache. Does nothing for a loopback registry whose scheme only a ping can tell (the
   * ping connects), through a proxy, or with a `send` of your own that has no `preconnect`.
   */
  preconnect(registry: string): void;
}

/** Wires transport → auth → registry, each layer wrapping the one below, with defaults users expect. */
export function createRegistryClients(options: RegistryClientsOptions = {}): RegistryClients {
  checkOptions(options);
  const env = options.env ?? process.env;
  const send =
    options.send ??
    createTransport({
      env,
      ...(options.trace === undefined ? {} : { trace: options.trace }),
      ...(options.caFile === undefined ? {} : { caFile: options.caFile }),
      ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
    });
  const credentials =
    options.credentials ??
    cachedCredentialSource(
      chainCredentials(defaultCredentialSources({ env, homedir: env.HOME || homedir() })),
    );
  const tokenCache =
    options.tokenCache ??
    new TokenCache({
      ...(options.store === undefined ? {} : { store: options.store }),
      onStoreError: storeErrorReporter(options.onStoreError, options.trace),
    });
  const challengeStore = options.store ?? challengeStoreOf(tokenCache.store);
  const auth = createAuthClient({
    send,
    credentials,
    tokenCache,
    ...(challengeStore === undefined ? {} : { challengeStore }),
    ...(options.onStoreError === undefined ? {} : { onStoreError: options.onStoreError }),
    ...(options.trace === undefined ? {} : { trace: options.trace }),
  });
  const schemes = new RegistrySchemes({
    send: options.send ?? (usesProxy(env) ? directTransport(options) : send),
    // Only with the transport built here: a `send` of the caller's own is the only way to theirs.
    ...(options.send === undefined ? { probeTls } : {}),
    ...(options.insecure === undefined ? {} : { insecure: options.insecure }),
    ...(options.trace === undefined ? {} : { trace: options.trace }),
    // Through a proxy the requests take another path than the ping (which goes direct): a
    // proxy's answer would seem to confirm a remembered scheme, so every run pings.
    ...(challengeStore === undefined || (options.send === undefined && usesProxy(env))
      ? {}
      : { store: challengeStore, onStoreError: storeErrorReporter(options.onStoreError, options.trace) }),
  });
  const registrySend = schemes.wrap(auth.send);
  const clients = new Map<string, RegistryClient>();
  return {
    auth,
    baseUrl: (registry, requestOptions = {}) => schemes.baseUrl(registry, requestOptions),
    preconnect(registry) {
      const preconnect = (send as Partial<Transport>).preconnect;
      if (typeof preconnect !== 'function') return;
      schemes.knownBaseUrl(registry).then(
        (base) => {
          if (base !== undefined) preconnect.call(send, base);
        },
        () => {},
      );
    },
    forRegistry(registry) {
      let client = clients.get(registry);
      if (!client) {
        client = new RegistryClient({
          registry,
          send: registrySend,
          ...(options.insecure === undefined ? {} : { insecure: options.insecure }),
        });
        clients.set(registry, client);
      }
      return client;
    },
  };
}

function usesProxy(env: Readonly<Record<string, string | undefined>>): boolean {
  return ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy'].some((name) => Boolean(env[name]));
}

/**
 * A transport that ignores HTTP(S)_PROXY, for the ping that decides a loopback registry's
 * scheme: a proxy's answer (a 502 for a TLS attempt it could not make) says nothing about the
 * registry on this machine. Go's net/http never proxies loopback requests at all
 * (golang.org/x/net/http/httpproxy useProxy), so docker and crane ping such registries directly.
 */
function directTransport(options: RegistryClientsOptions): Send {
  return createTransport({
    env: {},
    ...(options.trace === undefined ? {} : { trace: options.trace }),
    ...(options.caFile === undefined ? {} : { caFile: options.caFile }),
    ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
  });
}

/** The token cache's store, when it also keeps challenges (FileTokenStore, MemoryTokenStore do). */
function challengeStoreOf(store: TokenStore | undefined): ChallengeStore | undefined {
  const s = store as Partial<ChallengeStore> | undefined;
  return typeof s?.loadChallenge === 'function' &&
    typeof s.saveChallenge === 'function' &&
    typeof s.forgetChallenge === 'function'
    ? (s as ChallengeStore)
    : undefined;
}

/**
 * Refuses options that would be silently ignored together: each names what to do instead.
 */
function checkOptions(options: RegistryClientsOptions): void {
  if (options.send !== undefined && options.caFile !== undefined) {
    throw new RegauthError(
      'ERR_INVALID_OPTIONS',
      'createRegistryClients: `caFile` configures the transport built when `send` is left out, so with ' +
        '`send` the CA would not be trusted; give the CA to your transport (`send: createTransport({ caFile })`), ' +
        'or leave `send` out',
    );
  }
  if (options.send !== undefined && options.maxRetries !== undefined) {
    throw new RegauthError(
      'ERR_INVALID_OPTIONS',
      'createRegistryClients: `maxRetries` configures the transport built when `send` is left out, so with ' +
        '`send` it would not apply; give it to your transport (`send: createTransport({ maxRetries })`), ' +
        'or leave `send` out',
    );
  }
  if (
    options.tokenCache !== undefined &&
    options.store !== undefined &&
    options.tokenCache.store !== options.store
  ) {
    throw new RegauthError(
      'ERR_INVALID_OPTIONS',
      'createRegistryClients: `tokenCache` keeps its tokens in its own store, so `store` would hold only ' +
        'challenges; give the store to the cache (`new TokenCache({ store })`) and pass `tokenCache` alone',
    );
  }
}
