import { RegauthError } from '../errors/regauth-error.js';
import { formatScope } from '../scope/format-scope.js';
import type { ResourceScope } from '../scope/parse-scope.js';
import { bufferedResponse, type HttpRequest, type HttpResponse, type Send } from '../transport/http-types.js';
import { isLoopbackHostname } from '../transport/is-loopback-hostname.js';
import type { Tracer } from '../transport/trace.js';
import type { CredentialSource, FoundCredential } from './credentials/credential.js';
import { credentialIdentity, fetchToken } from './fetch-token.js';
import { type Challenge, parseChallenges, resolveRealm } from './parse-challenge.js';
import { TokenCache } from './token-cache.js';
import type { TokenInfo } from './token-response.js';

/** A request that needs authorization for these resources on this registry. */
export interface AuthRequest extends HttpRequest {
  /** The registry as credentials are stored for it (`docker.io`, `localhost:5000`). */
  readonly registry: string;
  readonly scopes: readonly ResourceScope[];
}

export type AuthSend = (request: AuthRequest) => Promise<HttpResponse>;

export interface AuthClient {
  /** Sends a request with whatever authorization the registry asks for. */
  readonly send: AuthSend;
  /**
   * The seed's steps 1 and 2 alone: learns the registry's challenge from `request` (when not
   * known yet) and returns the token the realm issues for its scopes, or undefined when the
   * registry asks for no token.
   */
  token(request: AuthRequest): Promise<TokenInfo | undefined>;
}

/** Where challenges learned from a registry are kept between processes. */
export interface ChallengeStore {
  loadChallenge(origin: string): Challenge | undefined;
  saveChallenge(origin: string, challenge: Challenge): void;
}

export interface AuthClientOptions {
  readonly send: Send;
  readonly credentials: CredentialSource;
  /** Left out: a memory-only cache for this client. */
  readonly tokenCache?: TokenCache;
  /** Left out: challenges are remembered in memory only. */
  readonly challengeStore?: ChallengeStore;
  readonly clientId?: string;
  readonly trace?: Tracer;
  readonly now?: () => number;
}

/** A 401's body is a short error envelope; more than this is not worth reading. */
const MAX_CHALLENGE_BODY_BYTES = 64 * 1024;

/** Challenge parameters that describe one request, not the registry: never reuse them. */
const PER_REQUEST_PARAMS = new Set(['scope', 'error', 'error_description']);

function registryChallenge(challenge: Challenge): Challenge {
  return {
    scheme: challenge.scheme,
    params: Object.fromEntries(Object.entries(challenge.params).filter(([k]) => !PER_REQUEST_PARAMS.has(k))),
  };
}

function pickChallenge(offered: readonly Challenge[]): Challenge | undefined {
  return offered.find((c) => c.scheme === 'bearer') ?? offered.find((c) => c.scheme === 'basic');
}

/**
 * The auth layer (CONVENTIONS.md): wraps the transport's send, answers Bearer and Basic
 * challenges, and is the only code that builds an Authorization header for a registry.
 * Once a registry's challenge is known, requests carry a token from the start: no 401 round
 * trip. A 401 is answered once (a new challenge, or `insufficient_scope` with the wider scope
 * the registry names), never in a loop.
 */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  const transport = options.send;
  const cache = options.tokenCache ?? new TokenCache(options.now ? { now: options.now } : {});
  const challenges = new Map<string, Challenge>();
  const credentials = new Map<string, Promise<FoundCredential | undefined>>();

  const knownChallenge = (origin: string): Challenge | undefined => {
    let c = challenges.get(origin);
    if (!c) {
      c = options.challengeStore?.loadChallenge(origin);
      if (c) challenges.set(origin, c);
    }
    return c;
  };

  const learn = (origin: string, challenge: Challenge): Challenge => {
    const learned = registryChallenge(challenge);
    challenges.set(origin, learned);
    options.challengeStore?.saveChallenge(origin, learned);
    return learned;
  };

  // Credentials are looked up only once a registry has asked for them: a helper never runs for
  // a public pull (PROTOCOL.md §7), and at most once per registry per client.
  const credentialFor = (registry: string): Promise<FoundCredential | undefined> => {
    let found = credentials.get(registry);
    if (!found) {
      found = options.credentials.find(registry);
      credentials.set(registry, found);
    }
    return found;
  };

  const checkedRealm = (req: AuthRequest, challenge: Challenge): URL => {
    const realm = resolveRealm(challenge, req.url);
    if (!realm) {
      throw new RegauthError(
        'ERR_INVALID_CHALLENGE',
        `${req.url.host} sent a Bearer challenge without a realm`,
      );
    }
    // An HTTPS registry whose realm is plain HTTP would put the password on the wire in clear.
    if (req.url.protocol === 'https:' && realm.protocol !== 'https:' && !isLoopbackHostname(realm.hostname)) {
      throw new RegauthError(
        'ERR_INSECURE_REALM',
        `${req.url.host} sends clients to ${realm.origin} over plain HTTP; refusing to send credentials there`,
      );
    }
    return realm;
  };

  const bearerToken = (
    req: AuthRequest,
    challenge: Challenge,
    found: FoundCredential | undefined,
    extraScopes: readonly string[],
    force: boolean,
  ): Promise<TokenInfo> => {
    const realm = checkedRealm(req, challenge);
    const service = challenge.params.service;
    const scopes = [...new Set([...req.scopes.map(formatScope), ...extraScopes])];
    const key = TokenCache.key({
      realm: realm.href,
      service: service ?? '',
      identity: credentialIdentity(found),
      scopes,
    });
    return cache.get(
      key,
      req.registry,
      () =>
        fetchToken({
          send: transport,
          realm,
          scopes,
          ...(service === undefined ? {} : { service }),
          ...(found === undefined ? {} : { found }),
          ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
          ...(options.now === undefined ? {} : { now: options.now }),
        }),
      force,
    );
  };

  const authorization = async (
    req: AuthRequest,
    challenge: Challenge,
    extraScopes: readonly string[],
    force: boolean,
  ): Promise<string | undefined> => {
    const found = await credentialFor(req.registry);
    const credential = found?.credential;
    if (challenge.scheme === 'basic') {
      if (credential?.username === undefined || credential.password === undefined) return undefined;
      return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (credential?.registryToken) return `Bearer ${credential.registryToken}`;
    return `Bearer ${(await bearerToken(req, challenge, found, extraScopes, force)).token}`;
  };

  const withAuth = (req: AuthRequest, value: string | undefined): HttpRequest => {
    const headers: Record<string, string> = { ...req.headers };
    if (value !== undefined) headers.authorization = value;
    return { ...req, headers };
  };

  // Requests that start together at a registry not met yet wait for the first one's answer
  // instead of each collecting its own 401: one challenge round trip, then one token fetch.
  const discovering = new Map<string, Promise<void>>();

  const send: AuthSend = async (req) => {
    const origin = req.url.origin;
    let known = knownChallenge(origin);
    if (!known) {
      const pending = discovering.get(origin);
      if (pending) {
        await pending;
        known = knownChallenge(origin);
      }
    }
    let release: (() => void) | undefined;
    if (!known && !discovering.has(origin)) {
      discovering.set(
        origin,
        new Promise<void>((resolve) => {
          release = () => {
            discovering.delete(origin);
            resolve();
          };
        }),
      );
    }
    try {
      return await sendWith(req, origin, known, () => release?.());
    } finally {
      release?.();
    }
  };

  const sendWith = async (
    req: AuthRequest,
    origin: string,
    known: Challenge | undefined,
    learned: () => void,
  ): Promise<HttpResponse> => {
    const first = await transport(
      withAuth(req, known ? await authorization(req, known, [], false) : undefined),
    );
    if (first.status !== 401) {
      learned();
      return first;
    }

    // Some registries (GCR) answer 401 with no challenge: the one from earlier still applies.
    const offered = pickChallenge(parseChallenges(first.headerValues('www-authenticate'))) ?? known;
    if (!offered || (offered.scheme !== 'bearer' && offered.scheme !== 'basic')) return first;
    const challenge = learn(origin, offered);
    learned();
    // The error body is small; reading it now keeps --trace in the seed's order (401, then token).
    const body = await first.bytes(MAX_CHALLENGE_BODY_BYTES).catch(() => Buffer.alloc(0));
    const extraScopes = (offered.params.scope ?? '').split(' ').filter((s) => s !== '');
    options.trace?.({ kind: 'note', text: `${req.url.host} asks for ${offered.scheme} authorization` });
    // One retry, with a token for the challenge's scope (new, or wider after insufficient_scope),
    // fetched afresh when the one just sent was refused.
    const value = await authorization(req, challenge, extraScopes, known !== undefined);
    if (value === undefined) return bufferedResponse(first, body);
    return transport(withAuth(req, value));
  };

  const token = async (req: AuthRequest): Promise<TokenInfo | undefined> => {
    let challenge = knownChallenge(req.url.origin);
    if (!challenge) {
      const res = await transport(withAuth(req, undefined));
      await res.dump();
      if (res.status !== 401) return undefined;
      const offered = pickChallenge(parseChallenges(res.headerValues('www-authenticate')));
      if (!offered) return undefined;
      challenge = learn(req.url.origin, offered);
    }
    if (challenge.scheme !== 'bearer') return undefined;
    return bearerToken(req, challenge, await credentialFor(req.registry), [], false);
  };

  return { send, token };
}
