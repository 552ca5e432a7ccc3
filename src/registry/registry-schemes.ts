import type { AuthSend } from '../auth/create-auth-client.js';
import { raceSignal } from '../errors/aborted-error.js';
import { registryApiHost } from '../reference/parse-reference.js';
import type { Send } from '../transport/http-types.js';
import { isPlainHttpAnswer } from '../transport/is-plain-http-answer.js';
import type { Tracer } from '../transport/trace.js';
import type { RequestOptions } from './registry-client.js';
import { isLoopbackHost } from './registry-url.js';

export type RegistryScheme = 'http' | 'https';

export interface RegistrySchemesOptions {
  /** The transport (below auth): the ping asks for nothing but whether TLS is spoken. */
  readonly send: Send;
  /** Plain HTTP for every registry, without asking. Left out: false. */
  readonly insecure?: boolean;
  readonly trace?: Tracer;
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
 */
export class RegistrySchemes {
  readonly #send: Send;
  readonly #insecure: boolean;
  readonly #trace: Tracer | undefined;
  readonly #found = new Map<string, Promise<RegistryScheme>>();

  constructor(options: RegistrySchemesOptions) {
    this.#send = options.send;
    this.#insecure = options.insecure ?? false;
    this.#trace = options.trace;
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
    let found = this.#found.get(host);
    if (!found) {
      const pinged = this.#ping(host);
      found = pinged;
      this.#found.set(host, pinged);
      // A failed ping (nothing listening yet, a certificate not trusted) is asked again next time.
      pinged.catch(() => {
        if (this.#found.get(host) === pinged) this.#found.delete(host);
      });
    }
    return raceSignal(found, options.signal, `the HTTPS ping of ${host}`);
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
      const scheme = await this.scheme(req.registry, req.signal === undefined ? {} : { signal: req.signal });
      if (protocol === `${scheme}:`) return send(req);
      const url = new URL(req.url.href);
      url.protocol = `${scheme}:`;
      return send({ ...req, url });
    };
  }

  async #ping(host: string): Promise<RegistryScheme> {
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
