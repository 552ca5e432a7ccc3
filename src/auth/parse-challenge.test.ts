import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { parseScopeList } from '../scope/parse-scope.js';
import {
  type Challenge,
  formatChallenge,
  MAX_CHALLENGE_HEADER_LENGTH,
  parseChallenges,
  resolveRealm,
} from './parse-challenge.js';

/** Plain-object view of parsed challenges, so expectations can be written as literals. */
function parse(header: Parameters<typeof parseChallenges>[0]): unknown[] {
  return parseChallenges(header).map((c) => ({ ...c, params: { ...c.params } }));
}

function challengeError(fn: () => unknown): RegauthError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    expect((err as RegauthError).code).toBe('ERR_INVALID_CHALLENGE');
    return err as RegauthError;
  }
  throw new Error('expected an ERR_INVALID_CHALLENGE error, but nothing was thrown');
}

describe('parseChallenges', () => {
  it("reads Docker Hub's challenge", () => {
    expect(
      parse(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:odewahn/myalpine:pull"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:odewahn/myalpine:pull',
        },
      },
    ]);
  });

  it('reads the error param distribution 2.8 adds for insufficient_scope', () => {
    expect(
      parse(
        'Bearer realm="http://127.0.0.1:5001/token",service="my-registry",scope="repository:a/b:pull",error="insufficient_scope"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'http://127.0.0.1:5001/token',
          service: 'my-registry',
          scope: 'repository:a/b:pull',
          error: 'insufficient_scope',
        },
      },
    ]);
  });

  it("reads ECR's Basic-only challenge", () => {
    expect(
      parse(
        'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
      ),
    ).toEqual([
      {
        scheme: 'basic',
        params: {
          realm: 'https://123456789012.dkr.ecr.us-east-1.amazonaws.com/',
          service: 'ecr.amazonaws.com',
        },
      },
    ]);
  });

  it('splits several challenges in one header', () => {
    expect(parse('Bearer realm="a",service="b", Basic realm="c"')).toEqual([
      { scheme: 'bearer', params: { realm: 'a', service: 'b' } },
      { scheme: 'basic', params: { realm: 'c' } },
    ]);
  });

  it('reads several header values in order', () => {
    expect(parse(['Basic realm="x"', 'Bearer realm="y"'])).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'y' } },
    ]);
  });

  it('lowercases scheme and param names but not values', () => {
    expect(parse('BEARER Realm="HTTPS://Auth/Token",SERVICE=Reg')).toEqual([
      { scheme: 'bearer', params: { realm: 'HTTPS://Auth/Token', service: 'Reg' } },
    ]);
  });

  it('unescapes backslashes in quoted values', () => {
    expect(parseChallenges('Bearer realm="a\\"b\\\\c\\d"')[0]?.params.realm).toBe('a"b\\cd');
  });

  it('keeps commas inside quoted values', () => {
    expect(parseChallenges('Bearer scope="repository:a/b:pull,push",service="s"')[0]?.params).toEqual({
      scope: 'repository:a/b:pull,push',
      service: 's',
    });
  });

  it('keeps a scope that lists several resources, for parseScopeList to split', () => {
    const [challenge] = parseChallenges(
      'Bearer realm="https://auth/token",scope="repository:a/b:pull,push repository:c/d:pull"',
    );
    expect(challenge?.params.scope).toBe('repository:a/b:pull,push repository:c/d:pull');
    expect(parseScopeList(challenge?.params.scope ?? '').map((s) => s.name)).toEqual(['a/b', 'c/d']);
  });

  it('allows white space around "=" and commas', () => {
    expect(parse('  Bearer   realm = "a" ,\tservice= b ,  Basic realm ="c"  ')).toEqual([
      { scheme: 'bearer', params: { realm: 'a', service: 'b' } },
      { scheme: 'basic', params: { realm: 'c' } },
    ]);
  });

  it('keeps a token68 challenge in its own field, with no params', () => {
    expect(parse('Negotiate abc==, Basic realm="c"')).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'abc==' },
      { scheme: 'basic', params: { realm: 'c' } },
    ]);
    expect(parse('Negotiate YII/+b.c_~-')).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'YII/+b.c_~-' },
    ]);
  });

  it('reads a scheme without params', () => {
    expect(parse('Negotiate, Basic')).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: {} },
    ]);
  });

  it('accepts an unquoted URL as a value, as some servers send', () => {
    expect(parseChallenges('Bearer realm=https://auth.example/token?x=1,service=reg')[0]?.params).toEqual({
      realm: 'https://auth.example/token?x=1',
      service: 'reg',
    });
  });

  it('forgives a missing comma between params', () => {
    expect(parseChallenges('Bearer realm="a" service="b"')[0]?.params).toEqual({ realm: 'a', service: 'b' });
  });

  it('keeps the last value of a repeated param, as docker and containerd do', () => {
    expect(parseChallenges('Bearer realm="a",Realm="b"')[0]?.params.realm).toBe('b');
  });

  it('keeps an empty quoted value and drops an empty bare one', () => {
    expect(parseChallenges('Bearer service="",realm=,scope="s"')[0]?.params).toEqual({
      service: '',
      scope: 's',
    });
  });

  it('skips empty list elements and unreadable parts', () => {
    expect(parse(', ,Bearer realm="a",, junk"x, y", =oops, service="s",')).toEqual([
      { scheme: 'bearer', params: { realm: 'a', service: 's' } },
    ]);
  });

  it('drops params that come before any scheme', () => {
    expect(parse('realm="a", Bearer service="s"')).toEqual([{ scheme: 'bearer', params: { service: 's' } }]);
  });

  it('drops a param whose quoted value is never closed', () => {
    expect(parse('Bearer service="s", realm="https://auth')).toEqual([
      { scheme: 'bearer', params: { service: 's' } },
    ]);
  });

  it('gives no challenges for no header', () => {
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges(null)).toEqual([]);
    expect(parseChallenges('')).toEqual([]);
    expect(parseChallenges([])).toEqual([]);
    expect(parseChallenges('  ,  ')).toEqual([]);
  });

  it('reads a param named like an Object.prototype member without touching prototypes', () => {
    const [challenge] = parseChallenges('Bearer __proto__="x",constructor="y"');
    expect(Object.entries(challenge?.params ?? {})).toEqual([
      ['__proto__', 'x'],
      ['constructor', 'y'],
    ]);
    expect(Object.getPrototypeOf(challenge?.params)).toBeNull();
    expect(parseChallenges('Bearer realm="a"')[0]?.params.constructor).toBeUndefined();
  });

  it(`refuses headers longer than ${MAX_CHALLENGE_HEADER_LENGTH} characters in all`, () => {
    const half = `Bearer realm="${'a'.repeat(MAX_CHALLENGE_HEADER_LENGTH / 2)}"`;
    expect(challengeError(() => parseChallenges([half, half])).message).toContain(
      'more than the 16384 accepted',
    );
    expect(parseChallenges('a'.repeat(MAX_CHALLENGE_HEADER_LENGTH))).toHaveLength(1);
  });

  it('answers quickly on pathological input', () => {
    const n = MAX_CHALLENGE_HEADER_LENGTH;
    const inputs = [
      '"'.repeat(n),
      '\\'.repeat(n),
      '='.repeat(n),
      ','.repeat(n),
      ' '.repeat(n),
      'a='.repeat(n / 2),
      'a '.repeat(n / 2),
      `Bearer ${'a,'.repeat(n / 2 - 4)}`,
      `Bearer ${'a="b" '.repeat(n / 6 - 2)}`,
      `Bearer realm="${'\\"'.repeat(n / 2 - 8)}`,
      `B ${'x'.repeat(n - 3)}!`,
      `B ${'x=x'.repeat(n / 3 - 1)}`,
    ];
    const start = performance.now();
    for (const header of inputs) parseChallenges(header);
    // Backtracking on these inputs would take seconds to hours; a loaded 2-core CI machine
    // takes a few hundred milliseconds at worst for the linear parse, never 2 s.
    expect(performance.now() - start).toBeLessThan(2000);
  });
});

describe('formatChallenge', () => {
  it('writes a Bearer challenge as registries send it', () => {
    expect(
      formatChallenge({ scheme: 'bearer', params: { realm: 'https://auth/token', service: 'reg' } }),
    ).toBe('Bearer realm="https://auth/token",service="reg"');
  });

  it('escapes quotes and backslashes in values', () => {
    expect(formatChallenge({ scheme: 'basic', params: { realm: 'a"b\\c' } })).toBe(
      'Basic realm="a\\"b\\\\c"',
    );
  });

  it('writes a token68 challenge and a bare scheme', () => {
    expect(formatChallenge({ scheme: 'negotiate', params: {}, token68: 'abc==' })).toBe('Negotiate abc==');
    expect(formatChallenge({ scheme: 'x-custom', params: {} })).toBe('x-custom');
  });

  it.each<[string, Challenge, string]>([
    ['a scheme that is not a token', { scheme: 'Bad Scheme', params: {} }, 'scheme "Bad Scheme"'],
    ['a param name that is not a token', { scheme: 'bearer', params: { 'a=b': 'x' } }, 'param name "a=b"'],
    [
      'a line break in a value',
      { scheme: 'bearer', params: { realm: 'x\r\nSet-Cookie: a' } },
      'control character',
    ],
    ['a bad token68', { scheme: 'negotiate', params: {}, token68: 'a b' }, 'token68'],
    ['token68 and params together', { scheme: 'negotiate', params: { a: 'b' }, token68: 'abc' }, 'not both'],
  ])('refuses %s', (_what, challenge, message) => {
    expect(challengeError(() => formatChallenge(challenge)).message).toContain(message);
  });
});

describe('resolveRealm', () => {
  const bearer = (realm?: string): Challenge => ({
    scheme: 'bearer',
    params: realm === undefined ? { service: 's' } : { realm, service: 's' },
  });

  it('returns an absolute realm as it is', () => {
    expect(
      resolveRealm(bearer('https://auth.docker.io/token'), 'https://registry-1.docker.io/v2/')?.href,
    ).toBe('https://auth.docker.io/token');
  });

  it('resolves a relative realm against the request URL', () => {
    expect(resolveRealm(bearer('/token'), 'http://127.0.0.1:5000/v2/a/b/manifests/latest')?.href).toBe(
      'http://127.0.0.1:5000/token',
    );
    expect(resolveRealm(bearer('token'), new URL('https://reg.example/v2/'))?.href).toBe(
      'https://reg.example/v2/token',
    );
    expect(resolveRealm(bearer('//auth.example/t'), 'https://reg.example/v2/')?.href).toBe(
      'https://auth.example/t',
    );
  });

  it('returns undefined when there is no realm or an empty one', () => {
    expect(resolveRealm(bearer(), 'https://reg.example/v2/')).toBeUndefined();
    expect(resolveRealm(bearer('  '), 'https://reg.example/v2/')).toBeUndefined();
  });

  it('refuses a realm that is not a URL', () => {
    const err = challengeError(() => resolveRealm(bearer('http://[bad'), 'https://reg.example/v2/?secret=1'));
    expect(err.message).toContain('"http://[bad"');
    expect(err.message).toContain('https://reg.example/v2/');
    expect(err.message).not.toContain('secret');
  });

  it('refuses a realm that is not http or https', () => {
    expect(
      challengeError(() => resolveRealm(bearer('file:///etc/passwd'), 'https://reg.example/v2/')).message,
    ).toContain('must be an http or https URL');
  });
});

// Generators: what formatChallenge can write. Scheme and names are lowercase, as parsing gives them.
const tokenChar = fc.constantFrom(..."abcxyz019!#$%&'*+-.^_`|~");
const token = fc.string({ unit: tokenChar, minLength: 1, maxLength: 10 });
const printable = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.string({
    unit: fc.constantFrom('"', '\\', ',', '=', ' ', '\t', 'a', 'Bearer ', 'realm='),
    maxLength: 20,
  }),
);
const token68 = fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,20}=*$/);
const challenge: fc.Arbitrary<Challenge> = fc.oneof(
  fc.record({
    scheme: token,
    params: fc.dictionary(token, printable, { maxKeys: 5, noNullPrototype: true }),
  }),
  fc.record({ scheme: token, params: fc.constant({}), token68 }),
);

/** Compares challenges whatever the prototype of their params. */
function plain(challenges: readonly Challenge[]): unknown[] {
  return challenges.map((c) => ({ ...c, params: { ...c.params } }));
}

describe('parseChallenges properties', () => {
  it('reads back what formatChallenge writes', () => {
    fc.assert(
      fc.property(challenge, (c) => {
        expect(plain(parseChallenges(formatChallenge(c)))).toStrictEqual(plain([c]));
      }),
      { numRuns: 1000 },
    );
  });

  it('reads back several formatted challenges in one header or several', () => {
    fc.assert(
      fc.property(fc.array(challenge, { maxLength: 4 }), fc.constantFrom(',', ', ', ' ,\t'), (cs, sep) => {
        expect(plain(parseChallenges(cs.map(formatChallenge).join(sep)))).toStrictEqual(plain(cs));
        expect(plain(parseChallenges(cs.map(formatChallenge)))).toStrictEqual(plain(cs));
      }),
    );
  });

  const headerish = fc.string({
    unit: fc.constantFrom(
      'Bearer',
      'a',
      'B',
      ' ',
      '\t',
      ',',
      '=',
      '"',
      '\\',
      'realm',
      '/',
      ':',
      '\u00e9',
      '\r\n',
    ),
    maxLength: 60,
  });

  it('never throws on any string within the size cap, and gives well-formed challenges', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), headerish), (header) => {
        for (const c of parseChallenges(header)) {
          expect(c.scheme).toMatch(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/);
          for (const name of Object.keys(c.params)) expect(name).toMatch(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/);
          if (c.token68 !== undefined) expect(c.token68).toMatch(/^[A-Za-z0-9\-._~+/]+=*$/);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
