import { X509Certificate } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { libtrustKeyId } from './libtrust-key-id.js';
import { testSigning } from './testing/fixtures.js';
import { TokenIssuer } from './token-issuer.js';

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0, 500);

async function issuer(algorithm: 'ES256' | 'RS256' = 'ES256', now = () => NOW) {
  const signing = await testSigning(algorithm);
  return {
    signing,
    issuer: new TokenIssuer({
      signing,
      issuer: 'unit-issuer',
      expiration: 300,
      refreshExpiration: 3600,
      now,
    }),
  };
}

describe('TokenIssuer.issueAccessToken', () => {
  it("ends no later than `notAfter` (the login credential's own expiry), never later than expiration", async () => {
    const { issuer: tokens } = await issuer();
    const nowS = Math.floor(NOW / 1000);
    const short = await tokens.issueAccessToken('ci', 'unit-registry', [], (nowS + 42) * 1000 + 999);
    expect(decodeJwt(short.token).exp).toBe(nowS + 42);
    expect(short.expiresIn).toBe(42);
    const long = await tokens.issueAccessToken('ci', 'unit-registry', [], NOW + 86_400_000);
    expect(decodeJwt(long.token).exp).toBe(nowS + 300);
  });

  it.each(['ES256', 'RS256'] as const)('signs a %s token in the shape distribution verifies', async (alg) => {
    const { signing, issuer: tokens } = await issuer(alg);
    const access = [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }];
    const issued = await tokens.issueAccessToken('alice', 'unit-registry', access);

    const header = decodeProtectedHeader(issued.token);
    expect(header.alg).toBe(alg);
    expect(header.typ).toBe('JWT');
    expect(header.x5c).toEqual(signing.x5c);
    const cert = new X509Certificate(Buffer.from(header.x5c?.[0] ?? '', 'base64'));
    expect(header.kid).toBe(libtrustKeyId(cert.publicKey));

    const claims = decodeJwt(issued.token);
    expect(claims.iss).toBe('unit-issuer');
    expect(claims.sub).toBe('alice');
    // distribution 2.8 rejects an array audience and fractional times (registry/auth/token/token.go).
    expect(claims.aud).toBe('unit-registry');
    expect(claims.iat).toBe(Math.floor(NOW / 1000));
    expect(claims.nbf).toBe(claims.iat);
    expect(claims.exp).toBe(Math.floor(NOW / 1000) + 300);
    expect(claims.access).toEqual(access);
    expect(issued.expiresIn).toBe(300);
    expect(issued.issuedAt.toISOString()).toBe('2026-11-26T12:00:00.000Z');

    const verified = await jwtVerify(issued.token, cert.publicKey, {
      issuer: 'unit-issuer',
      audience: 'unit-registry',
      currentDate: new Date(NOW),
    });
    expect(verified.payload.sub).toBe('alice');
  });

  it('writes ES256 signatures as raw r||s (64 bytes), not DER', async () => {
    const { issuer: tokens } = await issuer('ES256');
    const { token } = await tokens.issueAccessToken('', 'unit-registry', []);
    const signature = Buffer.from(token.split('.')[2] ?? '', 'base64url');
    expect(signature.length).toBe(64);
  });

  it('gives every token its own random jti', async () => {
    const { issuer: tokens } = await issuer();
    const ids = new Set<unknown>();
    for (let i = 0; i < 20; i++) ids.add(decodeJwt((await tokens.issueAccessToken('a', 's', [])).token).jti);
    expect(ids.size).toBe(20);
    for (const id of ids) expect(Buffer.from(String(id), 'base64url').length).toBe(16);
  });

  it('writes an empty access list, not a missing claim, when nothing is granted', async () => {
    const { issuer: tokens } = await issuer();
    const claims = decodeJwt((await tokens.issueAccessToken('', 'unit-registry', [])).token);
    expect(claims.access).toEqual([]);
    expect(claims.sub).toBe('');
  });
});

describe('TokenIssuer refresh tokens', () => {
  it('round-trips subject, service and password fingerprint', async () => {
    const { issuer: tokens } = await issuer();
    const token = tokens.issueRefreshToken({ sub: 'alice', service: 'unit-registry', fp: 'abc' });
    expect(tokens.verifyRefreshToken(token)).toEqual({
      sub: 'alice',
      service: 'unit-registry',
      fp: 'abc',
      issuedAtMs: 1_795_694_400_500,
    });
  });

  it('never stamps or lives past now plus the skew allowed, whatever epoch revokedBefore gives', async () => {
    const signing = await testSigning('ES256');
    for (const epoch of [1e300, NOW + 365 * 86_400_000]) {
      const tokens = new TokenIssuer({
        signing,
        issuer: 'unit-issuer',
        expiration: 300,
        refreshExpiration: 3600,
        now: () => NOW,
        revokedBefore: () => epoch,
      });
      const token = tokens.issueRefreshToken({ sub: 'alice', service: 's' });
      const body = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString());
      expect(body.exp).toBe(Math.floor(NOW / 1000) + 3600);
      expect(body.ims).toBe(NOW + 60_000);
      // A later revocation (epoch just past the stamp) still reaches it.
      expect(tokens.verifyRefreshToken(token)?.issuedAtMs).toBe(NOW + 60_000);
      const access = await tokens.issueAccessToken('alice', 'unit-registry', []);
      expect(access.issuedAtMs).toBe(NOW + 60_000);
    }
  });

  it('rejects a token whose payload was changed', async () => {
    const { issuer: tokens } = await issuer();
    const [prefix, payload, mac] = tokens
      .issueRefreshToken({ sub: 'alice', service: 's', fp: 'f' })
      .split('.');
    const body = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString());
    body.sub = 'admin';
    const forged = `${prefix}.${Buffer.from(JSON.stringify(body)).toString('base64url')}.${mac}`;
    expect(tokens.verifyRefreshToken(forged)).toBeUndefined();
  });

  it('rejects a token once it has expired', async () => {
    let now = NOW;
    const { issuer: tokens } = await issuer('ES256', () => now);
    const token = tokens.issueRefreshToken({ sub: 'alice', service: 's', fp: 'f' });
    now += 3599_000;
    expect(tokens.verifyRefreshToken(token)?.sub).toBe('alice');
    now += 2000;
    expect(tokens.verifyRefreshToken(token)).toBeUndefined();
  });

  it('is accepted by another replica with the same key and refused by a server with another key', async () => {
    const a = await issuer('ES256');
    const b = await issuer('ES256');
    const other = await issuer('RS256');
    const token = a.issuer.issueRefreshToken({ sub: 'alice', service: 's', fp: 'f' });
    expect(b.issuer.verifyRefreshToken(token)?.sub).toBe('alice');
    expect(other.issuer.verifyRefreshToken(token)).toBeUndefined();
  });

  it('keeps refresh tokens of a previous key valid after a rotation, and only while that key is listed', async () => {
    const [oldKey, newKey] = await Promise.all([testSigning('ES256'), testSigning('RS256')]);
    const options = { issuer: 'unit-issuer', expiration: 300, refreshExpiration: 3600, now: () => NOW };
    const before = new TokenIssuer({ ...options, signing: oldKey });
    const token = before.issueRefreshToken({ sub: 'alice', service: 's', fp: 'f' });
    const rotated = new TokenIssuer({ ...options, signing: newKey, previous: [oldKey] });
    expect(rotated.verifyRefreshToken(token)?.sub).toBe('alice');
    // New refresh tokens come from the new key: the old key alone does not accept them.
    const fresh = rotated.issueRefreshToken({ sub: 'bob', service: 's', fp: 'f' });
    expect(before.verifyRefreshToken(fresh)).toBeUndefined();
    const dropped = new TokenIssuer({ ...options, signing: newKey });
    expect(dropped.verifyRefreshToken(token)).toBeUndefined();
    expect(dropped.verifyRefreshToken(fresh)?.sub).toBe('bob');
  });

  it('cannot pass for an access token, nor an access token for a refresh token', async () => {
    const { issuer: tokens } = await issuer();
    const refresh = tokens.issueRefreshToken({ sub: 'alice', service: 's', fp: 'f' });
    expect(() => decodeProtectedHeader(refresh)).toThrow();
    const { token } = await tokens.issueAccessToken('alice', 's', []);
    expect(tokens.verifyRefreshToken(token)).toBeUndefined();
    expect(tokens.verifyRefreshToken('')).toBeUndefined();
    expect(tokens.verifyRefreshToken('rt1.e30.')).toBeUndefined();
  });
});
