import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REDACTED, redactForm, redactHeaders, redactHeaderValue, redactJson, redactUrl } from './redact.js';

describe('redactHeaderValue', () => {
  it('keeps the scheme of an Authorization value and hides the credential', () => {
    expect(redactHeaderValue('Authorization', 'Bearer eyJhbGciOi.x.y')).toBe('Bearer <redacted>');
    expect(redactHeaderValue('authorization', 'Basic YWxpY2U6cHc=')).toBe('Basic <redacted>');
  });

  it('hides a secret header value that has no scheme entirely', () => {
    expect(redactHeaderValue('cookie', 'session=abc; other=def')).toBe(REDACTED);
    expect(redactHeaderValue('X-Registry-Auth', 'eyJ1c2VybmFtZSI6ImEifQ==')).toBe(REDACTED);
    expect(redactHeaderValue('authorization', 'opaque-token')).toBe(REDACTED);
  });

  it('leaves other headers alone', () => {
    expect(redactHeaderValue('www-authenticate', 'Bearer realm="x"')).toBe('Bearer realm="x"');
    expect(redactHeaderValue('content-type', 'application/json')).toBe('application/json');
  });
});

describe('redactHeaders', () => {
  it('redacts every value of a repeated secret header and drops undefined ones', () => {
    expect(
      redactHeaders({
        'set-cookie': ['a=1', 'b=2'],
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        location: '/v2/x',
        missing: undefined,
      }),
    ).toEqual({
      'set-cookie': [REDACTED, REDACTED],
      'proxy-authorization': 'Basic <redacted>',
      location: '/v2/x',
    });
  });
});

describe('redactJson', () => {
  it('replaces the values of secret keys at any depth, whatever their case', () => {
    expect(
      redactJson({
        token: 't',
        expires_in: 60,
        auths: { 'ghcr.io': { Auth: 'dXNlcjpwYXNz', email: 'a@b' } },
        list: [{ access_token: 'a', refresh_token: { nested: 'r' } }, 'plain'],
        IdentityToken: 'i',
      }),
    ).toEqual({
      token: REDACTED,
      expires_in: 60,
      auths: { 'ghcr.io': { Auth: REDACTED, email: 'a@b' } },
      list: [{ access_token: REDACTED, refresh_token: REDACTED }, 'plain'],
      IdentityToken: REDACTED,
    });
  });

  it('returns scalars as they are', () => {
    expect(redactJson('token')).toBe('token');
    expect(redactJson(null)).toBeNull();
    expect(redactJson(3)).toBe(3);
  });

  const secretArb = fc.string({
    unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'),
    minLength: 32,
    maxLength: 64,
  });
  const secretKeyArb = fc.constantFrom(
    'token',
    'password',
    'Token',
    'PASSWORD',
    'access_token',
    'refresh_token',
  );
  /** One step from the root toward the secret: through an object key or an array position. */
  const stepArb = fc.oneof(
    fc.record({
      kind: fc.constant('key' as const),
      key: fc.string({ maxLength: 8 }),
      noise: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
    }),
    fc.record({
      kind: fc.constant('index' as const),
      before: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
      after: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
    }),
  );

  it('never lets the value of a token or password key through, however deep it sits', () => {
    fc.assert(
      fc.property(
        secretArb,
        secretKeyArb,
        fc.array(stepArb, { maxLength: 6 }),
        fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
        (secret, secretKey, path, siblings) => {
          let value: unknown = { ...siblings, [secretKey]: secret };
          for (const step of path.reverse()) {
            value =
              step.kind === 'key'
                ? { ...step.noise, [step.key]: value }
                : [...step.before, value, ...step.after];
          }
          // The secret really is in the input, so the property is not vacuous.
          expect(JSON.stringify(value)).toContain(secret);
          expect(JSON.stringify(redactJson(value))).not.toContain(secret);
        },
      ),
    );
  });

  it('changes nothing in a document without secret keys', () => {
    const secretNames = new Set([
      'token',
      'access_token',
      'refresh_token',
      'password',
      'identitytoken',
      'registrytoken',
      'secret',
      'auth',
    ]);
    const hasSecretKey = (v: unknown): boolean =>
      Array.isArray(v)
        ? v.some(hasSecretKey)
        : typeof v === 'object' && v !== null
          ? Object.entries(v).some(([k, x]) => secretNames.has(k.toLowerCase()) || hasSecretKey(x))
          : false;
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        fc.pre(!hasSecretKey(value));
        expect(redactJson(value)).toEqual(value);
      }),
    );
  });
});

describe('redactUrl', () => {
  it('hides the password of the user info and secret query parameters, keeping the rest', () => {
    const out = redactUrl(
      new URL('https://bob:hunter2@auth.example/token?service=reg&access_token=at1&scope=a'),
    );
    expect(out).not.toContain('hunter2');
    expect(out).not.toContain('at1');
    const url = new URL(out);
    expect(url.username).toBe('bob');
    expect(url.searchParams.get('access_token')).toBe(REDACTED);
    expect(url.searchParams.get('service')).toBe('reg');
    expect(url.searchParams.get('scope')).toBe('a');
  });

  it('does not change the URL it is given', () => {
    const url = new URL('https://auth.example/token?password=p');
    redactUrl(url);
    expect(url.searchParams.get('password')).toBe('p');
  });
});

describe('redactForm', () => {
  it('hides password and refresh_token fields of an OAuth2 form', () => {
    const out = redactForm(
      'grant_type=refresh_token&refresh_token=rt%2Fsecret&client_id=regauth&scope=repository%3Aa%3Apull',
    );
    expect(out).toBe(
      'grant_type=refresh_token&refresh_token=<redacted>&client_id=regauth&scope=repository:a:pull',
    );
    expect(redactForm('username=a&password=p%40ss')).toBe('username=a&password=<redacted>');
  });
});
