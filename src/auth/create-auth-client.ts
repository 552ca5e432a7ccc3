import { raceSignal } from '../errors/aborted-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import { formatScope } from '../scope/format-scope.js';
import type { ResourceScope } from '../scope/parse-scope.js';
import { errorRequest, httpErrorFacts } from '../transport/http-error-facts.js';
import {
  bufferedResponse,
  type HttpRequest,
  type HttpResponse,
  type Send,
  type Transport,
} from '../transport/http-types.js';
import { redactUrl } from '../transport/redact.js';
import type { Tracer } from '../transport/trace.js';
import { basicAuthorization } from './basic-authorization.js';
import type { OnStoreError, StoreOperation } from './call-store.js';
import { ChallengeCache, type ChallengeStore } from './challenge-cache.js';
import { checkRealm } from './check-realm.js';
import {
  type CredentialSource,
  type FoundCredential,
  IDENTITY_TOKEN_USERNAME,
} from './credentials/credential.js';
import { fetchToken } from './fetch-token.js';
import { type Challenge, parseChallenges } from './parse-challenge.js';
import { TokenCache, type TokenKeyParts } from './token-cache.js';
import type { TokenInfo } from './token-response.js';

export type { ChallengeStore } from './challenge-cache.js';

/**
 * A request that needs authorization for these resources on this registry. Its `signal` also
 * ends what the request waits for: the challenge ping and the token fetch it causes. A token
 * fetch or a challenge that other requests wait for too goes on for them: an abort rejects only
 * the request whose signal it is.
 */
export interface AuthRequest extends HttpRequest {
  /** The registry as credentials are stored for it (`docker.io`, `localhost:5000`). */
  readonly registry: string;
  readonly scopes: readonly ResourceScope[];
  /**
   * Set while the registry's scheme is a guess (a loopback registry's plain HTTP remembered from
   * an earlier run, RegistrySchemes): the request goes with a token already cached, and when it
   * has none but would need a credential (a password, a token fetched from a kept challenge's
   * realm), this is awaited first (the ping that confirms the scheme) and its failure is the
   * request's. So no credential moves on the strength of a guess. Left out: no guess.
   */
  readonly beforeCredentials?: () => Promise<void>;
}

/** How a request was finally sent, so that a refusal can say who was refused. Holds no secret. */
export type SentAs =
  | { readonly anonymous: true }
  | {
      readonly anonymous: false;
      /** The user name; left out for an identity token stored without one (`<token>`). */
      readonly account?: string;
      /** Where the credential came from (FoundCredential.source). */
      readonly source: string;
    };

export interface AuthResponse extends HttpResponse {
  /** Set once the registry asked for authorization (a challenge): who the request went as. */
  readonly sentAs?: SentAs;
}

/**
 * The auth layer's send: a request with the registry and scopes it is for, answered with authorization added as the registry asks.
 */
export type AuthSend = (request: AuthRequest) => Promise<AuthResponse>;

/**
 * What AuthClient.login found out: how the registry authenticates, and a refresh token when the realm issued one.
 */
export interface LoginResult {
  /** `bearer`, `basic`, or `none` when the registry asked for no credentials at all. */
  readonly scheme: 'bearer' | 'basic' | 'none';
  /** A refresh token the realm issued (docker stores it as `identitytoken`). */
  readonly identityToken?: string;
}

/**
 * The auth layer (see createAuthClient): one path from a registry's challenge to a token for every request, login included.
 */
export interface AuthClient {
  /** Sends a request with whatever authorization the registry asks for. */
  readonly send: AuthSend;
  /**
   * The seed's steps 1 and 2 alone: learns the registry's challenge from `request` (when not
   * known yet) and returns the token the realm issues for its scopes, or undefined when the
   * registry asks for no token.
   */
  token(request: AuthRequest): Promise<TokenInfo | undefined>;
  /**
   * Checks the registry's credential the way `docker login` does: `request` (a `GET /v2/`) goes
   * out without credentials; for a Bearer challenge the realm is asked for a token with
   * `offline_token=true` and no scope (never from the cache: the password is checked for real),
   * and the request must then succeed with it; for Basic it must succeed with the credential.
   * Rejects with ERR_UNAUTHORIZED when the credential is refused.
   */
  login(request: AuthRequest): Promise<LoginResult>;
}

/**
 * What the auth layer sends through, where credentials come from, and where tokens and challenges are kept.
 */
export interface AuthClientOptions {
  /** The transport below (createTransport, or your own). */
  readonly send: Send;
  /** Asked for a registry's credential only when its challenge wants one. */
  readonly credentials: CredentialSource;
  /** Left out: a memory-only cache for this client. */
  readonly tokenCache?: TokenCache;
  /** Left out: challenges are remembered in memory only. */
  readonly challengeStore?: ChallengeStore;
  /**
   * Told when the challenge store throws or rejects (the request goes on without it); the trace
   * gets a note naming the failed method, never the error's text. The token cache reports its
   * own store's errors (TokenCacheOptions.onStoreError).
   */
  readonly onStoreError?: OnStoreError;
  /** The OAuth2 `client_id` sent to realms (docker sends `docker`). Left out: DEFAULT_CLIENT_ID. */
  readonly clientId?: string;
  /** Receives the auth layer's notes (which credential, which token, from the cache or the realm). */
  readonly trace?: Tracer;
  /** The clock, in milliseconds since the epoch. Left out: Date.now. */
  readonly now?: () => number;
}

/** A 401's body is a short error envelope; more than this is not worth reading. */
const MAX_CHALLENGE_BODY_BYTES = 64 * 1024;

function sentAs(found: FoundCredential | undefined): SentAs {
  if (found === undefined) return { anonymous: true };
  const { username } = found.credential;
  return username === undefined || username === IDENTITY_TOKEN_USERNAME
    ? { anonymous: false, source: found.source }
    : { anonymous: false, account: username, source: found.source };
}

/** An aborted request's name in its error: method and URL, redacted. */
const requestName = (req: HttpRequest) => `${req.method} ${redactUrl(req.url)}`;

function pickChallenge(offered: readonly Challenge[]): Challenge | undefined {
  return offered.find((c) => c.scheme === 'bearer') ?? offered.find((c) => c.scheme === 'basic');
}

/**
 * The auth layer: wraps the transport's send, answers Bearer and Basic challenges, and is the
 * only code that builds an Authorization header for a registry. Once a registry's challenge is
 * known, requests carry a token from the start: no 401 round trip. A 401 is answered once (a new
 * challenge, or `insufficient_scope` with the wider scope the registry names), never in a loop.
 * Every route to a token — a request, `token`, `login`, a challenge read from the store — passes
 * one realm check (checkRealm) before credentials go anywhere.
 */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  const transport = options.send;
  const cache = options.tokenCache ?? new TokenCache(options.now ? { now: options.now } : {});
  const challenges = new ChallengeCache(options.challengeStore, {
    onStoreError: storeErrorReporter(options.onStoreError, options.trace),
  });
  const credentials = new Map<string, Promise<FoundCredential | undefined>>();
  const optional = {
    ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
    ...(options.now === undefined ? {} : { now: options.now }),
  };

  // Credentials are looked up only once a registry has asked for them: a helper never runs for
  // a public pull, and at most once per registry per client.
  const credentialFor = (registry: string): Promise<FoundCredential | undefined> => {
    let found = credentials.get(registry);
    if (!found) {
      found = options.credentials.find(registry);
      credentials.set(registry, found);
    }
    return found;
  };

  /**
   * The challenge known for the request's registry. One kept from an earlier run that no longer
   * passes the realm check (a plain-HTTP realm for a registry now on HTTPS, a planted file) is
   * dropped, so the registry is asked again rather than refused on every run from now on.
   */
  const knownChallenge = async (req: AuthRequest): Promise<Challenge | undefined> => {
    const origin = req.url.origin;
    const challenge = await challenges.get(origin);
    if (challenge?.scheme !== 'bearer') return challenge;
    try {
      checkRealm(challenge, req.url);
      return challenge;
    } catch (err) {
      await challenges.forget(origin);
      options.trace?.({
        kind: 'note',
        text: `dropped the challenge remembered for ${origin}: ${(err as Error).message}`,
      });
      return undefined;
    }
  };

  /**
   * A 401 from another origin than the one asked — the storage host a blob GET was redirected
   * to (S3, a CDN), a plain-HTTP hop — is not the registry's: its realm is never adopted, stored,
   * or sent the registry's credentials, and the fetch fails saying so. containerd keys challenges
   * by the host that answered; go-containerregistry's bearer transport only ever adds scopes to
   * the challenge it learned first.
   */
  const refuseForeign = async (req: AuthRequest, res: HttpResponse): Promise<HttpResponse> => {
    if (res.status !== 401 || res.url.origin === req.url.origin) return res;
    await res.dump();
    throw new RegauthError(
      'ERR_FOREIGN_CHALLENGE',
      `${req.method} ${req.url.origin}${req.url.pathname} was redirected to ${res.url.origin}, which asks ` +
        "for credentials (401); a registry's credentials go only to the registry and its token realm",
      httpErrorFacts(res, req.method),
    );
  };

  /** The challenges of a 401 the registry itself sent. */
  const challengesOf = async (req: AuthRequest, res: HttpResponse): Promise<Challenge[]> => {
    await refuseForeign(req, res);
    return parseChallenges(res.headerValues('www-authenticate'));
  };

  /** Keeps a challenge the registry sent, once its realm passed the check: one that fails is never kept. */
  const adopt = (req: AuthRequest, offered: Challenge): Promise<Challenge> => {
    if (offered.scheme === 'bearer') {
      const realm = checkRealm(offered, req.url);
      // A token request follows: its connection opens while credentials are found and hashed.
      (transport as Partial<Transport>).preconnect?.(new URL(realm.origin));
    }
    return challenges.learn(req.url.origin, offered);
  };

  /**
   * A token for the request's scopes, the scopes its registry named for such requests before
   * (Artifactory's virtual repositories name `repository:alpine:pull` for
   * `/v2/virtual/alpine/…`), and `extraScopes` (what a 401 just named).
   */
  /** What a token for the request is kept under: its registry, realm, credential and scopes. */
  const tokenKeyParts = async (
    req: AuthRequest,
    challenge: Challenge,
    found: FoundCredential | undefined,
    extraScopes: readonly string[],
  ): Promise<TokenKeyParts> => {
    const requested = req.scopes.map(formatScope);
    const named =
      requested.length === 0
        ? []
        : await raceSignal(challenges.scopeNames(req.url.origin, requested), req.signal, requestName(req));
    return {
      origin: req.url.origin,
      realm: checkRealm(challenge, req.url).href,
      service: challenge.params.service ?? '',
      ...(found === undefined ? {} : { credential: found.credential }),
      scopes: [...new Set([...requested, ...named, ...extraScopes])],
    };
  };

  const bearerToken = async (
    req: AuthRequest,
    challenge: Challenge,
    found: FoundCredential | undefined,
    extraScopes: readonly string[],
    force: boolean,
  ): Promise<TokenInfo> => {
    const realm = checkRealm(challenge, req.url);
    const service = challenge.params.service;
    const parts = await tokenKeyParts(req, challenge, found, extraScopes);
    // One fetch per key whoever asks (TokenCache.tokenFor): it runs without any one caller's
    // signal, and each caller stops waiting for it at its own abort.
    return raceSignal(
      cache.tokenFor(
        parts,
        req.registry,
        () =>
          fetchToken({
            send: transport,
            realm,
            scopes: parts.scopes,
            ...(service === undefined ? {} : { service }),
            ...(found === undefined ? {} : { found }),
            ...optional,
          }),
        { force },
      ),
      req.signal,
      requestName(req),
    );
  };

  const authorization = async (
    req: AuthRequest,
    challenge: Challenge,
    extraScopes: readonly string[],
    force: boolean,
    cachedOnly = false,
  ): Promise<string | undefined> => {
    const found = await raceSignal(credentialFor(req.registry), req.signal, requestName(req));
    const credential = found?.credential;
    if (challenge.scheme === 'basic') {
      if (cachedOnly || credential?.username === undefined || credential.password === undefined)
        return undefined;
      return basicAuthorization(credential.username, credential.password);
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (cachedOnly) {
      if (credential?.registryToken) return undefined;
      const kept = await cachedBearerToken(req, challenge, found);
      return kept === undefined ? undefined : `Bearer ${kept.token}`;
    }
    if (credential?.registryToken) return `Bearer ${credential.registryToken}`;
    return `Bearer ${(await bearerToken(req, challenge, found, extraScopes, force)).token}`;
  };

  /** The token bearerToken would find kept for the request, without fetching one. */
  const cachedBearerToken = async (
    req: AuthRequest,
    challenge: Challenge,
    found: FoundCredential | undefined,
  ): Promise<TokenInfo | undefined> =>
    raceSignal(
      cache.cached(await tokenKeyParts(req, challenge, found, []), req.registry),
      req.signal,
      requestName(req),
    );

  const withAuth = (req: AuthRequest, value: string | undefined): HttpRequest => {
    const headers: Record<string, string> = { ...req.headers };
    if (value !== undefined) headers.authorization = value;
    return { ...req, headers };
  };

  const send: AuthSend = async (req) => {
    const origin = req.url.origin;
    let known = await knownChallenge(req);
    const pending = known ? undefined : challenges.pending(origin);
    if (pending) {
      // The request finding out the challenge is another caller's: this one stops waiting at its
      // own abort, and that one's abort only hands the discovery on (release, below).
      await raceSignal(pending, req.signal, requestName(req));
      known = await knownChallenge(req);
    }
    const release = known ? undefined : challenges.discover(origin);
    try {
      return await sendWith(req, known, () => release?.());
    } finally {
      release?.();
    }
  };

  /** The response, marked with who the request went as: the credential authorization() used. */
  const marked = async (req: AuthRequest, res: HttpResponse): Promise<AuthResponse> => ({
    ...res,
    // Looked up already by authorization(): settled, nothing to abort.
    sentAs: sentAs(await credentialFor(req.registry)),
  });

  const sendWith = async (
    req: AuthRequest,
    known: Challenge | undefined,
    learned: () => void,
  ): Promise<AuthResponse> => {
    const guessed = req.beforeCredentials;
    let firstValue = known ? await authorization(req, known, [], false, guessed !== undefined) : undefined;
    if (known && firstValue === undefined && guessed !== undefined) {
      await guessed();
      firstValue = await authorization(req, known, [], false);
    }
    const first = await transport(withAuth(req, firstValue));
    if (first.status !== 401) {
      learned();
      return known ? marked(req, first) : first;
    }

    // Some registries (GCR) answer 401 with no challenge: the one from earlier still applies.
    const offered = pickChallenge(await challengesOf(req, first)) ?? known;
    if (!offered || (offered.scheme !== 'bearer' && offered.scheme !== 'basic')) return first;
    const challenge = offered === known ? known : await adopt(req, offered);
    learned();
    // The error body is small; reading it now keeps --trace in the seed's order (401, then token).
    const body = await first.bytes(MAX_CHALLENGE_BODY_BYTES).catch(() => Buffer.alloc(0));
    const extraScopes = (offered.params.scope ?? '').split(' ').filter((s) => s !== '');
    // The registry names another resource than the path does (Artifactory drops a virtual
    // repository's key): remember it, so the next request, or process, asks for it up front.
    // Wider actions on the path's own resource are this request's business (insufficient_scope).
    const resource = (scope: string) => scope.slice(0, scope.lastIndexOf(':'));
    const resources = new Set(req.scopes.map((s) => resource(formatScope(s))));
    const renamed = extraScopes.filter((s) => !resources.has(resource(s)));
    if (challenge.scheme === 'bearer' && resources.size > 0 && renamed.length > 0) {
      await challenges.learnScopeNames(req.url.origin, req.scopes.map(formatScope), renamed);
    }
    options.trace?.({ kind: 'note', text: `${req.url.host} asks for ${offered.scheme} authorization` });
    // One retry, with a token for the challenge's scope (new, or wider after insufficient_scope),
    // fetched afresh when the one just sent was refused.
    const value = await authorization(req, challenge, extraScopes, known !== undefined);
    // Nothing to answer the challenge with: the request stays without credentials.
    if (value === undefined) return { ...bufferedResponse(first, body), sentAs: { anonymous: true } };
    return marked(req, await refuseForeign(req, await transport(withAuth(req, value))));
  };

  /** Asks the registry without credentials; the challenge it answers with, checked and kept. */
  const probe = async (
    req: AuthRequest,
  ): Promise<{ status: number; offered: Challenge[]; challenge?: Challenge }> => {
    const res = await transport(withAuth(req, undefined));
    if (res.status !== 401) {
      await res.dump();
      return { status: res.status, offered: [] };
    }
    const offered = await challengesOf(req, res);
    await res.dump();
    const picked = pickChallenge(offered);
    return picked ? { status: 401, offered, challenge: await adopt(req, picked) } : { status: 401, offered };
  };

  const token = async (req: AuthRequest): Promise<TokenInfo | undefined> => {
    const challenge = (await knownChallenge(req)) ?? (await probe(req)).challenge;
    if (challenge?.scheme !== 'bearer') return undefined;
    const found = await raceSignal(credentialFor(req.registry), req.signal, requestName(req));
    return bearerToken(req, challenge, found, [], false);
  };

  const login = async (req: AuthRequest): Promise<LoginResult> => {
    const host = req.url.host;
    const found = await raceSignal(credentialFor(req.registry), req.signal, requestName(req));
    const { status, offered, challenge } = await probe(req);
    if (status === 200) return { scheme: 'none' };
    if (status !== 401) {
      throw new RegauthError(
        'ERR_REGISTRY',
        `${host} answered ${status} to GET ${req.url.pathname}; is it a registry?`,
        { status, request: errorRequest(req.method, req.url) },
      );
    }
    if (!challenge) {
      throw new RegauthError(
        'ERR_UNSUPPORTED',
        `${host} asks for ${offered.map((c) => c.scheme).join(', ') || 'an unnamed'} authentication, which regauth does not speak`,
      );
    }
    const credential = found?.credential;
    let value: string;
    let identityToken: string | undefined;
    if (challenge.scheme === 'bearer') {
      const service = challenge.params.service;
      const issued = await fetchToken({
        send: transport,
        realm: checkRealm(challenge, req.url),
        scopes: [],
        offline: true,
        ...(service === undefined ? {} : { service }),
        ...(found === undefined ? {} : { found }),
        ...(req.signal === undefined ? {} : { signal: req.signal }),
        ...optional,
      });
      value = `Bearer ${issued.token}`;
      identityToken = issued.refreshToken;
    } else {
      if (credential?.username === undefined || credential.password === undefined) {
        throw new RegauthError(
          'ERR_USAGE',
          `${host} uses Basic authentication: log in with a user name and password`,
        );
      }
      value = basicAuthorization(credential.username, credential.password);
    }
    const check = await transport(withAuth(req, value));
    await check.dump();
    if (check.status !== 200) {
      throw new RegauthError(
        'ERR_UNAUTHORIZED',
        challenge.scheme === 'bearer'
          ? `the token server accepted the credentials but ${host} refused its token (${check.status}); ` +
              "the registry's auth.token settings (issuer, service, rootcertbundle) may not match the token server"
          : `${host} refused the credentials for ${credential?.username ?? 'the user'} (${check.status})`,
        httpErrorFacts(check, req.method),
      );
    }
    return {
      scheme: challenge.scheme === 'bearer' ? 'bearer' : 'basic',
      ...(identityToken === undefined ? {} : { identityToken }),
    };
  };

  return { send, token, login };
}

/**
 * Tells the caller's `onStoreError`, and notes in the trace which store method failed — never the
 * error's text, which is the store's own and could hold anything it was given, a token included.
 */
export function storeErrorReporter(
  onStoreError: OnStoreError | undefined,
  trace: Tracer | undefined,
): OnStoreError | undefined {
  if (onStoreError === undefined && trace === undefined) return undefined;
  return (error: unknown, operation: StoreOperation) => {
    trace?.({ kind: 'note', text: `the token store's ${operation} failed; going on without it` });
    onStoreError?.(error, operation);
  };
}
