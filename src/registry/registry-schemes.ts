import { callStore, type OnStoreError } from '../auth/call-store.js';
import type { ChallengeStore } from '../auth/challenge-cache.js';
import type { AuthRequest, AuthResponse, AuthSend } from '../auth/create-auth-client.js';
import { raceSignal } from '../errors/aborted-error.js';
import { isRegauthError } from '../errors/regauth-error.js';
import { registryApiHost } from '../reference/parse-reference.js';
import { RETRY_STATUSES } from '../transport/create-transport.js';
import type { Send } from '../transport/http-types.js';
import { isPlainHttpAnswer } from '../transport/is-plain-http-answer.js';
import type { TlsProbeAnswer } from '../transport/probe-tls.js';
import type { Tracer } from '../transport/trace.js';
import type { RequestOptions } from './registry-client.js';
import { isLoopbackHost } from './registry-url.js';

export type RegistryScheme = 'http' | 'https';

/** Where the schemes pings found are kept between processes (FileTokenStore keeps them). */
export type RegistrySchemeStore = Pick<ChallengeStore, 'loadLoopbackScheme' | 'saveLoopbackScheme'>;

export interface RegistrySchemesOptions {
  /** The transport (below auth): the ping asks for nothing but whether TLS is spoken. */
  readonly send: Send;
  /** Plain HTTP for every registry, without asking. Left out: false. */
  readonly insecure?: boolean;
  readonly trace?: Tracer;
  /**
   * Keeps what each loopback registry's ping found, for the next process to try first. Left
   * out: every process pings.
   */
  readonly store?: RegistrySchemeStore;
  /** Told when the store throws or rejects; the ping is then made as without a store. */
  readonly onStoreError?: OnStoreError | undefined;
  /**
   * Asked first by each ping (probeTls, when `send` is the transport createRegistryClients built
   * itself): `plain` when the registry answered a TLS handshake with plain HTTP, which the ping
   * would find too at the cost of building the transport's TLS trust; then no ping is sent. Any
   * other answer, or none: the ping goes through `send` as without it.
   */
  readonly probeTls?: (host: string) => Promise<TlsProbeAnswer | undefined>;
}

/**
 * Methods whose request may be sent a second time when the scheme tried first was refused: a
 * request with a body or an effect waits for the ping instead.
 */
const SAFE_TO_SEND_AGAIN = new Set(['GET', 'HEAD']);

/**
 * Answers to a remembered scheme that do not confirm it: a 400 (what Go's TLS server answers a
 * plain-HTTP request with), and those the transport retries (sent with no retries, the request
 * gets them when it goes again).
 */
const ASK_AGAIN_STATUSES: ReadonlySet<number> = new Set([400, ...RETRY_STATUSES]);

/** Thrown into a request whose remembered scheme the ping found changed: it goes again. */
class SchemeMoved extends Error {
  constructor() {
    super('the registry no longer speaks the scheme remembered for it');
  }
}

/**
 * Whether the request to `url` itself failed to connect, handshake or get an answer: the port
 * may speak the other scheme. An error from later (the realm's, the registry's refusal) is not.
 */
function isConnectionFailure(err: unknown, url: URL): boolean {
  if (isRegauthError(err)) {
    if (err.code !== 'ERR_NETWORK' || err.request === undefined) return false;
    try {
      return new URL(err.request.url).origin === url.origin;
    } catch {
      return false;
    }
  }
  return (
    ['ECONNRESET', 'ECONNREFUSED', 'EPROTO', 'EPIPE'].some((code) => hasCauseCode(err, code)) ||
    isPlainHttpAnswer(err)
  );
}

/**
 * Which scheme each registry is spoken to with. HTTPS everywhere, plain HTTP everywhere with
 * `insecure`; a registry on loopback is pinged once (`GET https://host/v2/`) and spoken to over
 * HTTPS when it answers, over plain HTTP only when it answered the TLS handshake with plain HTTP,
 * or when no port was named and nothing listens on 443 (then HTTP means port 80).
 * go-containerregistry does the same for loopback registries (pkg/name/registry.go Scheme, and
 * pkg/v1/remote/transport/ping.go tries https before http), as does containerd
 * (remotes/docker/resolver.go HTTPFallback); docker tries HTTPS first for every registry it is
 * allowed to reach over HTTP. The answer is kept for the life of this object: one ping per
 * registry, never one per request.
 *
 * With a store, the answer outlives the process: the next one sends its first GET or HEAD with
 * the scheme found last time and no ping. Only an answer confirms it. A refusal (a reset, a TLS
 * failure, or the 400 Go's TLS server gives a plain-HTTP request) means the port may speak the
 * other scheme now: the ping is made, and the request sent again with its answer. Only GET and
 * HEAD go first, so sending one again is harmless; other requests wait for an answer or the
 * ping. Plain HTTP still goes only to loopback, as a ping that met plain HTTP would send it.
 */
export class RegistrySchemes {
  readonly #send: Send;
  readonly #probeTls: ((host: string) => Promise<TlsProbeAnswer | undefined>) | undefined;
  readonly #insecure: boolean;
  readonly #trace: Tracer | undefined;
  readonly #store: RegistrySchemeStore | undefined;
  readonly #onStoreError: OnStoreError | undefined;
  /** Each host's scheme: pinged, confirmed by an answer, or being found out right now. */
  readonly #found = new Map<string, Promise<RegistryScheme>>();
  /** The store's answer for each host, read once. */
  readonly #remembered = new Map<string, Promise<RegistryScheme | undefined>>();

  constructor(options: RegistrySchemesOptions) {
    this.#send = options.send;
    this.#probeTls = options.probeTls;
    this.#insecure = options.insecure ?? false;
    this.#trace = options.trace;
    this.#store = options.store;
    this.#onStoreError = options.onStoreError;
  }

  /**
   * The scheme to speak to `registry` (`host[:port]`, as references name it) with. The ping is
   * shared by every caller asking meanwhile, so it runs without any one caller's signal; each
   * caller stops waiting for it at its own abort (ERR_ABORTED).
   */
  scheme(registry: string, options: RequestOptions = {}): Promise<RegistryScheme> {
    if (this.#insecure) return Promise.resolve('http');
    if (!isLoopbackHost(registry)) return Promise.resolve('https');
    const host = registryApiHost(registry);
    return raceSignal(
      this.#found.get(host) ?? this.#startPing(host),
      options.signal,
      `the HTTPS ping of ${host}`,
    );
  }

  /**
   * Where `registry`'s API lives when that is known without asking it: HTTPS for a registry not
   * on loopback, HTTP with `insecure`, the scheme the store remembers for one on loopback.
   * Undefined for a loopback registry whose scheme only a ping can tell (or one is under way).
   */
  async knownBaseUrl(registry: string): Promise<URL | undefined> {
    if (this.#insecure || !isLoopbackHost(registry)) return this.baseUrl(registry);
    const host = registryApiHost(registry);
    if (this.#found.has(host) || !this.#store) return undefined;
    const remembered = await this.#rememberedScheme(host);
    return remembered === undefined ? undefined : new URL(`${remembered}://${host}/`);
  }

  /** `scheme://host/` for a registry: where its API (`/v2/…`) lives. */
  async baseUrl(registry: string, options: RequestOptions = {}): Promise<URL> {
    return new URL(`${await this.scheme(registry, options)}://${registryApiHost(registry)}/`);
  }

  /**
   * A send that speaks to a loopback registry's own host with the scheme its ping found,
   * whichever scheme the request was built with. Hosts other than the registry's (a realm, a
   * storage redirect) and remote registries pass through as they are: their scheme is the
   * caller's, so nothing here can downgrade them.
   */
  wrap(send: AuthSend): AuthSend {
    return async (req) => {
      if (this.#insecure || !isLoopbackHost(req.registry)) return send(req);
      const { protocol, host } = req.url;
      if (host !== registryApiHost(req.registry) || (protocol !== 'http:' && protocol !== 'https:')) {
        return send(req);
      }
      if (this.#store && !this.#found.has(host) && SAFE_TO_SEND_AGAIN.has(req.method)) {
        const remembered = await raceSignal(
          this.#rememberedScheme(host),
          req.signal,
          `the scheme remembered for ${host}`,
        );
        if (remembered !== undefined && !this.#found.has(host)) {
          return this.#sendTrying(send, req, host, remembered);
        }
      }
      const scheme = await this.scheme(req.registry, req.signal === undefined ? {} : { signal: req.signal });
      return send(withScheme(req, scheme));
    };
  }

  /**
   * Sends `req` with the scheme the store remembers for its host; requests meanwhile wait for
   * its answer. Over plain HTTP it goes with a cached token or none: one that would need a
   * credential first waits for the ping (AuthRequest.beforeCredentials), so no credential moves
   * before the port has shown it still speaks HTTP. An answer confirms the scheme, and so does an
   * error from past the answer (the realm's, a refusal). A failed connection or handshake, a 400
   * (Go's TLS server answers plain HTTP with one), or an answer the transport would have retried
   * means the ping decides, and the request (a GET or HEAD) is sent again with the ping's scheme
   * and the usual retries.
   */
  async #sendTrying(
    send: AuthSend,
    req: AuthRequest,
    host: string,
    remembered: RegistryScheme,
  ): Promise<AuthResponse> {
    let settle: (scheme: RegistryScheme | Promise<RegistryScheme>) => void = () => {};
    const trying = new Promise<RegistryScheme>((resolve) => {
      settle = resolve;
    });
    // Waiters take the ping's failure from the ping itself; this copy of it needs no handler.
    trying.catch(() => {});
    this.#trace?.({
      kind: 'note',
      text: `${host} spoke ${remembered === 'https' ? 'HTTPS' : 'plain HTTP'} when last pinged; trying that first`,
    });
    this.#found.set(host, trying);
    /** The ping, started once: for the waiters, and for this request when it has to ask. */
    let pinged: Promise<RegistryScheme> | undefined;
    const ping = (): Promise<RegistryScheme> => {
      if (pinged === undefined) {
        if (this.#found.get(host) === trying) this.#found.delete(host);
        pinged = this.#found.get(host) ?? this.#startPing(host);
        settle(pinged);
      }
      return pinged;
    };
    const moved = new SchemeMoved();
    let refused: AuthResponse | undefined;
    const trial = withScheme(req, remembered, 0);
    try {
      // One attempt: a refusal is a reason to ping, and the ping's answer sends it again.
      const res = await send(
        remembered === 'http'
          ? {
              ...trial,
              beforeCredentials: async () => {
                if ((await raceSignal(ping(), req.signal, `the HTTPS ping of ${host}`)) !== remembered)
                  throw moved;
              },
            }
          : trial,
      );
      if (!ASK_AGAIN_STATUSES.has(res.status)) {
        settle(remembered);
        return res;
      }
      refused = res;
    } catch (err) {
      if (err !== moved && (req.signal?.aborted || !isConnectionFailure(err, trial.url))) {
        // Aborted, or failed past the connection (the realm's refusal, a bad answer): nothing
        // says the scheme is wrong, nor that the registry answered; the waiters get the ping.
        ping();
        throw err;
      }
    }
    await refused?.dump().catch(() => {});
    const scheme = await raceSignal(ping(), req.signal, `the HTTPS ping of ${host}`);
    this.#trace?.({
      kind: 'note',
      text: `${host} ${refused ? `answered ${remembered === 'https' ? 'HTTPS' : 'plain HTTP'} with HTTP ${refused.status}` : `no longer speaks ${remembered === 'https' ? 'HTTPS' : 'plain HTTP'}`}; the HTTPS ping found ${scheme === 'https' ? 'HTTPS' : 'plain HTTP'}`,
    });
    return send(withScheme(req, scheme));
  }

  /** Pings `host`, shared by everyone asking until it settles; a failed ping is asked again next time. */
  #startPing(host: string): Promise<RegistryScheme> {
    const pinged = this.#ping(host);
    this.#found.set(host, pinged);
    // A failed ping (nothing listening yet, a certificate not trusted) is asked again next time.
    pinged.then(
      (scheme) => this.#keep(host, scheme),
      () => {
        if (this.#found.get(host) === pinged) this.#found.delete(host);
      },
    );
    return pinged;
  }

  #rememberedScheme(host: string): Promise<RegistryScheme | undefined> {
    let remembered = this.#remembered.get(host);
    if (!remembered) {
      const store = this.#store;
      // Without a port, plain HTTP means port 80 and HTTPS 443: two servers, each its own ping.
      remembered =
        store?.loadLoopbackScheme && hasPort(host)
          ? callStore('loadLoopbackScheme', () => store.loadLoopbackScheme?.(host), this.#onStoreError).then(
              (s) => (s === 'http' || s === 'https' ? s : undefined),
            )
          : Promise.resolve(undefined);
      this.#remembered.set(host, remembered);
    }
    return remembered;
  }

  /** Tells the store what a ping found, when it is news to it. */
  async #keep(host: string, scheme: RegistryScheme): Promise<void> {
    const store = this.#store;
    if (!store?.saveLoopbackScheme || !hasPort(host)) return;
    if ((await this.#rememberedScheme(host)) === scheme) return;
    this.#remembered.set(host, Promise.resolve(scheme));
    await callStore('saveLoopbackScheme', () => store.saveLoopbackScheme?.(host, scheme), this.#onStoreError);
  }

  async #ping(host: string): Promise<RegistryScheme> {
    if ((await this.#probeTls?.(host).catch(() => undefined)) === 'plain') {
      this.#trace?.({
        kind: 'note',
        text: `${host} answers HTTPS with plain HTTP; speaking plain HTTP to it`,
      });
      return 'http';
    }
    try {
      // One attempt: a refused or odd handshake is the answer the ping asks for, not a hiccup.
      const res = await this.#send({ method: 'GET', url: new URL(`https://${host}/v2/`), retries: 0 });
      await res.dump();
      return 'https';
    } catch (err) {
      const refused = hasCauseCode(err, 'ECONNREFUSED') && !hasPort(host);
      if (!isPlainHttpAnswer(err) && !refused) throw err;
      this.#trace?.({
        kind: 'note',
        text: refused
          ? `${host} does not listen for HTTPS on port 443; speaking plain HTTP (port 80) to it`
          : `${host} answers HTTPS with plain HTTP; speaking plain HTTP to it`,
      });
      return 'http';
    }
  }
}

/** `req` sent with `scheme`, and with `retries` when given. */
function withScheme(req: AuthRequest, scheme: RegistryScheme, retries?: number): AuthRequest {
  const sameScheme = req.url.protocol === `${scheme}:`;
  if (sameScheme && retries === undefined) return req;
  const url = sameScheme ? req.url : new URL(req.url.href);
  url.protocol = `${scheme}:`;
  return retries === undefined ? { ...req, url } : { ...req, url, retries };
}

/** Whether an error, or one it wraps (the transport wraps Node's), carries `code`. */
function hasCauseCode(err: unknown, code: string): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if ((e as { code?: unknown }).code === code) return true;
  }
  return false;
}

function hasPort(host: string): boolean {
  return /:\d+$/.test(host);
}
