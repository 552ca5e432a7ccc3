import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  REDACTED,
  REDACTED_IN_URL,
  redactForm,
  redactHeaders,
  redactHeaderValue,
  redactJson,
  redactUrl,
  redactUrlText,
} from './redact.js';

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

  it('leaves challenges and other plain headers alone', () => {
    expect(redactHeaderValue('www-authenticate', 'Bearer realm="x"')).toBe('Bearer realm="x"');
    expect(redactHeaderValue('content-type', 'application/json')).toBe('application/json');
    expect(redactHeaderValue('docker-content-digest', 'sha256:ab')).toBe('sha256:ab');
  });

  it('hides headers whose names say they hold a secret, scheme and all', () => {
    for (const name of [
      'X-Amz-Security-Token',
      'x-goog-api-key',
      'X-Api-Key',
      'x-ms-client-secret',
      'X-Session-Id',
      'x-signature',
      'Authentication-Info',
    ]) {
      expect(redactHeaderValue(name, 'Bearer s3cr3t-value')).toBe(REDACTED);
    }
  });

  it('redacts the query strings of the URLs in Location, Content-Location and Link', () => {
    expect(redactHeaderValue('Location', 'https://cdn.example/b?sig=s3cr3t&se=2030')).toBe(
      `https://cdn.example/b?sig=${REDACTED_IN_URL}&se=${REDACTED_IN_URL}`,
    );
    expect(redactHeaderValue('content-location', '/x?token=s3cr3t')).toBe(`/x?token=${REDACTED_IN_URL}`);
    expect(
      redactHeaderValue('link', '</v2/a/tags/list?last=t1&n=2&token=s3cr3t>; rel="next", <https://x/?k=v>'),
    ).toBe(
      `</v2/a/tags/list?last=t1&n=2&token=${REDACTED_IN_URL}>; rel="next", <https://x/?k=${REDACTED_IN_URL}>`,
    );
  });

  it('hides a JWT in any header', () => {
    expect(redactHeaderValue('x-debug', 'issued eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig9 ok')).toBe(
      `issued ${REDACTED} ok`,
    );
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

  it('changes nothing in a document without secret keys or JWTs', () => {
    const secretKey = /token|secret|passw|credential|signature|^auth$|authorization|api_?key|private_?key/i;
    const hasSecret = (v: unknown): boolean =>
      Array.isArray(v)
        ? v.some(hasSecret)
        : typeof v === 'string'
          ? v.includes('eyJ')
          : typeof v === 'object' && v !== null
            ? Object.entries(v).some(([k, x]) => secretKey.test(k) || hasSecret(x))
            : false;
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        fc.pre(!hasSecret(value));
        expect(redactJson(value)).toEqual(value);
      }),
    );
  });

  it('hides a JWT wherever it sits, whatever its key is called', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
    expect(redactJson({ jwt, nested: [{ value: `Bearer ${jwt}` }] })).toEqual({
      jwt: REDACTED,
      nested: [{ value: `Bearer ${REDACTED}` }],
    });
  });
});

describe('redactUrl', () => {
  it('hides the user info and every query value off the allow-list, keeping the protocol ones', () => {
    const out = redactUrl(
      new URL('https://bob:hunter2@auth.example/token?service=reg&access_token=at1&scope=a&account=bob'),
    );
    expect(out).not.toContain('hunter2');
    expect(out).not.toContain('at1');
    const url = new URL(out);
    expect(url.username).toBe(REDACTED_IN_URL);
    expect(url.searchParams.get('access_token')).toBe(REDACTED_IN_URL);
    expect(url.searchParams.get('service')).toBe('reg');
    expect(url.searchParams.get('scope')).toBe('a');
    expect(url.searchParams.get('account')).toBe('bob');
  });

  it('hides the signature and session token of an S3 presigned URL (go-containerregistry internal/redact)', () => {
    const presigned =
      'https://bucket.s3.amazonaws.com/docker/registry/v2/blobs/sha256/ab/data?X-Amz-Algorithm=AWS4-HMAC-SHA256' +
      '&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z' +
      '&X-Amz-Expires=1200&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE&X-Amz-SignedHeaders=host' +
      '&X-Amz-Signature=0123456789abcdef0123456789abcdef';
    const out = redactUrl(new URL(presigned));
    for (const secret of ['AKIAEXAMPLE', 'FwoGZXIvYXdzEXAMPLE', '0123456789abcdef0123456789abcdef']) {
      expect(out).not.toContain(secret);
    }
    expect(new URL(out).pathname).toBe('/docker/registry/v2/blobs/sha256/ab/data');
    expect(new URL(out).searchParams.get('X-Amz-Signature')).toBe(REDACTED_IN_URL);
  });

  it('keeps the parameters of the registry protocol as they were written', () => {
    const url = new URL(
      'https://r.example/v2/a/blobs/uploads/?mount=sha256%3Aab&from=b%2Fc&digest=sha256:cd&n=100&last=t9',
    );
    expect(redactUrl(url)).toBe(url.href);
  });

  it('hides the value of any parameter that is not on the allow-list', () => {
    const allowed = [
      'scope',
      'service',
      'mount',
      'from',
      'digest',
      'n',
      'last',
      'account',
      'client_id',
      'offline_token',
      'artifactType',
    ];
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !allowed.includes(k)),
        fc.string({
          unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'),
          minLength: 24,
          maxLength: 40,
        }),
        (key, secret) => {
          const url = new URL('https://cdn.example/blob');
          url.searchParams.set('n', '10');
          url.searchParams.set(key, secret);
          expect(redactUrl(url)).not.toContain(secret);
        },
      ),
    );
  });

  it('does not change the URL it is given', () => {
    const url = new URL('https://auth.example/token?password=p');
    redactUrl(url);
    expect(url.searchParams.get('password')).toBe('p');
  });
});

describe('redactUrlText', () => {
  it("redacts a relative Location's query and fragment, keeping its path", () => {
    expect(redactUrlText('/v2/a/blobs/uploads/5f1c?_state=c2VjcmV0LXN0YXRl&digest=sha256:ab#tok')).toBe(
      `/v2/a/blobs/uploads/5f1c?_state=${REDACTED_IN_URL}&digest=sha256:ab#${REDACTED_IN_URL}`,
    );
    expect(redactUrlText('https://cdn.example/x?sig')).toBe(`https://cdn.example/x?${REDACTED_IN_URL}`);
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
