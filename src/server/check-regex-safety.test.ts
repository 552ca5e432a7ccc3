import { describe, expect, it } from 'vitest';
import { checkGlobSafety, checkRegexSafety } from './check-regex-safety.js';

describe('checkRegexSafety', () => {
  it('accepts the regexes ACLs use', () => {
    for (const source of [
      '.+',
      '(team|org)/[a-z]+',
      'users/alice(/.*)?',
      '(?:a|b)-[0-9]{1,3}',
      '(?<ns>[a-z]+)/app',
      '[(+*)]+',
      'a\\(b+\\)*',
      'x{2}',
    ]) {
      expect({ source, why: checkRegexSafety(source) }).toEqual({ source, why: undefined });
    }
  });

  it('refuses what backtracks without bound on a hostile name', () => {
    for (const source of [
      '(a+)+',
      '(a|ab)*c',
      '(?:[a-z]+/)*x',
      '((a)b*)+',
      '(a*){2,}',
      '(a?){2,40}',
      '(a)\\1',
      '(?<x>a)\\k<x>',
      '(?=a)a',
      '(?<!a)b',
    ]) {
      expect({ source, unsafe: checkRegexSafety(source) !== undefined }).toEqual({ source, unsafe: true });
    }
  });

  it('refuses more than three repetitions, which backtrack polynomially', () => {
    expect(checkRegexSafety('.*a.*b.*')).toBeUndefined();
    expect(checkRegexSafety('[a-z]+/[*+]{2,}x')).toBeUndefined();
    expect(checkRegexSafety('.*a.*a.*a.*b')).toMatch(/^4 repetitions/);
    expect(checkRegexSafety('a+b{1,}c*d+')).toMatch(/^4 repetitions/);
  });

  it('counts bounded and optional repetitions too: they backtrack as well (23 s for the first)', () => {
    expect(checkRegexSafety(`${'[a-z0-9]{0,64}'.repeat(5)}x`)).toMatch(/^5 repetitions/);
    expect(checkRegexSafety(`${'a?'.repeat(26)}${'a'.repeat(26)}x`)).toMatch(/^26 repetitions/);
    // Exact counts and lazy markers are not more ways to match.
    expect(checkRegexSafety('[0-9]{4}-[0-9]{2}-[0-9]{2}')).toBeUndefined();
    expect(checkRegexSafety('v?[0-9]+?\\.[0-9]+')).toBeUndefined();
  });
});

describe('checkGlobSafety', () => {
  it('counts only the wildcards that can match the same characters', () => {
    expect(checkGlobSafety('*/*/*/*/*', true)).toBeUndefined();
    expect(checkGlobSafety('**a**b**', true)).toBeUndefined();
    expect(checkGlobSafety('team-*/**', true)).toBeUndefined();
    expect(checkGlobSafety('**a**a**a**b', true)).toMatch(/^4 wildcards/);
    expect(checkGlobSafety('*a*a*a*', true)).toMatch(/^4 wildcards/);
    // In an account glob `*` crosses `/`, so every one counts.
    expect(checkGlobSafety('*/*/*/*', false)).toMatch(/^4 wildcards/);
  });
});
