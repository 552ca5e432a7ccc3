import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { MIN_TOKEN_LIFETIME_S, parseTokenResponse } from './token-response.js';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const HOST = 'auth.example:8443';

function tokenError(body: unknown): RegauthError {
  try {
    parseTokenResponse(body, HOST, NOW);
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    expect((err as RegauthError).code).toBe('ERR_TOKEN_RESPONSE');
    expect((err as RegauthError).message).toContain(HOST);
    return err as RegauthError;
  }
  throw new Error('expected ERR_TOKEN_RESPONSE, but the response was accepted');
}

describe('parseTokenResponse', () => {
  it('prefers access_token over token when both are sent', () => {
    expect(parseTokenResponse({ token: 'old', access_token: 'new', expires_in: 300 }, HOST, NOW)).toEqual({
      token: 'new',
      expiresAt: NOW + 300_000,
    });
  });

  it('accepts a response with only token, or only access_token', () => {
    expect(parseTokenResponse({ token: 'only-token' }, HOST, NOW).token).toBe('only-token');
    expect(parseTokenResponse({ access_token: 'only-access' }, HOST, NOW).token).toBe('only-access');
  });

  it('falls back to token when access_token is empty', () => {
    expect(parseTokenResponse({ token: 't', access_token: '' }, HOST, NOW).token).toBe('t');
  });

  it(`gives a token without expires_in ${MIN_TOKEN_LIFETIME_S} s`, () => {
    expect(parseTokenResponse({ token: 't' }, HOST, NOW).expiresAt).toBe(NOW + 60_000);
  });

  it('treats an expires_in below 60 s, or one that is not a number, as 60 s', () => {
    expect(parseTokenResponse({ token: 't', expires_in: 5 }, HOST, NOW).expiresAt).toBe(NOW + 60_000);
    expect(parseTokenResponse({ token: 't', expires_in: -100 }, HOST, NOW).expiresAt).toBe(NOW + 60_000);
    expect(parseTokenResponse({ token: 't', expires_in: '3600' }, HOST, NOW).expiresAt).toBe(NOW + 60_000);
  });

  it('counts the lifetime from now when issued_at is in the future', () => {
    const info = parseTokenResponse(
      { token: 't', expires_in: 300, issued_at: '2024-05-01T12:05:00Z' },
      HOST,
      NOW,
    );
    expect(info.expiresAt).toBe(NOW + 300_000);
  });

  it('counts the lifetime from an issued_at in the recent past', () => {
    const info = parseTokenResponse(
      { token: 't', expires_in: 300, issued_at: '2024-05-01T11:59:30Z' },
      HOST,
      NOW,
    );
    expect(info.expiresAt).toBe(NOW - 30_000 + 300_000);
  });

  it('ignores an issued_at older than the lifetime (a server clock behind ours)', () => {
    const info = parseTokenResponse(
      { token: 't', expires_in: 300, issued_at: '2024-05-01T11:50:00Z' },
      HOST,
      NOW,
    );
    expect(info.expiresAt).toBe(NOW + 300_000);
  });

  it('ignores an unreadable issued_at', () => {
    const info = parseTokenResponse({ token: 't', expires_in: 120, issued_at: 'yesterday' }, HOST, NOW);
    expect(info.expiresAt).toBe(NOW + 120_000);
  });

  it('carries the refresh_token when one is sent, and has none otherwise', () => {
    expect(parseTokenResponse({ token: 't', refresh_token: 'r-1' }, HOST, NOW).refreshToken).toBe('r-1');
    expect('refreshToken' in parseTokenResponse({ token: 't' }, HOST, NOW)).toBe(false);
    expect('refreshToken' in parseTokenResponse({ token: 't', refresh_token: '' }, HOST, NOW)).toBe(false);
  });

  it.each([
    ['null', null],
    ['an array', [{ token: 't' }]],
    ['a string', 'token'],
    ['a number', 42],
  ])('refuses a body that is %s', (_what, body) => {
    expect(tokenError(body).message).toContain('not a JSON object');
  });

  it('refuses an object without token or access_token', () => {
    expect(tokenError({ expires_in: 300 }).message).toContain('without "token" or "access_token"');
    expect(tokenError({ token: '', access_token: '' }).message).toContain('without');
    expect(tokenError({ token: 123 }).message).toContain('without');
  });

  it.each([
    ['a space', 'abc def-secret-1'],
    ['a newline', 'abc\r\nX-Injected: secret-2'],
    ['a tab', 'abc\tsecret-3'],
    ['a non-ASCII character', 'abcé-secret-4'],
  ])('refuses a token holding %s, without quoting the token', (_what, value) => {
    for (const body of [{ token: value }, { access_token: value }]) {
      const err = tokenError(body);
      expect(err.message).toContain('white space');
      expect(err.message).not.toContain(value);
      expect(err.message).not.toContain('secret');
    }
  });

  it('returns any printable-ASCII token exactly as sent', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
          minLength: 1,
        }),
        (value) => {
          expect(parseTokenResponse({ access_token: value }, HOST, NOW).token).toBe(value);
        },
      ),
    );
  });

  it('never quotes a refused token in the message', () => {
    fc.assert(
      fc.property(
        fc
          .string({ minLength: 20, maxLength: 40 })
          .filter((s) => !/^[!-~]+$/.test(s) && s.trim().length >= 20),
        (value) => {
          const err = tokenError({ token: value });
          expect(err.message).not.toContain(value);
        },
      ),
    );
  });
});
