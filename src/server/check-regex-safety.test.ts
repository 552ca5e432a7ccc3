import { describe, expect, it } from 'vitest';
import { checkRegexSafety } from './check-regex-safety.js';

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
});
