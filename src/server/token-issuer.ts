import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { SignJWT } from 'jose';
import type { ResourceScope } from '../scope/parse-scope.js';
import type { SigningMaterial } from './signing-key.js';

export interface IssuedToken {
  readonly token: string;
  readonly expiresIn: number;
  readonly issuedAt: Date;
}

export interface RefreshClaims {
  readonly sub: string;
  readonly service: string;
  /** Fingerprint of the user's password hash when the token was issued. */
  readonly fp: string;
}

export interface TokenIssuerOptions {
  readonly signing: SigningMaterial;
  readonly issuer: string;
  /** Seconds an access token lives; the registry allows 60 s of clock skew on top. */
  readonly expiration: number;
  /** Seconds a refresh token lives. */
  readonly refreshExpiration: number;
  readonly now?: () => number;
}

const REFRESH_PREFIX = 'rt1';

/**
 * Signs access tokens in the shape distribution verifies (PROTOCOL.md §5): `x5c` for 2.8 and
 * 3.x, the libtrust `kid` for 2.8, `aud` a plain string, integer times. Refresh tokens are
 * stateless: an HMAC under a key derived from the signing key, so every replica that shares
 * the key can check them without a shared store, and they never validate as access tokens.
 */
export class TokenIssuer {
  readonly #options: TokenIssuerOptions;
  readonly #refreshKey: Buffer;
  readonly #now: () => number;

  constructor(options: TokenIssuerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const der = options.signing.privateKey.export({ type: 'pkcs8', format: 'der' });
    this.#refreshKey = Buffer.from(hkdfSync('sha256', der, Buffer.alloc(0), 'regauth refresh token v1', 32));
  }

  async issueAccessToken(
    subject: string,
    audience: string,
    access: readonly ResourceScope[],
  ): Promise<IssuedToken> {
    const { signing, issuer, expiration } = this.#options;
    const nowMs = this.#now();
    const now = Math.floor(nowMs / 1000);
    const token = await new SignJWT({
      access: access.map((a) => ({ type: a.type, name: a.name, actions: [...a.actions] })),
    })
      .setProtectedHeader({ alg: signing.algorithm, typ: 'JWT', kid: signing.kid, x5c: [...signing.x5c] })
      .setIssuer(issuer)
      .setSubject(subject)
      .setAudience(audience)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + expiration)
      .setJti(randomBytes(16).toString('base64url'))
      .sign(signing.privateKey);
    return { token, expiresIn: expiration, issuedAt: new Date(now * 1000) };
  }

  issueRefreshToken(claims: RefreshClaims): string {
    const iat = Math.floor(this.#now() / 1000);
    const payload = Buffer.from(
      JSON.stringify({
        sub: claims.sub,
        svc: claims.service,
        fp: claims.fp,
        iat,
        exp: iat + this.#options.refreshExpiration,
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
    const expected = Buffer.from(this.#mac(payload));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof body !== 'object' || body === null) return undefined;
    const { sub, svc, fp, exp } = body as Record<string, unknown>;
    if (
      typeof sub !== 'string' ||
      typeof svc !== 'string' ||
      typeof fp !== 'string' ||
      typeof exp !== 'number'
    ) {
      return undefined;
    }
    if (exp * 1000 <= this.#now()) return undefined;
    return { sub, service: svc, fp };
  }

  #mac(payload: string): string {
    return createHmac('sha256', this.#refreshKey).update(payload).digest('base64url');
  }
}
