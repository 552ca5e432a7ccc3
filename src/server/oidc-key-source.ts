import { isIP } from 'node:net';
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { Agent, request } from 'undici';
import { RegauthError } from '../errors/regauth-error.js';

/** A discovery document is a few hundred bytes; Google's is under 2 KiB. */
export const MAX_DISCOVERY_BYTES = 64 * 1024;
/** A key set holds a handful of keys (GitHub publishes 2–4 RSA keys, about 2 KiB). */
export const MAX_JWKS_BYTES = 256 * 1024;
/** Connecting, the headers and the body of one fetch together: an issuer slower than this is down. */
export const DEFAULT_OIDC_FETCH_TIMEOUT_MS = 5_000;
/**
 * Least time between key-set fetches that a token with an unknown `kid` triggers: an issuer that
 * rotates publishes the new key well before it signs with it, and a flood of made-up `kid`s then
 * costs the issuer one request per period (jose's createRemoteJWKSet uses the same 30 s cooldown).
 */
export const DEFAULT_OIDC_REFRESH_COOLDOWN_MS = 30_000;
/**
 * Longest use of fetched keys before they are fetched again: a key the issuer withdrew (leaked,
 * rotated out) stops being accepted within this time.
 */
export const DEFAULT_OIDC_KEYS_MAX_AGE_MS = 10 * 60_000;
/** Wait after a failed fetch before the next try: an issuer that is down is not asked on every login. */
export const DEFAULT_OIDC_RETRY_AFTER_FAILURE_MS = 5_000;

/** True for 127.0.0.0/8, ::1 and localhost: the only places plain HTTP is allowed. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}

/**
 * Checks an issuer or key-set URL: https (http only on loopback), no credentials, no fragment.
 * Returns why it is unusable, or undefined.
 */
export function oidcUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    return 'must be an https:// URL (plain http only on a loopback address): keys fetched in the clear could be swapped';
  }
  if (url.username !== '' || url.password !== '') return 'must not hold a user name or password';
  if (url.hash !== '' || value.includes('#')) return 'must not have a #fragment';
  return undefined;
}

/** Drops an answer's body unread; the abort it causes is expected, not an error. */
function discard(body: NodeJS.ReadableStream & { destroy(): void }): void {
  body.on('error', () => {});
  body.destroy();
}

export interface OidcKeySourceOptions {
  readonly issuer: string;
  /** Fetch keys from here instead of the discovery document's `jwks_uri`. */
  readonly jwksUri?: string;
  /** PEM certificates to trust for the issuer's TLS, instead of the system's. */
  readonly ca?: string;
  readonly fetchTimeoutMs?: number;
  readonly refreshCooldownMs?: number;
  readonly keysMaxAgeMs?: number;
  readonly retryAfterFailureMs?: number;
  /** The clock, in ms; tests move it. */
  readonly now?: () => number;
}

interface Keys {
  readonly getKey: JWTVerifyGetKey;
  readonly fetchedAt: number;
}

/**
 * An issuer's signing keys, fetched from its discovery document's `jwks_uri` (OpenID Connect
 * Discovery 1.0 §4) and cached. Only the configured URLs are fetched: the discovery document's
 * `issuer` must be the configured one (§4.3) and its `jwks_uri` on the issuer's origin, unless
 * `jwksUri` is configured. Fetches are bounded in time and size, never follow redirects, and at
 * most one runs at a time.
 */
export class OidcKeySource {
  readonly #options: OidcKeySourceOptions;
  readonly #agent: Agent;
  readonly #now: () => number;
  #keys: Keys | undefined;
  #jwksUri: string | undefined;
  #inflight: Promise<Keys> | undefined;
  #lastFailure: { at: number; error: RegauthError } | undefined;
  #lastUnknownKidRefresh = Number.NEGATIVE_INFINITY;

  constructor(options: OidcKeySourceOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#jwksUri = options.jwksUri;
    const timeout = options.fetchTimeoutMs ?? DEFAULT_OIDC_FETCH_TIMEOUT_MS;
    this.#agent = new Agent({
      connect: { timeout, ...(options.ca === undefined ? {} : { ca: options.ca }) },
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connections: 2,
    });
  }

  /** The keys to verify with: cached ones while fresh; fetched ones otherwise. Throws when none can be had. */
  async current(): Promise<JWTVerifyGetKey> {
    const keys = this.#keys;
    const maxAge = this.#options.keysMaxAgeMs ?? DEFAULT_OIDC_KEYS_MAX_AGE_MS;
    if (keys && this.#now() - keys.fetchedAt < maxAge) return keys.getKey;
    return (await this.#refresh()).getKey;
  }

  /**
   * Keys to try again because a token named a `kid` that `used` lacks: keys another login fetched
   * meanwhile, else freshly fetched ones; undefined when `used` were fetched at or after `since`
   * (when the request began: they cannot be out of date) or a refresh for an unknown `kid` ran
   * less than the cooldown ago.
   */
  async refreshForUnknownKid(used: JWTVerifyGetKey, since: number): Promise<JWTVerifyGetKey | undefined> {
    if (this.#inflight) return (await this.#inflight).getKey;
    const keys = this.#keys;
    if (keys && keys.getKey !== used) return keys.getKey;
    // Fetched since the request began (the same millisecond included): they cannot be out of date.
    if (keys && keys.fetchedAt >= since) return undefined;
    const cooldown = this.#options.refreshCooldownMs ?? DEFAULT_OIDC_REFRESH_COOLDOWN_MS;
    if (this.#now() - this.#lastUnknownKidRefresh < cooldown) return undefined;
    this.#lastUnknownKidRefresh = this.#now();
    const fresh = await this.#refresh();
    return fresh.getKey === used ? undefined : fresh.getKey;
  }

  async close(): Promise<void> {
    await this.#agent.destroy();
  }

  #refresh(): Promise<Keys> {
    if (this.#inflight) return this.#inflight;
    const failure = this.#lastFailure;
    const retryAfter = this.#options.retryAfterFailureMs ?? DEFAULT_OIDC_RETRY_AFTER_FAILURE_MS;
    if (failure && this.#now() - failure.at < retryAfter) {
      if (this.#keys) return Promise.resolve(this.#keys);
      return Promise.reject(new RegauthError(failure.error.code, failure.error.message));
    }
    const run = this.#fetchKeys().then(
      (keys) => {
        this.#keys = keys;
        this.#lastFailure = undefined;
        return keys;
      },
      (error: unknown) => {
        const described =
          error instanceof RegauthError
            ? error
            : new RegauthError('ERR_NETWORK', `OIDC issuer ${this.#options.issuer}: ${String(error)}`);
        this.#lastFailure = { at: this.#now(), error: described };
        // Keys the issuer served before stay usable while it is down: a short outage of GitHub's
        // issuer must not stop every CI push.
        if (this.#keys) return this.#keys;
        throw described;
      },
    );
    this.#inflight = run.finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #fetchKeys(): Promise<Keys> {
    const issuer = this.#options.issuer;
    let jwksUri = this.#jwksUri;
    if (jwksUri === undefined) {
      const discoveryUrl = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
      const doc = await this.#getJson(discoveryUrl, 'discovery document', MAX_DISCOVERY_BYTES);
      if (typeof doc !== 'object' || doc === null) this.#bad(discoveryUrl, 'is not a JSON object');
      const record = doc as Record<string, unknown>;
      if (record.issuer !== issuer) {
        this.#bad(
          discoveryUrl,
          `names another issuer; the configured issuer must be exactly the document's "issuer"`,
        );
      }
      const named = record.jwks_uri;
      if (typeof named !== 'string') this.#bad(discoveryUrl, 'has no "jwks_uri"');
      const problem = oidcUrlProblem(named);
      if (problem !== undefined) this.#bad(discoveryUrl, `"jwks_uri" ${problem}`);
      if (new URL(named).origin !== new URL(issuer).origin) {
        this.#bad(
          discoveryUrl,
          `"jwks_uri" is on another host than the issuer; configure jwks_uri explicitly if that host is trusted`,
        );
      }
      jwksUri = named;
    }
    let set: unknown;
    try {
      set = await this.#getJson(jwksUri, 'key set', MAX_JWKS_BYTES);
    } catch (error) {
      // The discovery document may have moved the key set: look it up again next time.
      if (this.#options.jwksUri === undefined) this.#jwksUri = undefined;
      throw error;
    }
    this.#jwksUri = jwksUri;
    if (
      typeof set !== 'object' ||
      set === null ||
      !Array.isArray((set as { keys?: unknown }).keys) ||
      !(set as { keys: unknown[] }).keys.every(
        (k) => typeof k === 'object' && k !== null && !Array.isArray(k),
      )
    ) {
      this.#bad(jwksUri, 'is not a JSON Web Key Set ({"keys": [...]})');
    }
    return { getKey: createLocalJWKSet(set as JSONWebKeySet), fetchedAt: this.#now() };
  }

  #bad(url: string, why: string): never {
    throw new RegauthError(
      'ERR_TOKEN_RESPONSE',
      `OIDC issuer ${this.#options.issuer}: ${url} ${why}; tokens of this issuer are refused until it is fixed`,
    );
  }

  async #getJson(url: string, what: string, maxBytes: number): Promise<unknown> {
    const timeout = this.#options.fetchTimeoutMs ?? DEFAULT_OIDC_FETCH_TIMEOUT_MS;
    const fail = (
      why: string,
      code: 'ERR_NETWORK' | 'ERR_TOO_LARGE' | 'ERR_TOKEN_RESPONSE' = 'ERR_NETWORK',
    ) =>
      new RegauthError(
        code,
        `OIDC issuer ${this.#options.issuer}: cannot fetch its ${what} from ${url}: ${why}; tokens of this issuer cannot be checked until it answers (check the issuer URL and that this host reaches it)`,
      );
    let body: Buffer;
    try {
      const answer = await request(url, {
        dispatcher: this.#agent,
        method: 'GET',
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(timeout),
      });
      if (answer.statusCode !== 200) {
        discard(answer.body);
        throw fail(`HTTP ${answer.statusCode}`, 'ERR_TOKEN_RESPONSE');
      }
      const declared = Number(answer.headers['content-length']);
      if (declared > maxBytes) {
        discard(answer.body);
        throw fail(`the answer is over ${maxBytes} bytes`, 'ERR_TOO_LARGE');
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of answer.body) {
        size += (chunk as Buffer).length;
        if (size > maxBytes) {
          discard(answer.body);
          throw fail(`the answer is over ${maxBytes} bytes`, 'ERR_TOO_LARGE');
        }
        chunks.push(chunk as Buffer);
      }
      body = Buffer.concat(chunks);
    } catch (cause) {
      if (cause instanceof RegauthError) throw cause;
      const err = cause as Error & { code?: string };
      const why =
        err.name === 'TimeoutError' ||
        err.code === 'UND_ERR_HEADERS_TIMEOUT' ||
        err.code === 'UND_ERR_BODY_TIMEOUT'
          ? `no answer within ${timeout} ms`
          : (err.code ?? err.message);
      throw fail(why);
    }
    try {
      return JSON.parse(body.toString('utf8'));
    } catch {
      throw fail('the answer is not JSON', 'ERR_TOKEN_RESPONSE');
    }
  }
}
