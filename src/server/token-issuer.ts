import {
  createHmac,
  hkdfSync,
  randomBytes,
  randomFillSync,
  type SignKeyObjectInput,
  sign,
  timingSafeEqual,
} from 'node:crypto';
import type { ResourceScope } from '../scope/parse-scope.js';
import { ADMIN_CLOCK_SKEW_MS } from './admin-endpoint.js';
import type { SigningMaterial } from './signing-key.js';

export interface IssuedToken {
  readonly token: string;
  readonly expiresIn: number;
  readonly issuedAt: Date;
  /**
   * The moment it was signed, in ms: `iat` has whole seconds, too coarse to tell a token signed
   * just before a revocation from one signed just after it in the same second.
   */
  readonly issuedAtMs?: number;
}

export interface RefreshClaims {
  readonly sub: string;
  readonly service: string;
  /**
   * Fingerprint of the user's credential when the token was issued (the htpasswd entry's hash):
   * a change revokes the token. Left out when the authenticator keeps none.
   */
  readonly fp?: string;
  /** The identity's labels when it logged in: the ACL matches on them again at each refresh. */
  readonly labels?: Readonly<Record<string, readonly string[]>>;
  /**
   * The `id` of the authenticator that accepted the login (Authenticator.id): each refresh asks
   * it again for the user and their current labels. Left out (tokens issued before, backends
   * without `lookup`): the token lives by its signature, expiry and fingerprint.
   */
  readonly authn?: string;
  /**
   * When it was issued, in ms (verifyRefreshToken only). Tokens carry it in `ims`, as `iat`
   * has whole seconds; one without `ims` counts from the start of its `iat` second.
   */
  readonly issuedAtMs?: number;
}

export interface TokenIssuerOptions {
  /** The key access and refresh tokens are signed with. */
  readonly signing: SigningMaterial;
  /**
   * Keys that signed before (a rotation lists the new key first): refresh tokens under them stay
   * valid, so `docker login`'s identity tokens survive a rotation. Left out: none.
   */
  readonly previous?: readonly SigningMaterial[];
  readonly issuer: string;
  /** Seconds an access token lives; the registry allows 60 s of clock skew on top. */
  readonly expiration: number;
  /** Seconds a refresh token lives. */
  readonly refreshExpiration: number;
  readonly now?: () => number;
  /**
   * The revocation epoch of an account (RevocationStore.revokedBefore): a refresh token issued
   * now is stamped no earlier than it, so a login just after a revocation, in the same
   * millisecond even, yields a token the revocation spares. Left out: none.
   */
  readonly revokedBefore?: (account: string) => number | undefined;
}

const REFRESH_PREFIX = 'rt1';

/**
 * Signs access tokens in the shape distribution 2.8 and 3.x verify (registry/auth/token/token.go):
 * `x5c` for both, the libtrust `kid` for 2.8, `aud` a plain string, integer times. Refresh tokens are
 * stateless: an HMAC under a key derived from the signing key, so every replica that shares
 * the key can check them without a shared store, and they never validate as access tokens.
 *
 * Access tokens are signed with node:crypto directly: a compact JWS is three base64url parts,
 * and the header (with its x5c) is encoded once. A JOSE library's per-token header handling and
 * WebCrypto dispatch cost most of the server's time under load (bench scenario 8); the tests
 * check the tokens with jose.
 */
export class TokenIssuer {
  readonly #options: TokenIssuerOptions;
  readonly #refreshKey: Buffer;
  /** The refresh key of every key, the signing one first. */
  readonly #refreshKeys: readonly Buffer[];
  readonly #now: () => number;
  /** The protected header never changes: encoded once (its x5c is most of a token's size). */
  readonly #header: string;
  readonly #hash: string;
  readonly #signKey: SignKeyObjectInput;
  readonly #jtiPool = Buffer.alloc(16 * 256);
  #jtiOffset = Number.POSITIVE_INFINITY;

  constructor(options: TokenIssuerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#refreshKeys = [options.signing, ...(options.previous ?? [])].map(refreshKeyOf);
    this.#refreshKey = this.#refreshKeys[0] as Buffer;
    const { signing } = options;
    this.#header = Buffer.from(
      JSON.stringify({ alg: signing.algorithm, typ: 'JWT', kid: signing.kid, x5c: signing.x5c }),
    ).toString('base64url');
    this.#hash = { ES256: 'sha256', ES384: 'sha384', ES512: 'sha512', RS256: 'sha256' }[signing.algorithm];
    // JWS wants ECDSA signatures as raw r||s, not DER (RFC 7518 §3.4; distribution rejects DER).
    this.#signKey = signing.algorithm.startsWith('ES')
      ? { key: signing.privateKey, dsaEncoding: 'ieee-p1363' }
      : { key: signing.privateKey };
  }

  async issueAccessToken(
    subject: string,
    audience: string,
    access: readonly ResourceScope[],
    /**
     * When the login's credential expires, in ms since the epoch (Authentication's `expiresAt`):
     * the token must not outlive it. Left out: the configured expiration.
     */
    notAfter?: number,
  ): Promise<IssuedToken> {
    const { issuer } = this.#options;
    const nowMs = this.#now();
    const now = Math.floor(nowMs / 1000);
    const expiration =
      notAfter === undefined
        ? this.#options.expiration
        : Math.max(0, Math.min(this.#options.expiration, Math.floor(notAfter / 1000) - now));
    const claims = {
      iss: issuer,
      sub: subject,
      aud: audience,
      exp: now + expiration,
      nbf: now,
      iat: now,
      jti: this.#jti(),
      access: access.map((a) => ({ type: a.type, name: a.name, actions: [...a.actions] })),
    };
    const input = `${this.#header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const signature = sign(this.#hash, Buffer.from(input), this.#signKey);
    return {
      token: `${input}.${signature.toString('base64url')}`,
      expiresIn: expiration,
      issuedAt: new Date(now * 1000),
      // Stamped like a refresh token (see revokedBefore): one signed after a revocation is
      // never taken for one signed before it.
      issuedAtMs: this.#stamp(subject, nowMs),
    };
  }

  /**
   * No earlier than the account's revocation epoch, and no later than now plus the clock skew a
   * revocation may carry: a far-future epoch (a clock far ahead, a hostile store) must not stamp
   * tokens that no later revocation reaches.
   */
  #stamp(subject: string, nowMs: number): number {
    const epoch = this.#options.revokedBefore?.(subject) ?? Number.NEGATIVE_INFINITY;
    return Math.max(nowMs, Math.min(epoch, nowMs + ADMIN_CLOCK_SKEW_MS));
  }

  /** 128 random bits, from a pool refilled a few hundred tokens at a time (one RNG call each). */
  #jti(): string {
    if (this.#jtiOffset + 16 > this.#jtiPool.length) {
      randomFillSync(this.#jtiPool);
      this.#jtiOffset = 0;
    }
    const id = this.#jtiPool.toString('base64url', this.#jtiOffset, this.#jtiOffset + 16);
    this.#jtiOffset += 16;
    return id;
  }

  issueRefreshToken(claims: Omit<RefreshClaims, 'issuedAtMs'>): string {
    const nowMs = this.#now();
    const ims = this.#stamp(claims.sub, nowMs);
    const iat = Math.floor(ims / 1000);
    const payload = Buffer.from(
      JSON.stringify({
        sub: claims.sub,
        svc: claims.service,
        ...(claims.fp === undefined ? {} : { fp: claims.fp }),
        ...(claims.authn === undefined ? {} : { au: claims.authn }),
        ...(claims.labels === undefined || Object.keys(claims.labels).length === 0
          ? {}
          : { lb: claims.labels }),
        iat,
        ims,
        // From the real time, never the stamp: a stamp ahead of now must not lengthen the life.
        exp: Math.floor(nowMs / 1000) + this.#options.refreshExpiration,
        jti: randomBytes(12).toString('base64url'),
      }),
    ).toString('base64url');
    return `${REFRESH_PREFIX}.${payload}.${this.#mac(payload)}`;
  }

  /** The claims of a refresh token that is intact and unexpired, else undefined. */
  verifyRefreshToken(token: string): RefreshClaims | undefined {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== REFRESH_PREFIX) return undefined;
    const [, payload = '', mac = ''] = parts;
    const given = Buffer.from(mac);
    const valid = this.#refreshKeys.some((key) => {
      const expected = Buffer.from(macWith(key, payload));
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
    if (!valid) return undefined;
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof body !== 'object' || body === null) return undefined;
    const { sub, svc, fp, lb, au, exp, iat, ims } = body as Record<string, unknown>;
    if (
      typeof sub !== 'string' ||
      typeof svc !== 'string' ||
      (fp !== undefined && typeof fp !== 'string') ||
      (au !== undefined && typeof au !== 'string') ||
      (lb !== undefined && !isLabels(lb)) ||
      typeof exp !== 'number' ||
      (ims !== undefined && typeof ims !== 'number') ||
      (iat !== undefined && typeof iat !== 'number')
    ) {
      return undefined;
    }
    if (exp * 1000 <= this.#now()) return undefined;
    return {
      sub,
      service: svc,
      ...(fp === undefined ? {} : { fp }),
      ...(lb === undefined ? {} : { labels: lb }),
      ...(au === undefined ? {} : { authn: au }),
      // Without either, the token counts as issued at the dawn of time: any revocation covers it.
      issuedAtMs: ims ?? (iat === undefined ? 0 : iat * 1000),
    };
  }

  #mac(payload: string): string {
    return macWith(this.#refreshKey, payload);
  }
}

function isLabels(value: unknown): value is Record<string, string[]> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => Array.isArray(v) && v.every((x) => typeof x === 'string'))
  );
}

function refreshKeyOf(signing: SigningMaterial): Buffer {
  const der = signing.privateKey.export({ type: 'pkcs8', format: 'der' });
  return Buffer.from(hkdfSync('sha256', der, Buffer.alloc(0), 'regauth refresh token v1', 32));
}

function macWith(key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(payload).digest('base64url');
}
